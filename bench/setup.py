"""The bench as a package of its own, on top of the controller: `pip install ./bench` from a
checkout (after ipop-ryu itself; `make setup` installs both, editable, into .venv).

It brings what the controller does not need: matplotlib for the plots (pinned for .venv in
requirements/bench.txt). `ipop-ryu bench` enters it (ipop_ryu/cli/bench.py) and says what to
install when it is missing. Results go to bench/results/ beside it.
"""
from setuptools import find_packages, setup

setup(
    name="ipop-ryu-bench",
    version="0.2.0",
    description="Benchmarks of ipop-ryu against OVS NORMAL and Ryu simple_switch_13 "
                "(namespace lab, scale bench)",
    packages=find_packages(include=["ipop_bench", "ipop_bench.*"]),
    python_requires=">=3.11",
    install_requires=["ipop-ryu", "matplotlib>=3.5"],
)

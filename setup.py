from setuptools import find_packages, setup

setup(
    name="ipop-ryu",
    version="0.1.0",
    description="IPOP switch mode as a Ryu (OpenFlow 1.3) application driving Open vSwitch",
    packages=find_packages(include=["ipop_ryu", "ipop_ryu.*"]),
    python_requires=">=3.9",
    install_requires=["ryu==4.34", "eventlet==0.41.0", "pyroute2==0.9.7"],
    entry_points={"console_scripts": ["ipop-ryu=ipop_ryu.cli:main"]},
)

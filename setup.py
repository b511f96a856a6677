"""ipop-ryu as a package: `pip install ".[os-ken]"` or `pip install ".[ryu]"`.

The framework is an extra, so an os-ken install never pulls Ryu. Ryu 4.34 builds only with
setuptools < 68: install it with `PIP_CONSTRAINT=constraints-build.txt`.

The wheel carries one `.pth` file, `ipop_ryu_eventlet_compat.pth`: it installs the import hook
of `ipop_ryu/compat/eventlet_already_handled.py`, which gives Ryu 4.34 the
`eventlet.wsgi.ALREADY_HANDLED` name eventlet removed, so a plain `ryu-manager` works. The hook
does nothing until something imports `eventlet.wsgi`, and then only adds the name if missing.
`ipop-ryu controller` applies the same hook itself (ipop_ryu/compat/framework.py).
"""
import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH = "ipop_ryu_eventlet_compat.pth"
PTH_LINE = "import ipop_ryu.compat.eventlet_already_handled\n"


def write_pth(directory):
    with open(os.path.join(directory, PTH), "w") as out:
        out.write(PTH_LINE)


class BuildPyWithPth(build_py):
    """Also write the .pth file at the top of the wheel (beside the ipop_ryu package)."""

    def run(self):
        super().run()
        write_pth(self.build_lib)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, PTH)]


class EditableWheelWithPth(editable_wheel):
    """`pip install -e .` (PEP 660) builds its wheel without build_py's outputs: put the .pth
    in beside the editable finder (the hook setuptools 64 to 80 offers for files of that
    kind)."""

    def _install_namespaces(self, installation_dir, *args):
        super()._install_namespaces(installation_dir, *args)
        write_pth(installation_dir)


setup(
    name="ipop-ryu",
    version="0.2.0",
    description="IPOP switch mode as a Ryu/os-ken (OpenFlow 1.3) application driving Open vSwitch",
    packages=find_packages(include=["ipop_ryu", "ipop_ryu.*"]),
    python_requires=">=3.11",
    install_requires=["eventlet>=0.33", "pyroute2>=0.7", "prometheus_client>=0.17",
                      "WebOb>=1.8", "Routes>=2.5", "cryptography>=41"],
    extras_require={
        "ryu": ["ryu==4.34"],
        "os-ken": ["os-ken>=3.1,<5"],
    },
    entry_points={"console_scripts": ["ipop-ryu=ipop_ryu.cli:main"]},
    cmdclass={"build_py": BuildPyWithPth, "editable_wheel": EditableWheelWithPth},
    data_files=[("share/ipop-ryu", ["packaging/ipop-ryu@.service"]),
                ("share/man/man8", ["packaging/ipop-ryu.8"])],
)

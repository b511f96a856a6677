"""The install check: `pip install ".[os-ken]"` from this checkout into a clean venv, as an
operator installs the controller. It brings no bench and no matplotlib (the bench is a package
of its own, bench/setup.py), and every `ipop-ryu` command there works or says in one line what
to install."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIP_TIMEOUT = 240       # the local index only; a fresh resolve and build is about a minute

pytestmark = pytest.mark.install_check


@pytest.fixture(scope="module")
def controller_venv(request):
    """A venv holding `pip install ".[os-ken]"` of the checkout, and nothing of the bench."""
    where = tempfile.mkdtemp(prefix="ipop-install-check-")
    request.addfinalizer(lambda: shutil.rmtree(where, ignore_errors=True))
    # the checkout's sources without its build debris: setuptools packs whatever an earlier
    # build left in build/lib (modules since moved, such as ipop_ryu/bench) into the wheel
    source = os.path.join(where, "ipop-ryu")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
        "results"))
    venv = os.path.join(where, "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    # as the Makefile installs: the build constraint (setuptools < 68) on every install
    env = dict(os.environ, PIP_CONSTRAINT=os.path.join(ROOT, "constraints-build.txt"),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q",
                           ".[os-ken]"], cwd=source, env=env, capture_output=True, text=True,
                          timeout=PIP_TIMEOUT)
    assert proc.returncode == 0, f"pip install .[os-ken] failed:\n{proc.stderr[-2000:]}"
    return venv


def _run(venv, *argv):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # outside any source tree, so that only what was installed is imported
    return subprocess.run([os.path.join(venv, "bin", argv[0]), *argv[1:]], env=env,
                          cwd=os.path.dirname(venv), capture_output=True, text=True, timeout=60)


def test_the_controller_install_brings_no_bench(controller_venv):
    code = ("import importlib.util as u; "
            "print([m for m in ('matplotlib', 'numpy', 'ipop_bench') if u.find_spec(m)])")
    proc = _run(controller_venv, "python", "-c", code)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", (proc.stdout, proc.stderr)


@pytest.mark.parametrize("argv", [["--help"], ["lab", "--help"], ["bench", "--help"]])
def test_ipop_ryu_help_works_there(controller_venv, argv):
    proc = _run(controller_venv, "ipop-ryu", *argv)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: ipop-ryu"), proc.stdout


def test_ipop_ryu_bench_there_says_in_one_line_what_to_install(controller_venv):
    proc = _run(controller_venv, "ipop-ryu", "bench", "--quick")
    assert proc.returncode != 0
    assert proc.stderr == ("ipop-ryu: bench: ipop_bench is not installed; the bench is a "
                           "package of its own: pip install ./bench (from a checkout of "
                           "ipop-ryu)\n"), proc.stderr

"""The framework shim: which framework is chosen, and that this venv's managers work as
installed (Ryu 4.34 on eventlet >= 0.30.3 through the package's .pth; os-ken without Ryu)."""
import importlib.util
import os
import subprocess
import sys

import pytest

from ipop_ryu.compat import framework

BIN = os.path.dirname(sys.executable)


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kwargs)


def test_the_running_framework_wins_then_the_variable_then_os_ken():
    both = {"ryu", "os_ken"}.__contains__
    assert framework.choose({"ryu.lib.hub": 1}, {"IPOP_RYU_FRAMEWORK": "os-ken"}, both) == "ryu"
    assert framework.choose({"os_ken.lib.hub": 1}, {}, both) == "os_ken"
    assert framework.choose({}, {"IPOP_RYU_FRAMEWORK": "ryu"}, both) == "ryu"
    assert framework.choose({}, {}, both) == "os_ken"
    assert framework.choose({}, {}, {"ryu"}.__contains__) == "ryu"


@pytest.mark.parametrize("environ,installed,words", [
    ({"IPOP_RYU_FRAMEWORK": "nox"}, {"ryu"}, "'nox': expected ryu or os-ken"),
    ({"IPOP_RYU_FRAMEWORK": "os-ken"}, {"ryu"}, "pip install 'ipop-ryu[os-ken]'"),
    ({}, set(), "neither os-ken nor ryu is installed"),
])
def test_no_usable_framework_is_one_clear_line(environ, installed, words):
    with pytest.raises(framework.FrameworkError) as error:
        framework.choose({}, environ, installed.__contains__)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_controller_names_the_framework_in_use():
    shown = run([os.path.join(BIN, "ipop-ryu"), "controller", "--version"])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"ipop-ryu controller on {framework.NAME} {framework.VERSION}\n"
    assert "Eventlet is deprecated" not in shown.stderr


@pytest.mark.skipif(not framework.HAS_MANAGER, reason="os-ken 4 ships no manager command")
def test_the_frameworks_manager_starts_and_reports_its_version():
    shown = run([os.path.join(BIN, framework.MANAGER), "--version"])
    assert shown.returncode == 0, shown.stderr
    assert f"{framework.MANAGER} {framework.VERSION}" in shown.stdout + shown.stderr


@pytest.mark.skipif(framework.NAME != "ryu", reason="Ryu only")
def test_ryu_wsgi_imports_in_a_fresh_interpreter():
    code = "import ryu.app.wsgi, eventlet.wsgi; print(eventlet.wsgi.ALREADY_HANDLED == ())"
    shown = run([sys.executable, "-c", code])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "True"


@pytest.mark.skipif(framework.NAME != "os_ken", reason="os-ken only")
def test_an_os_ken_install_has_no_ryu():
    assert importlib.util.find_spec("ryu") is None


def test_shim_only_adds_the_missing_name():
    code = ("import sys; import ipop_ryu.compat.eventlet_already_handled as c; "
            "assert 'eventlet' not in sys.modules; c.install(); c.install(); "
            "print(sum(isinstance(f, c._AddAlreadyHandled) for f in sys.meta_path))")
    shown = run([sys.executable, "-S", "-c", code], env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "1"

"""`.venv/bin/ryu-manager` works as installed on this Python (ryu 4.34 + eventlet >= 0.30.3)."""
import os
import subprocess
import sys

BIN = os.path.dirname(sys.executable)


def test_ryu_manager_starts_and_reports_its_version():
    run = subprocess.run([os.path.join(BIN, "ryu-manager"), "--version"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "ryu-manager 4.34" in run.stdout + run.stderr


def test_ryu_wsgi_imports_in_a_fresh_interpreter():
    code = "import ryu.app.wsgi, eventlet.wsgi; print(eventlet.wsgi.ALREADY_HANDLED == ())"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "True"


def test_shim_only_adds_the_missing_name():
    code = ("import sys; import ipop_ryu.compat.eventlet_already_handled as c; "
            "assert 'eventlet' not in sys.modules; c.install(); c.install(); "
            "print(sum(isinstance(f, c._AddAlreadyHandled) for f in sys.meta_path))")
    run = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "1"

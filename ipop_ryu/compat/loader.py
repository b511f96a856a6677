"""Which framework runs (Ryu 4.34, os-ken 3.x or 4.x), and the few of its modules everything
else in compat/ builds on: its hub, its config, its app base class. framework.py (the names the
app uses) and wsgi.py (os-ken's missing REST server) both import from here, so neither imports a
half-loaded other. The rules for choosing are in framework.py's docstring.
"""
import importlib
import importlib.util
import os
import sys

from ipop_ryu.compat import green

FRAMEWORKS = ("ryu", "os_ken")
ENV = "IPOP_RYU_FRAMEWORK"


class FrameworkError(ImportError):
    """No usable framework: the message says which to install."""


def _installed(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def choose(modules=None, environ=None, installed=_installed):
    """The framework's import name, `ryu` or `os_ken` (see the module docstring)."""
    modules = sys.modules if modules is None else modules
    environ = os.environ if environ is None else environ
    running = [name for name in FRAMEWORKS if f"{name}.lib.hub" in modules]
    if len(running) == 1:
        return running[0]
    wanted = environ.get(ENV, "").strip().lower().replace("-", "_")
    if wanted:
        if wanted not in FRAMEWORKS:
            raise FrameworkError(f"{ENV}={environ[ENV]!r}: expected ryu or os-ken")
        if not installed(wanted):
            raise FrameworkError(f"{ENV}={environ[ENV]!r} but {wanted} is not installed "
                                 f"(pip install 'ipop-ryu[{wanted.replace('_', '-')}]')")
        return wanted
    for name in ("os_ken", "ryu"):
        if installed(name):
            return name
    raise FrameworkError("neither os-ken nor ryu is installed: pip install 'ipop-ryu[os-ken]' "
                         "(or 'ipop-ryu[ryu]')")


NAME = choose()

if NAME == "ryu":
    from ipop_ryu.compat import eventlet_already_handled
    eventlet_already_handled.install()   # before anything imports ryu.app.wsgi
else:
    # os-ken 4 defaults to native threads; os-ken 3 reads the same variable (default eventlet)
    os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")


green.silence_deprecation_notice()     # before the hub imports eventlet (see green.py)


def _import(path):
    return importlib.import_module(f"{NAME}.{path}")


hub = _import("lib.hub")
if getattr(hub, "HUB_TYPE", "eventlet") != "eventlet":
    raise FrameworkError(f"OSKEN_HUB_TYPE={hub.HUB_TYPE}: ipop-ryu runs on eventlet's green "
                         "threads; unset OSKEN_HUB_TYPE or set it to eventlet")
cfg = _import("cfg")
_app_manager = _import("base.app_manager")
BaseApp = getattr(_app_manager, "RyuApp", None) or _app_manager.OSKenApp

"""Give Ryu 4.34 the `eventlet.wsgi.ALREADY_HANDLED` name that eventlet 0.30.3 removed.

`ryu-manager` imports `ryu/app/wsgi.py`, whose class body runs
`from eventlet.wsgi import ALREADY_HANDLED` (faucetsdn/ryu#138, fixed in the unreleased
faucetsdn/ryu#137). Since eventlet 0.30.3 (eventlet#544) a WSGI app that took over the socket
sets `WSGI_LOCAL.already_handled` and returns an empty body, which is what `eventlet.websocket`
itself returns. We define the old name as that empty body, nothing else.

Installed as a one-line `.pth` file in the venv (see the Makefile), so `.venv/bin/ryu-manager`
works as installed. The hook costs nothing until something imports `eventlet.wsgi`.
"""
import importlib.abc
import importlib.util
import sys

TARGET = "eventlet.wsgi"
ALREADY_HANDLED = ()  # eventlet >= 0.30.3 returns an empty iterable after taking over a socket


class _AddAlreadyHandled(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)  # one shot: let the normal finders locate the real module
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            if not hasattr(module, "ALREADY_HANDLED"):
                module.ALREADY_HANDLED = ALREADY_HANDLED

        spec.loader.exec_module = exec_and_patch
        return spec


def install():
    module = sys.modules.get(TARGET)
    if module is not None:
        if not hasattr(module, "ALREADY_HANDLED"):
            module.ALREADY_HANDLED = ALREADY_HANDLED
    elif not any(isinstance(f, _AddAlreadyHandled) for f in sys.meta_path):
        sys.meta_path.insert(0, _AddAlreadyHandled())


install()

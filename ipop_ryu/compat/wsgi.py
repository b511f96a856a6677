"""The REST server os-ken no longer has: Ryu's `app/wsgi.py` API, the part ipop-ryu uses.

os-ken 3 and 4 dropped `app/wsgi.py` and the `--wsapi-host/--wsapi-port` options with it.
This module offers the same names as Ryu's (`WSGIApplication`, `ControllerBase`, `Response`,
`route`), so `ipop_ryu.apps.rest` is written once. The difference: Ryu's manager starts the
server (`wsgi.start_service`); nothing in os-ken would, so our `WSGIApplication` is an app
context that starts its own server on the framework's hub when the apps start.

Imported only through `ipop_ryu.compat.framework`, after the framework is chosen.
"""
import inspect
import logging

import webob
import webob.dec
import webob.exc
from oslo_config.cfg import ArgsAlreadyParsedError
from routes import Mapper

from ipop_ryu.compat.loader import BaseApp, cfg, hub

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
OPTS = [cfg.StrOpt("wsapi-host", default="", help="webapp listen host"),
        cfg.IntOpt("wsapi-port", default=8080, help="webapp listen port")]


def register_options(conf=CONF):
    """--wsapi-host/--wsapi-port on the command line, or (when the manager parsed its command
    line before loading us, as osken-manager does) in the configuration file's [DEFAULT]."""
    if "wsapi_host" in conf:
        return
    try:
        conf.register_cli_opts(OPTS)
    except ArgsAlreadyParsedError:
        conf.register_opts(OPTS)


register_options()


class Response(webob.Response):
    default_charset = "utf-8"


def route(name, path, methods=None, requirements=None):
    """Mark a controller method as the handler of `path` (Ryu's decorator, same arguments)."""
    def mark(method):
        method.routing_info = {"name": name, "path": path, "methods": methods,
                               "requirements": requirements}
        return method
    return mark


class ControllerBase:
    """One request's handler: built per request with the data registered for its class."""
    special_vars = ("action", "controller")

    def __init__(self, req, link, data, **config):
        self.req, self.link, self.data, self.parent = req, link, data, None
        for name, value in config.items():
            setattr(self, name, value)

    def __call__(self, req):
        kwargs = {k: v for k, v in req.urlvars.items() if k not in self.special_vars}
        return getattr(self, req.urlvars["action"])(req, **kwargs)


class WSGIApplication(BaseApp):
    """The `wsgi` app context: routes registered controllers and serves them on
    CONF.wsapi_host:CONF.wsapi_port from its own green thread once the apps start."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mapper = Mapper()
        self.registry = {}
        self.server = None

    def register(self, controller, data=None):
        for method_name, method in inspect.getmembers(controller, inspect.isfunction):
            info = getattr(method, "routing_info", None)
            if info is None:
                continue
            conditions = {"method": info["methods"]} if info["methods"] else {}
            self.mapper.connect(info["name"], info["path"], controller=controller,
                                requirements=info["requirements"] or {}, action=method_name,
                                conditions=conditions)
        if data:
            self.registry[controller.__name__] = data

    @webob.dec.wsgify
    def __call__(self, req):
        match = self.mapper.match(environ=req.environ)
        if not match:
            return webob.exc.HTTPNotFound()
        req.urlvars = match
        controller_cls = match["controller"]
        controller = controller_cls(req, None, self.registry.get(controller_cls.__name__))
        controller.parent = self
        return controller(req)

    def start(self):
        super().start()
        address = (CONF.wsapi_host, CONF.wsapi_port)
        self.server = hub.WSGIServer(address, self)
        LOG.info("REST API on %s:%d", address[0] or "0.0.0.0",
                 self.server.server.getsockname()[1])
        return hub.spawn(self.server.serve_forever)

    def close(self):
        if self.server is not None:
            self.server.server.close()

"""The one place ipop-ryu imports its OpenFlow framework from: Ryu 4.34, os-ken 3.x or os-ken 4.x.

Every other module takes the framework's names from here (`from ipop_ryu.compat.framework
import app_manager, hub, ...`), so the same app runs under `ryu-manager`, `osken-manager` and
`ipop-ryu controller`. Which framework:

1. the one already running us: `ryu-manager` and `osken-manager` import their own hub before
   they load an app, so a loaded `ryu` or `os_ken` wins;
2. else `IPOP_RYU_FRAMEWORK` (`ryu` or `os-ken`), when set;
3. else os-ken when it is installed (maintained), else Ryu.

What differs between them and is smoothed over here:
- Ryu 4.34 imports `eventlet.wsgi.ALREADY_HANDLED`, which eventlet removed: the hook in
  `eventlet_already_handled` is installed before any of Ryu is imported;
- os-ken 3 and 4 have no `app/wsgi.py` (the REST server, `--wsapi-host/--wsapi-port`):
  `ipop_ryu.compat.wsgi` is a small stand-in with the same API;
- os-ken 4 runs its hub on native threads unless `OSKEN_HUB_TYPE=eventlet`; the app is written
  for green threads (one event loop, no locks), so eventlet is asked for, and any other hub
  is refused with one clear line;
- the app base class is `RyuApp` in Ryu and `OSKenApp` in os-ken: `app_manager.RyuApp` is
  offered under both names.
"""
import sys
import types

from ipop_ryu.compat.loader import (ENV, FRAMEWORKS, NAME, BaseApp, FrameworkError,  # noqa: F401
                                   _app_manager, _import, _installed, cfg, choose, hub)

AppManager = _app_manager.AppManager
# what the app reads from `app_manager` (Ryu's spelling, under both frameworks)
app_manager = types.SimpleNamespace(RyuApp=BaseApp, AppManager=AppManager,
                                    module=_app_manager)
ofp_event = _import("controller.ofp_event")
_handler = _import("controller.handler")
CONFIG_DISPATCHER = _handler.CONFIG_DISPATCHER
MAIN_DISPATCHER = _handler.MAIN_DISPATCHER
DEAD_DISPATCHER = _handler.DEAD_DISPATCHER
set_ev_cls = _handler.set_ev_cls
datapath_connection_factory = _import("controller.controller").datapath_connection_factory
StreamClient = hub.StreamClient
ofproto_v1_3 = _import("ofproto.ofproto_v1_3")
ofproto_v1_3_parser = _import("ofproto.ofproto_v1_3_parser")
ofproto_protocol = _import("ofproto.ofproto_protocol")
oxm_fields = _import("ofproto.oxm_fields")          # OVS's Ericsson OXMs (ofp.ryu13)
type_desc = _import("lib.type_desc")
_top = sys.modules[NAME]
VERSION = str(getattr(_top, "__version__", None) or getattr(_top, "version", "unknown"))

if NAME == "ryu":
    _wsgi = _import("app.wsgi")
else:
    from ipop_ryu.compat import wsgi as _wsgi
WSGIApplication = _wsgi.WSGIApplication
ControllerBase = _wsgi.ControllerBase
Response = _wsgi.Response
route = _wsgi.route
start_wsgi_service = getattr(_wsgi, "start_service", None)  # Ryu's; ours starts itself

DISPLAY_NAME = {"ryu": "Ryu", "os_ken": "os-ken"}[NAME]


def running():
    """The framework and hub in use, as the controller's first log line says it."""
    hub_type = getattr(hub, "HUB_TYPE", "eventlet")
    hub_version = getattr(sys.modules.get(hub_type), "__version__", None)
    return f"{DISPLAY_NAME} {VERSION}, " + " ".join(filter(None, (hub_type, hub_version, "hub")))


# the framework's manager command, if it has one (os-ken 4 has none)
MANAGER = {"ryu": "ryu-manager", "os_ken": "osken-manager"}[NAME]
HAS_MANAGER = _installed(f"{NAME}.cmd.manager")


def run_apps(app_lists, args, prog="ipop-ryu controller"):
    """What `ryu-manager ARGS APPS` does, under whichever framework was chosen: parse the
    framework's options from `args` (`--config-file`, `--ofp-*`, `--wsapi-*`), start the
    apps and their contexts, and block until they stop. os-ken goes through its
    `AppManager.run_apps` (the only runner os-ken 4 keeps); under Ryu, its manager's steps,
    which also start Ryu's REST server."""
    import logging
    log = _import("log")
    log.early_init_log(logging.DEBUG)
    _import("flags")                    # the managers' options (--verbose, --log-file, ...)
    cfg.CONF(args=args, prog=prog, project=NAME, version=f"{prog} ({NAME} {VERSION})",
             default_config_files=[])
    log.init_log()
    logging.getLogger("ipop_ryu").info("%s on %s", prog, running())
    hub.patch(thread=True)              # (done already by `ipop-ryu controller`'s green.py)
    if start_wsgi_service is None:      # os-ken: our WSGIApplication starts itself
        AppManager.run_apps(app_lists)
        return
    manager = AppManager.get_instance()
    manager.load_apps(app_lists)
    services = list(manager.instantiate_apps(**manager.create_contexts()))
    webapp = start_wsgi_service(manager)
    if webapp:
        services.append(hub.spawn(webapp))
    try:
        hub.joinall(services)
    finally:
        manager.close()

"""`ipop-ryu controller`: run the switch-mode app under whichever framework is installed.

Takes `ryu-manager`'s command line (`--config-file`, `--ofp-listen-host`,
`--ofp-tcp-listen-port`, `--wsapi-host`, `--wsapi-port`, then app modules, by default
`ipop_ryu.apps.switchmode`), so it drops in wherever `ryu-manager` was used, and it works on
os-ken 4, which ships no manager command. Arguments are checked here, each bad one answered in
one line; the run itself is `ipop_ryu.compat.framework.run_apps`.
"""
import importlib.util
import os

from ipop_ryu.cli import CommandError

DEFAULT_APP = "ipop_ryu.apps.switchmode"


def _port(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise CommandError(f"bad port {text!r}: expected a whole number from 0 to 65535")
    return value


def framework_args(args):
    """The framework's own command line for these options (checked first)."""
    out = []
    for path in args.config_file:
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise CommandError(f"--config-file {path}: no such readable file")
        out += ["--config-file", path]
    for option in ("ofp_listen_host", "wsapi_host"):
        value = getattr(args, option)
        if value is not None:
            out += ["--" + option.replace("_", "-"), value]
    for option in ("ofp_tcp_listen_port", "wsapi_port"):
        value = getattr(args, option)
        if value is not None:
            out += ["--" + option.replace("_", "-"), str(_port(value))]
    return out


def app_names(args):
    apps = args.apps or [DEFAULT_APP]
    for name in apps:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise CommandError(f"no app module {name!r} (a Python module path such as "
                               f"{DEFAULT_APP})")
    return apps


def green_everything_but_threads():
    """What ryu-manager and osken-manager do first: eventlet's green socket, select, time...
    (not threading, patched once the options are read, in framework.run_apps). It must be its
    own call: eventlet patches only the modules named True when any is."""
    import warnings
    warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
    import eventlet
    eventlet.monkey_patch(thread=False)


def run(args):
    conf_args = framework_args(args)
    apps = app_names(args)
    if not args.version:
        green_everything_but_threads()
    try:
        from ipop_ryu.compat import framework
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    if args.version:
        print(f"ipop-ryu controller on {framework.NAME} {framework.VERSION}")
        return 0
    framework.run_apps(apps, conf_args)
    return 0


def register(sub):
    parser = sub.add_parser(
        "controller", help="run the controller (ryu-manager's command line, any framework)",
        description="Run the switch-mode app (or the named app modules) under the installed "
                    "framework: Ryu 4.34, os-ken 3 or os-ken 4.")
    parser.add_argument("--config-file", action="append", default=[], metavar="PATH",
                        help="a site's configuration file ([DEFAULT] and [ipop]); repeatable")
    parser.add_argument("--ofp-listen-host", metavar="HOST",
                        help="OpenFlow listen address (default: all)")
    parser.add_argument("--ofp-tcp-listen-port", metavar="PORT",
                        help="OpenFlow listen port (default 6653)")
    parser.add_argument("--wsapi-host", metavar="HOST",
                        help="REST API listen address (default: all). Under os-ken's own "
                             "osken-manager these two are no command-line options (it parses "
                             "its command line before our options exist): put wsapi_host and "
                             "wsapi_port in [DEFAULT] of the configuration file")
    parser.add_argument("--wsapi-port", metavar="PORT", help="REST API port (default 8080)")
    parser.add_argument("--version", action="store_true",
                        help="print the framework in use and exit")
    parser.add_argument("apps", nargs="*", metavar="APP",
                        help=f"app modules to run (default {DEFAULT_APP})")
    parser.set_defaults(func=run)

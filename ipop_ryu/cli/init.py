"""`ipop-ryu init`: write one site's configuration and the overlay's ICC key, never overwriting.

The /etc/ipop layout (README, "A site as a service"):

    /etc/ipop/<NODE>.conf   the site's configuration: [DEFAULT] OpenFlow and REST listeners,
                            [ipop] the switch-mode options; read by `ipop-ryu@<NODE>.service`
    /etc/ipop/icc.key       the overlay's shared ICC secret (0600): the same bytes on every
                            site; the first site's init makes it, the others take it (--key)

Everything is checked (by the same parser the controller uses) before anything is written;
a file already there is an error, and nothing is written then.
"""
import os
import secrets
import tempfile

from ipop_ryu.cli import CommandError
from ipop_ryu.cli.bridge import default_controller, switch_address_for
from ipop_ryu.core.config import ConfigError, parse, read_key

ETC = "/etc/ipop"
KEY_NAME = "icc.key"
FLAGS = {"node_id": "--node-id", "peers": "--peer", "icc_address": "--icc-address",
         "icc_port": "--icc-port", "overlay_ports": "--overlay-ports",
         "overlay_subnet": "--overlay-subnet", "switch_address": "--switch-address"}


def site_options(args, key_path):
    """[ipop] of the new site, as the strings the file will hold."""
    options = {"node_id": args.node_id, "icc": "true", "icc_address": args.icc_address,
               "icc_port": args.icc_port, "peers": ",".join(args.peer),
               "overlay_ports": args.overlay_ports, "icc_key_file": key_path}
    if args.overlay_subnet:
        options["overlay_subnet"] = args.overlay_subnet
    if args.switch_address:
        options["switch_address"] = args.switch_address
    return options


def render(args, options):
    lines = ["# ipop-ryu site configuration, written by `ipop-ryu init` (README: /etc/ipop)",
             "[DEFAULT]",
             f"ofp_listen_host = {args.ofp_listen_host}",
             f"ofp_tcp_listen_port = {args.ofp_port}",
             f"wsapi_host = {args.wsapi_host}",
             f"wsapi_port = {args.wsapi_port}",
             "", "[ipop]"]
    return "\n".join(lines + [f"{k} = {v}" for k, v in options.items()]) + "\n"


def _check(args, key_bytes, key_path):
    """Parse what would be written, with the key it would point at."""
    for name, text, low in (("--ofp-port", args.ofp_port, 1), ("--wsapi-port", args.wsapi_port, 0)):
        if not text.isdigit() or not low <= int(text) <= 65535:
            raise CommandError(f"bad {name} {text!r}: expected a whole number from {low} "
                               "to 65535")
    with tempfile.NamedTemporaryFile("wb") as probe:
        probe.write(key_bytes)
        probe.flush()
        options = site_options(args, probe.name)
        try:
            parse(options)
        except ConfigError as exc:      # "[ipop] peers: ..." -> "--peer ..."
            name, _, message = str(exc).partition("[ipop] ")[2].partition(": ")
            raise CommandError(f"bad {FLAGS.get(name, name)} {message}") from None
    return site_options(args, key_path)


def _write_new(path, data, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def run(args):
    if args.switch_address is None:     # as `ipop-ryu bridge setup BRIDGE` sets it up
        args.switch_address = switch_address_for(default_controller(args.bridge))
    directory = os.path.abspath(args.dir)
    conf_path = os.path.join(directory, f"{args.node_id}.conf")
    key_path = os.path.join(directory, KEY_NAME)
    if args.key:
        key = read_key(args.key, lambda message: _fail(f"--key {message}")) + b"\n"
    else:
        key = secrets.token_hex(32).encode() + b"\n"
    options = _check(args, key, key_path)
    for path in (conf_path, key_path):
        if os.path.lexists(path):
            raise CommandError(f"{path} exists: not overwritten (remove it first, or give "
                               "another --dir); nothing was written")
    os.makedirs(directory, mode=0o755, exist_ok=True)
    _write_new(key_path, key, 0o600)
    try:
        _write_new(conf_path, render(args, options).encode(), 0o644)
    except OSError:
        os.unlink(key_path)
        raise
    hosts = [peer.partition("@")[2].rpartition(":")[0].strip("[]") for peer in args.peer]
    names = [peer.partition("@")[0] for peer in args.peer]
    bridge_peers = "".join(f" --peer {n}={h}" for n, h in zip(names, hosts))
    print(f"wrote {conf_path}\nwrote {key_path} (0600)"
          + ("" if args.key else "; copy it to every other site and init them with --key"))
    print("next:")
    controller = "" if args.switch_address else \
        f" --controller tcp:{args.ofp_listen_host}:{args.ofp_port}"
    print(f"  ipop-ryu bridge setup {args.bridge}{controller}{bridge_peers} --port IFACE...")
    print(f"  systemctl enable --now ipop-ryu@{args.node_id}   "
          f"# or: ipop-ryu controller --config-file {conf_path}")
    print(f"  ipop-ryu doctor --config-file {conf_path}")
    return 0


def _fail(message):
    raise CommandError(message)


def register(sub):
    parser = sub.add_parser("init", help="write a site's configuration and key (never "
                                         "overwrites)",
                            description="Write DIR/NODE.conf and DIR/icc.key for one site.")
    parser.add_argument("--node-id", required=True, metavar="NAME",
                        help="this site's controller name, unique in the overlay")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME@HOST:PORT",
                        help="another site's controller (repeatable)")
    parser.add_argument("--key", metavar="FILE",
                        help="the overlay's existing ICC key (from the first site); "
                             "default: make a new one")
    parser.add_argument("--icc-address", default="0.0.0.0", metavar="ADDR",
                        help="UDP bind address for ICC (default 0.0.0.0)")
    parser.add_argument("--icc-port", default="30000", metavar="PORT")
    parser.add_argument("--overlay-ports", default="ipop*", metavar="NAMES",
                        help="comma list of the bridge's ports to other sites (default ipop*)")
    parser.add_argument("--overlay-subnet", default="", metavar="CIDRS")
    parser.add_argument("--ofp-listen-host", default="127.0.0.1", metavar="HOST",
                        help="where the controller listens for its bridge (default 127.0.0.1)")
    parser.add_argument("--ofp-port", default="6653", metavar="PORT")
    parser.add_argument("--wsapi-host", default="127.0.0.1", metavar="HOST",
                        help="REST API address (default 127.0.0.1)")
    parser.add_argument("--wsapi-port", default="8080", metavar="PORT")
    parser.add_argument("--bridge", default="br0",
                        help="the site's bridge, for the default --switch-address (br0)")
    parser.add_argument("--switch-address", metavar="unix:PATH|tcp:HOST:PORT",
                        help="the bridge's listener the controller dials (default: the one "
                             "`ipop-ryu bridge setup BRIDGE` makes, unix:$OVS_RUNDIR/"
                             "BRIDGE.ipop); '' = the bridge dials the controller's "
                             "--ofp-listen-host:--ofp-port instead")
    parser.add_argument("--dir", default=ETC, help=f"where to write (default {ETC})")
    parser.set_defaults(func=run)

"""`ipop-ryu init`: write one site's configuration and its key, never overwriting.

The /etc/ipop layout (README, "A site as a service"):

    /etc/ipop/<NODE>.conf   the site's configuration: [DEFAULT] OpenFlow and REST listeners,
                            [ipop] the switch-mode options; read by `ipop-ryu@<NODE>.service`
    /etc/ipop/<NODE>.key    with --node-keys: the node's own private key (0600, `wg genkey`'s
                            format), and /etc/ipop/peers.conf, one section per node (its own
                            written here, the others' appended by the operator)
    /etc/ipop/icc.key       without: the overlay's shared ICC secret (0600): the same bytes on
                            every site; the first site's init makes it, the others take it (--key)

Everything is checked (by the same parser the controller uses) before anything is written;
a file already there is an error, and nothing is written then.
"""
import ipaddress
import os
import secrets
import tempfile

from ipop_ryu.cli import CommandError
from ipop_ryu.host.ovsctl import RUNDIR_HINT, default_controller, elsewhere, rundir, \
    switch_address_for
from ipop_ryu.host.peers import FORMS, parse_peer
from ipop_ryu.core.config import ConfigError, parse, read_key, read_peers_file
from ipop_ryu.core.keys import generate_private_key, public_key_of

ETC = "/etc/ipop"
KEY_NAME = "icc.key"
PEERS_NAME = "peers.conf"
FLAGS = {"node_id": "--node-id", "peers": "--peer", "icc_address": "--icc-address",
         "icc_port": "--icc-port", "overlay_ports": "--overlay-ports",
         "overlay_subnet": "--overlay-subnet", "switch_address": "--switch-address",
         "peers_file": "--allowed-ips"}     # (--node-keys: the flag peers.conf comes from)


def site_options(args, key_path, peers_path=None):
    """[ipop] of the new site, as the strings the file will hold (peers_path: node keys)."""
    keys = {"private_key_file": key_path, "peers_file": peers_path} if peers_path else \
        {"peers": ",".join(parse_peer(p).icc(args.icc_port) for p in args.peer),
         "icc_key_file": key_path}
    options = {"node_id": args.node_id, "icc": "true", "icc_address": args.icc_address,
               "icc_port": args.icc_port, "overlay_ports": args.overlay_ports, **keys}
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


def own_section(args, public_key):
    """This node's section of peers.conf."""
    host = f"[{args.icc_address}]" if ":" in args.icc_address else args.icc_address
    lines = [f"[{args.node_id}]", f"endpoint = {host}:{args.icc_port}",
             f"public_key = {public_key}"]
    if args.allowed_ips:
        lines.append(f"allowed_ips = {args.allowed_ips}")
    return "\n".join(lines) + "\n"


def _check(args, key_bytes, key_path, peers_text=None, peers_path=None):
    """Parse what would be written, with the key (and peers file) it would point at."""
    for name, text, low in (("--ofp-port", args.ofp_port, 1), ("--wsapi-port", args.wsapi_port, 0)):
        if not text.isdigit() or not low <= int(text) <= 65535:
            raise CommandError(f"bad {name} {text!r}: expected a whole number from {low} "
                               "to 65535")
    with tempfile.TemporaryDirectory() as probe:
        probe_key = os.path.join(probe, "key")
        _write_new(probe_key, key_bytes, 0o600)
        probe_peers = None
        if peers_text is not None:
            probe_peers = os.path.join(probe, PEERS_NAME)
            _write_new(probe_peers, peers_text.encode(), 0o644)
        try:
            parse(site_options(args, probe_key, probe_peers))
        except ConfigError as exc:      # "[ipop] peers: ..." -> "--peer ..."
            name, _, message = str(exc).partition("[ipop] ")[2].partition(": ")
            if probe_peers and name == "peers_file" and \
                    f"[{args.node_id}] allowed_ips" not in message:     # the existing file's
                message = message.replace(repr(probe_peers), repr(peers_path))
                raise CommandError(f"{message}: fix it first (it is read with this node's "
                                   "section added); nothing was written") from None
            message = message.replace(repr(probe_peers), PEERS_NAME) if probe_peers else message
            raise CommandError(f"bad {FLAGS.get(name, name)} {message}") from None
    return site_options(args, key_path, peers_path)


def _write_new(path, data, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _write_site(directory, files):
    """files: [(path, bytes, mode)], all new: one there already is an error before any is
    written, and a failed write removes the ones written before it."""
    for path, _, _ in files:
        if os.path.lexists(path):
            raise CommandError(f"{path} exists: not overwritten (remove it first, or give "
                               "another --dir); nothing was written")
    os.makedirs(directory, mode=0o755, exist_ok=True)
    written = []
    try:
        for path, data, mode in files:
            _write_new(path, data, mode)
            written.append(path)
    except OSError:
        for path in written:
            os.unlink(path)
        raise


def _print_service(args, conf_path):
    print(f"  systemctl enable --now ipop-ryu@{args.node_id}   "
          f"# or: ipop-ryu controller --config-file {conf_path}")


def run(args):
    if args.switch_address is None:     # as `ipop-ryu bridge setup BRIDGE` sets it up
        other = elsewhere()
        if other:
            raise CommandError(f"Open vSwitch runs here in {other}, not {rundir()} (the "
                               f"bridge's listener goes there): {RUNDIR_HINT.format(other)}, "
                               "or give --switch-address; nothing was written")
        args.switch_address = switch_address_for(default_controller(args.bridge))
    directory = os.path.abspath(args.dir)
    if args.node_keys:
        return _run_node_keys(args, directory)
    if args.allowed_ips:
        raise CommandError("--allowed-ips needs --node-keys (it goes into peers.conf)")
    conf_path = os.path.join(directory, f"{args.node_id}.conf")
    key_path = os.path.join(directory, KEY_NAME)
    if args.key:
        key = read_key(args.key, lambda message: _fail(f"--key {message}")) + b"\n"
    else:
        key = secrets.token_hex(32).encode() + b"\n"
    options = _check(args, key, key_path)
    _write_site(directory, [(conf_path, render(args, options).encode(), 0o644),
                            (key_path, key, 0o600)])
    bridge_peers = "".join(f" --peer {p.name}={p.host}" for p in map(parse_peer, args.peer))
    print(f"wrote {conf_path}\nwrote {key_path} (0600)"
          + ("" if args.key else "; copy it to every other site and init them with --key"))
    print("next:")
    controller = "" if args.switch_address else \
        f" --controller tcp:{args.ofp_listen_host}:{args.ofp_port}"
    print(f"  ipop-ryu bridge setup {args.bridge}{controller}{bridge_peers} --port IFACE...")
    _print_service(args, conf_path)
    print(f"  ipop-ryu doctor --config-file {conf_path}")
    return 0


def _run_node_keys(args, directory):
    """--node-keys: NODE.key (a new private key), NODE.conf pointing at it and peers.conf,
    and peers.conf with this node's section unless it exists (then the section is printed
    to add)."""
    if args.peer or args.key:
        raise CommandError("with --node-keys, peers are sections of peers.conf, each with its "
                           "public_key: drop --peer and --key")
    if _unspecified(args.icc_address):
        raise CommandError("with --node-keys, --icc-address must be this node's own address "
                           "(it is the endpoint other sites write in their peers.conf)")
    conf_path = os.path.join(directory, f"{args.node_id}.conf")
    key_path = os.path.join(directory, f"{args.node_id}.key")
    peers_path = os.path.join(directory, PEERS_NAME)
    private = generate_private_key()
    section = own_section(args, public_key_of(private))
    new_peers = not os.path.lexists(peers_path)
    # checked as the file will be: the existing one (kept) with this node's section added
    peers_text = section if new_peers else _existing_peers(args, peers_path) + section
    options = _check(args, (private + "\n").encode(), key_path, peers_text, peers_path)
    files = [(conf_path, render(args, options).encode(), 0o644),
             (key_path, (private + "\n").encode(), 0o600)]
    _write_site(directory, files + ([(peers_path, section.encode(), 0o644)] if new_peers
                                    else []))
    print(f"wrote {conf_path}\nwrote {key_path} (0600; public key {public_key_of(private)})")
    if new_peers:
        print(f"wrote {peers_path} with [{args.node_id}]")
    where = "every other site's peers.conf" if new_peers else \
        f"{peers_path} and every other site's peers.conf"
    print(f"add this section to {where} (and theirs to this one):\n\n{section}")
    print("next:")
    print(f"  ipop-ryu bridge setup {args.bridge} --peer NAME=HOST ... --port IFACE...")
    _print_service(args, conf_path)
    print("  ipop-ryu reload   # on each site already running, once its peers.conf has this "
          "section")
    return 0


def _unspecified(address):
    """0.0.0.0, ::, 0:0::0...: a bind address, not one other sites can send to."""
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False        # not an address at all: the parser says so, naming the flag


def _existing_peers(args, peers_path):
    """The text of a peers.conf already there (kept as it is), if this node can join it."""
    try:
        listed = read_peers_file(peers_path)
        with open(peers_path) as handle:
            text = handle.read()
    except (OSError, ValueError) as exc:
        raise CommandError(f"{exc}: fix it first ({PEERS_NAME} is kept as it is); nothing "
                           "was written") from None
    if args.node_id in listed:
        raise CommandError(f"{peers_path} already has [{args.node_id}] (an earlier key's?): "
                           "remove that section there, then init again; nothing was written")
    return text if not text or text.endswith("\n") else text + "\n"


def _fail(message):
    raise CommandError(message)


def register(sub):
    parser = sub.add_parser("init", help="write a site's configuration and key (never "
                                         "overwrites)",
                            description="Write DIR/NODE.conf and DIR/icc.key for one site "
                                        "(--node-keys: DIR/NODE.key and DIR/peers.conf).")
    parser.add_argument("--node-id", required=True, metavar="NAME",
                        help="this site's controller name, unique in the overlay")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=HOST[:PORT]",
                        help=f"another site's controller (repeatable): {FORMS}, as bridge "
                             "setup takes it; PORT defaults to --icc-port")
    parser.add_argument("--node-keys", action="store_true",
                        help="per-node keys: write NODE.key (a new private key, WireGuard "
                             "format) and peers.conf instead of a shared icc.key")
    parser.add_argument("--allowed-ips", metavar="CIDRS", default="",
                        help="with --node-keys: what this node may claim, for its peers.conf "
                             "section (default: any address)")
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

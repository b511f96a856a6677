"""`ipop-ryu doctor`: check one site end to end; one line per problem, saying what to do.

In order, each check needing the ones before it:
  configuration   the site's file parses as the controller would parse it (and its key)
  OVS             ovsdb-server and ovs-vswitchd answer
  bridge          exists, fail-mode secure, our controller (the file's ofp listener) set
                  and connected
  overlay ports   at least one port of the bridge matches overlay_ports
  peers           the controller's REST API answers; every peer is up (answers hellos)
  clocks          no peer's timestamps are off ours by more than icc_freshness
  claims          no peer's claims were refused by its allowed_ips in the last minutes
  tunnels         every overlay port can send: a kernel tunnel device up and routed; an
                  OVS tunnel port on a userspace bridge routed by OVS out of an OVS bridge
                  holding the underlay address, with a neighbour (tnl/neigh/show)
  MTU             no local port's MTU exceeds what the overlay carries
  traces          a frame from a local port to a host of each peer (ofproto/trace) leaves
                  by an overlay port that exists

Exit status 0 when all is well, 1 when a problem was found, 2 on bad arguments.
"""
import glob
import json
import os
import urllib.error
import urllib.request

from ipop_ryu.core.config import ConfigError
from ipop_ryu.host import CommandError
from ipop_ryu.host.ovsctl import DEFAULT_RUNDIR, ensure_ovs_running, is_connected, vsctl
from ipop_ryu.host.site import ETC, Site, is_site_file

from . import doctor_datapath
from .status import arp_rows
from . import doctor_services


def ovs_not_answering(exc):
    """OVS's error, and where no OVS_RUNDIR was given, that one may be needed."""
    if "OVS_RUNDIR" in os.environ:
        return str(exc)
    return (f"{exc}; or, if it runs with another run directory than {DEFAULT_RUNDIR}, "
            f"export OVS_RUNDIR=<that directory> (where its db.sock is) before ipop-ryu")


def check_bridge(site, bridge):
    """(problems, the bridges OVS has, or None when OVS or this bridge is not there)."""
    try:
        bridges = ensure_ovs_running()
    except CommandError as exc:
        return [ovs_not_answering(exc)], None
    if bridge not in bridges:
        return [f"no bridge {bridge} (bridges: {', '.join(bridges) or 'none'}): create it: "
                f"ipop-ryu bridge setup {bridge} --controller {site.target} --peer NAME=IP"], None
    problems = []
    mode = vsctl("get-fail-mode", bridge) or "unset (standalone)"
    if mode != "secure":
        problems.append(f"bridge {bridge} fail-mode is {mode}, not secure (without its "
                        f"controller it would act as a learning switch across sites): run "
                        f"ovs-vsctl set-fail-mode {bridge} secure")
    targets = vsctl("get-controller", bridge).split()
    ours = [t for t in targets if site.is_our_controller(t)]
    if not ours:
        problems.append(f"bridge {bridge}'s controller is {', '.join(targets) or 'not set'}, "
                        f"not ours ({site.target}): run ipop-ryu bridge setup {bridge} "
                        f"--controller {site.target}")
    elif not is_connected(ours[0]):
        problems.append(f"bridge {bridge} is not connected to its controller {ours[0]}: start "
                        f"the controller (systemctl start {site.service}) and read its log "
                        f"(journalctl -u {site.service})")
    ports = vsctl("list-ports", bridge).split()
    if not any(site.options.is_overlay_port(p) for p in ports):
        patterns = ",".join(site.options.overlay_ports)
        problems.append(f"no port of {bridge} matches overlay_ports {patterns!r} (ports: "
                        f"{', '.join(ports) or 'none'}): add the tunnel ports (ipop-ryu bridge "
                        f"setup {bridge} --controller {site.target} --peer NAME=IP) or fix "
                        f"overlay_ports in {site.path}")
    return problems, bridges


def rest(site, path, timeout):
    with urllib.request.urlopen(f"{site.rest}{path}", timeout=timeout) as answer:
        return json.load(answer)


def check_peers(site, timeout):
    """(problems, the controller's /ipop/v1/peers rows, or None when it does not answer)."""
    if not site.options.icc or not site.options.peers:
        return [], []
    url = f"{site.rest}/ipop/v1/peers"
    try:
        rows = rest(site, "/ipop/v1/peers", timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return [f"the controller's REST API at {url} does not answer ({reason}): is the "
                f"controller running? (systemctl status {site.service})"], None
    problems = []
    freshness = site.options.icc_freshness
    for row in rows:
        offset = row.get("clock_offset")
        where = f"{row['name']} ({row['address']}:{row['port']})"
        if offset is not None and abs(offset) > freshness:
            problems.append(f"peer {where}: its clock is {abs(offset):.0f}s "
                            f"{'behind' if offset > 0 else 'ahead of'} ours (icc_freshness "
                            f"{freshness:g}s), so its datagrams are dropped as stale: keep "
                            f"both clocks in sync (timedatectl set-ntp true)")
        elif row["state"] != "up":
            heard = "never heard" if row.get("last_heard_ago") is None else \
                f"last heard {row['last_heard_ago']:.0f}s ago"
            problems.append(f"peer {where} is {row['state']} ({heard}): check that its "
                            f"controller runs, that UDP port {row['port']} passes both ways "
                            f"and that both sites hold the same icc.key")
    return problems, rows


def check_claims(site, rows):
    """Claims the controller refused lately because they fall outside the peer's
    allowed_ips: each one a host that cannot be reached (or a peer speaking for another)."""
    problems = []
    for row in rows:
        name = row["name"]
        for claim in row.get("claims_refused") or ():
            times = "once" if claim["count"] == 1 else \
                f"{claim['count']} times in the last {max(claim['first_ago'], 1):.0f}s"
            problems.append(f"peer {name} claimed {claim['address']} outside its allowed_ips "
                            f"{', '.join(row.get('allowed_ips') or ())} ({times}, the last "
                            f"{claim['last_ago']:.0f}s ago): fix [{name}] allowed_ips in "
                            f"{site.options.peers_file or 'the peers file'} at this site, or "
                            f"{name}'s addresses")
    return problems


def check_datapath(site, bridge, bridges, peer_rows, timeout):
    """(problems, peers a frame was traced to) of the bridge's data path."""
    try:
        entries = arp_rows(lambda path: rest(site, path, timeout),
                           most=doctor_datapath.ARP_ROWS) if peer_rows else []
    except (urllib.error.URLError, OSError, ValueError, CommandError):
        entries = []                # the REST API's problem is named by check_peers
    try:
        return doctor_datapath.check(site, bridge, bridges, entries,
                                     [row["name"] for row in peer_rows or ()])
    except CommandError as exc:
        return [str(exc)], []


def find_config(path, directory=ETC):
    """--config-file, else the one site file in `directory` (peers.conf beside it is not)."""
    if path:
        return path
    found = [p for p in sorted(glob.glob(os.path.join(directory, "*.conf")))
             if is_site_file(p)]
    if len(found) != 1:
        names = f" ({', '.join(os.path.basename(p) for p in found)})" if found else ""
        raise CommandError(f"{len(found)} site files in {directory}{names} (a site file "
                           f"has [ipop] node_id): name one with --config-file")
    return found[0]


def run(args):
    path = find_config(args.config_file, args.dir)
    try:
        site = Site(path)
    except ConfigError as exc:
        print(f"configuration error: {exc}: fix the file (ipop-ryu init writes a valid one)")
        return 1
    problems, bridges = check_bridge(site, args.bridge)
    found, rows = check_peers(site, args.timeout)
    problems += found + check_claims(site, rows or ())
    problems += doctor_services.check(site, args.bridge)
    traced = []
    if bridges is not None:
        found, traced = check_datapath(site, args.bridge, bridges, rows, args.timeout)
        problems += found
    for line in problems:
        print(line)
    if problems:
        print(f"doctor: {len(problems)} problem{'s' if len(problems) > 1 else ''} at site "
              f"{site.options.node_id}")
        return 1
    print(f"doctor: site {site.options.node_id} is healthy (bridge {args.bridge} secure and "
          f"connected, {len(site.options.peers)} peer(s) up, frames to {len(traced)} "
          f"traced into the overlay)")
    return 0


def register(sub):
    parser = sub.add_parser("doctor", help="check a site end to end, one line per problem",
                            description="Check OVS, the bridge, its controller, overlay "
                                        "ports, peers, clocks, refused claims, tunnels, MTU "
                                        "and a traced frame to each peer of one site.")
    parser.add_argument("--config-file", metavar="PATH",
                        help="the site's file (default: the one site file in --dir: a *.conf "
                             "with [ipop] node_id, not peers.conf)")
    parser.add_argument("--dir", default=ETC, metavar="DIR",
                        help=f"where to look for the site file (default {ETC}, as init)")
    parser.add_argument("--bridge", default="br0", help="the site's bridge (default br0)")
    parser.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS",
                        help="how long the controller's REST API may take (default 3)")
    parser.set_defaults(func=run)

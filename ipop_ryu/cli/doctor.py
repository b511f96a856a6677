"""`ipop-ryu doctor`: check one site end to end; one line per problem, saying what to do.

In order, each check needing the ones before it:
  configuration   the site's file parses as the controller would parse it (and its key)
  OVS             ovsdb-server and ovs-vswitchd answer
  bridge          exists, fail-mode secure, our controller (the file's ofp listener) set
                  and connected
  overlay ports   at least one port of the bridge matches overlay_ports
  peers           the controller's REST API answers; every peer is up (answers hellos)
  clocks          no peer's timestamps are off ours by more than icc_freshness

Exit status 0 when all is well, 1 when a problem was found, 2 on bad arguments.
"""
import glob
import json
import os
import urllib.error
import urllib.request

from ipop_ryu.core.config import ConfigError
from ipop_ryu.host import CommandError
from ipop_ryu.host.ovsctl import ensure_ovs_running, is_connected, vsctl
from ipop_ryu.host.site import ETC, Site


def check_bridge(site, bridge):
    try:
        bridges = ensure_ovs_running()
    except CommandError as exc:
        return [str(exc)]
    if bridge not in bridges:
        return [f"no bridge {bridge} (bridges: {', '.join(bridges) or 'none'}): create it: "
                f"ipop-ryu bridge setup {bridge} --controller {site.target} --peer NAME=IP"]
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
    return problems


def check_peers(site, timeout):
    if not site.options.icc or not site.options.peers:
        return []
    url = f"{site.rest}/ipop/v1/peers"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            rows = json.load(answer)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return [f"the controller's REST API at {url} does not answer ({reason}): is the "
                f"controller running? (systemctl status {site.service})"]
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
    return problems


def find_config(path):
    if path:
        return path
    found = sorted(glob.glob(os.path.join(ETC, "*.conf")))
    if len(found) != 1:
        raise CommandError(f"{len(found)} site files in {ETC}: name one with --config-file")
    return found[0]


def run(args):
    path = find_config(args.config_file)
    try:
        site = Site(path)
    except ConfigError as exc:
        print(f"configuration error: {exc}: fix the file (ipop-ryu init writes a valid one)")
        return 1
    problems = check_bridge(site, args.bridge)
    problems += check_peers(site, args.timeout)
    for line in problems:
        print(line)
    if problems:
        print(f"doctor: {len(problems)} problem{'s' if len(problems) > 1 else ''} at site "
              f"{site.options.node_id}")
        return 1
    print(f"doctor: site {site.options.node_id} is healthy (bridge {args.bridge} secure and "
          f"connected, {len(site.options.peers)} peer(s) up)")
    return 0


def register(sub):
    parser = sub.add_parser("doctor", help="check a site end to end, one line per problem",
                            description="Check OVS, the bridge, its controller, overlay "
                                        "ports, peers and clocks of one site.")
    parser.add_argument("--config-file", metavar="PATH",
                        help=f"the site's file (default: the only *.conf in {ETC})")
    parser.add_argument("--bridge", default="br0", help="the site's bridge (default br0)")
    parser.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS",
                        help="how long the controller's REST API may take (default 3)")
    parser.set_defaults(func=run)

"""What `ipop-ryu lab up` and `lab status` print: the lab's map (sites, containers, what
to try) and each site's health (namespace, daemons, controller, bridge connection, flows).
"""
import os
import subprocess
import time

from ..overlay.wireguard import PORT as WG_PORT
from .status import table

def render_map(desc):
    sfx, sites = desc["suffix"], desc["sites"]
    n_hosts = sum(len(s["hosts"]) for s in sites)
    lines = [f"lab {sfx}: {len(sites)} sites, {n_hosts} containers, controller "
             f"{desc['controller']}; files in {desc['workdir']}", ""]
    controlled = desc["controller"] != "normal"
    lines.append(table(sites, [
        ("SITE", "name"), ("NAMESPACE", "ns"), ("UNDERLAY", lambda s: f"{s['underlay_ip']}/24"),
        ("BRIDGE", lambda s: f"{s['bridge']}, " + (
            f"connected to ryu-manager pid {s['pids'].get('ryu-manager')}"
            if controlled else "standalone (NORMAL)")),
        ("OVERLAY PORTS", lambda s: " ".join(s["overlay_ports"]) or None),
        ("CONTROLLER REST", "rest")]))
    lines.append("")
    hosts = [dict(h, site=s["name"], bridge=s["bridge"]) for s in sites for h in s["hosts"]]
    if hosts:
        lines.append(table(hosts, [
            ("CONTAINER", "name"), ("SITE", "site"), ("NAMESPACE", "ns"),
            ("IP", lambda h: f"{h['ip']}/24"), ("MAC", "mac"),
            ("PORT", lambda h: f"{h['bridge']}:{h['port']} ({h['ofport']})")]))
        lines.append("")
    lines.append(f"underlay: bridge br-ul in {desc['underlay_ns']}; overlay: kernel VXLAN "
                 f"port ipop-<peer> per site pair")
    if desc.get("encrypt"):
        wg = ", ".join(f"{s['name']} {s['wg_ifname']} {s['tunnel_ip']}/24" for s in sites)
        lines.append(f"encrypted: VXLAN and ICC between the sites' WireGuard addresses ({wg}; "
                     f"UDP {WG_PORT} on the underlay); container MTU {desc['mtu']}")
    if desc.get("services"):
        mine = ", ".join(f"{s['name']} {s['site_address']} (uplink {s['uplink_ip']})"
                         for s in sites)
        lines.append(f"services: gateway 10.0.3.1 at every site, DHCP from each site's own "
                     f"pool, NAT to the upstream 198.51.100.1 in {desc['upstream_ns']}; site "
                     f"addresses {mine}")
    looped = desc["controller"] != "ipop" and len(sites) >= 3
    if looped:
        lines.append(f"note: {desc['controller']} on a full mesh of {len(sites)} sites is a "
                     "loop without STP: one broadcast (an ARP request) circulates for ever")
    pick = "" if _is_latest(desc) else f" --lab {sfx}"
    tries = []
    across = _two_hosts_on_two_sites(sites)
    if across and not looped:
        tries.append(f"ipop-ryu lab exec{pick} {across[0]['name']} -- ping -c 3 {across[1]['ip']}")
    tries.append(f"ipop-ryu lab exec{pick} {sites[0]['name']} -- "
                 f"ovs-ofctl -O OpenFlow13 dump-flows {sites[0]['bridge']}")
    if sites[0].get("rest"):
        tries.append(f"ipop-ryu lab exec{pick} {sites[0]['name']} -- "
                     f"ipop-ryu arp --controller {sites[0]['rest']}")
    tries.append(f"ipop-ryu lab status{pick}; ipop-ryu lab down{pick}")
    lines += ["try:  " + tries[0]] + ["      " + t for t in tries[1:]]
    return "\n".join(lines)


def _two_hosts_on_two_sites(sites):
    with_hosts = [s for s in sites if s["hosts"]]
    if len(with_hosts) < 2:
        return None
    first = with_hosts[0]["hosts"]
    return first[-1], with_hosts[1]["hosts"][0]


def _is_latest(desc):
    from ..lab import state
    labs = state.all_labs(desc["workdir_root"])
    return not labs or labs[-1]["suffix"] == desc["suffix"]


def site_status(desc, site):
    """Facts about one site of a described lab, and the problems among them."""
    from ..lab import netns, ovs, state
    from ..lab.lab import CONTROLLER_TARGET     # labs saved before targets were per site
    sfx = desc["suffix"]
    ns_present = site["ns"] in set(netns.list_namespaces(f"ipr-{sfx}-"))
    procs = {p: state.pid_of(site, p) for p in state.PROGRAMS}
    up = {p: state.alive(pid, sfx) for p, pid in procs.items()}
    problems = [] if ns_present else ["namespace missing"]
    for daemon in ("ovsdb-server", "ovs-vswitchd"):
        if not up[daemon]:
            problems.append(f"{daemon} not running")
    controlled = desc["controller"] != "normal"
    if controlled and not up["ryu-manager"]:
        problems.append("controller not running")
    if site.get("wg_ifname"):
        problems += _wireguard_problems(site, sfx, ns_present)
    connected, flows = None, None
    if up["ovs-vswitchd"]:
        if controlled:
            target = site.get("controller_target", desc.get("controller_target", CONTROLLER_TARGET))
            # a controller that dialed the bridge logs no goodbye when it is killed
            connected = (up["ryu-manager"] or not ovs.dialed_by_controller(target)) and \
                ovs.bridge_connected(site["rundir"], site["bridge"], target)
            if not connected:
                problems.append(f"{site['bridge']} not connected")
        flows = _flow_count(site)
    return {"procs": procs, "up": up, "connected": connected, "flows": flows,
            "ns_present": ns_present, "problems": problems}


def _wireguard_problems(site, sfx, ns_present):
    """An encrypted site's WireGuard: its interface there, its wireguard-go (if any) alive."""
    from ..lab import netns, state
    problems = []
    pid = state.pid_of(site, "wireguard-go")
    if pid and not state.alive(pid, sfx):
        problems.append("wireguard-go not running")
    if ns_present and site["wg_ifname"] not in netns.link_names(site["ns"]):
        problems.append(f"{site['wg_ifname']} missing (no tunnel to the other sites)")
    return problems


def _flow_count(site):
    env = dict(os.environ, OVS_RUNDIR=site["rundir"])
    try:
        proc = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--timeout=5", "dump-aggregate",
                               site["bridge"]], env=env, capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for word in proc.stdout.split():
        if word.startswith("flow_count="):
            return int(word.split("=", 1)[1])
    return None


def _age(seconds):
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m{rest % 60:02d}s" if h else f"{rest // 60}m{rest % 60:02d}s"


def render_status(desc):
    """(the text of `lab status`, whether a problem was found)."""
    from ..lab import netns
    sfx = desc["suffix"]
    statuses = {s["name"]: site_status(desc, s) for s in desc["sites"]}
    controlled = desc["controller"] != "normal"
    lines = [f"lab {sfx}: controller {desc['controller']}, {desc['state']} for "
             f"{_age(time.time() - desc['created'])}; files in {desc['workdir']}", ""]

    def proc(program):
        def cell(site):
            st = statuses[site["name"]]
            pid = st["procs"][program]
            return f"{pid or '-'} {'alive' if st['up'][program] else 'DEAD'}"
        return cell

    def bridge(site):
        st = statuses[site["name"]]
        if not st["up"]["ovs-vswitchd"]:
            return "-"
        if not controlled:
            return f"{site['bridge']} standalone"
        return f"{site['bridge']} {'connected' if st['connected'] else 'NOT CONNECTED'}"

    columns = [("SITE", "name"),
               ("NAMESPACE", lambda s: s["ns"] + ("" if statuses[s["name"]]["ns_present"]
                                                  else " (MISSING)")),
               ("UNDERLAY", "underlay_ip"), ("OVSDB-SERVER", proc("ovsdb-server")),
               ("OVS-VSWITCHD", proc("ovs-vswitchd"))]
    if controlled:
        columns.append(("CONTROLLER", proc("ryu-manager")))
    columns += [("BRIDGE", bridge), ("FLOWS", lambda s: statuses[s["name"]]["flows"])]
    if desc["controller"] == "ipop":
        columns.append(("REST", "rest"))
    lines.append(table(desc["sites"], columns))
    present = set(netns.list_namespaces(f"ipr-{sfx}-"))
    hosts = [dict(h, site=s["name"]) for s in desc["sites"] for h in s["hosts"]]
    if hosts:
        lines += ["", table(hosts, [
            ("CONTAINER", "name"), ("SITE", "site"),
            ("NAMESPACE", lambda h: h["ns"] + ("" if h["ns"] in present else " (MISSING)")),
            ("IP", "ip"), ("MAC", "mac"), ("PORT", "port")])]
    problems = [f"{name}: {p}" for name, st in statuses.items() for p in st["problems"]]
    problems += [f"{h['name']}: namespace missing" for h in hosts if h["ns"] not in present]
    lines.append("")
    if problems:
        lines.append(f"NOT healthy: {'; '.join(problems)} (`ipop-ryu lab down` removes it)")
    else:
        lines.append(f"healthy: {len(desc['sites'])} sites, every daemon running"
                     + (", every bridge connected" if controlled else ""))
    return "\n".join(lines), bool(problems)

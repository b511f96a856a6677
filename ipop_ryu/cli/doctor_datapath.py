"""`ipop-ryu doctor`'s data path checks: the control plane may be healthy while every frame
is lost. For each overlay port, whether its tunnel can send (route and neighbour of the
remote); for each peer, where a frame to one of its hosts goes (ofproto/trace); and whether
the local ports' MTU fits what the overlay carries. One line per problem, saying what to do.
"""
import json
from dataclasses import dataclass
from typing import Dict, List, Optional

from ipop_ryu.host import datapath
from ipop_ryu.host.ovsctl import vsctl

# a frame from a made-up host when no local host is learned yet (locally administered)
PROBE_MAC = "02:00:00:00:00:01"
ARP_ROWS = 2000            # enough of the learned table to find a host of each peer
TUNNEL_FAILURES = ("native tunnel routing failed", "neighbor cache miss")  # ofproto/trace's


@dataclass
class Interface:
    name: str
    ofport: int
    type: str                      # "" (a kernel device: system port), "vxlan", "internal"...
    options: Dict[str, str]
    mtu: Optional[int]


@dataclass
class Tunnel:
    """What one overlay port can carry, and what stops it sending."""
    problems: List[str]
    mtu: Optional[int] = None      # largest frame it carries; None: not known
    why: str = ""                  # how mtu was found, for the MTU finding


def _ovs_value(value):
    """A column of ovs-vsctl -f json: ["set", []] is empty, ["map", [[k, v]]] a dict."""
    if isinstance(value, list) and value and value[0] == "set":
        return value[1][0] if value[1] else None
    if isinstance(value, list) and value and value[0] == "map":
        return dict(value[1])
    return value


def interfaces(bridge: str) -> List[Interface]:
    ports = set(vsctl("list-ports", bridge).split())
    table = json.loads(vsctl("-f", "json", "--columns=name,ofport,type,options,mtu",
                             "list", "interface"))
    rows = [dict(zip(table["headings"], map(_ovs_value, row))) for row in table["data"]]
    return [Interface(r["name"], r["ofport"] or -1, r["type"] or "", r["options"] or {},
                      r["mtu"]) for r in rows if r["name"] in ports]


def check_tunnel(iface: Interface, netdev: bool, bridges: List[str]) -> Tunnel:
    kind = iface.type
    if kind in datapath.TUNNEL_OVERHEAD:
        return _ovs_tunnel(iface, netdev, bridges)
    if kind not in ("", "system"):
        return Tunnel([], iface.mtu, f"{iface.name}'s MTU")
    return _kernel_device(iface)


def _ovs_tunnel(iface: Interface, netdev: bool, bridges: List[str]) -> Tunnel:
    remote = iface.options.get("remote_ip", "")
    if remote in ("", "flow"):
        return Tunnel([])
    what = f"overlay port {iface.name} ({iface.type} to {remote})"
    overhead = datapath.tunnel_overhead(iface.type, remote)
    if not netdev:              # the kernel datapath: the kernel routes the tunnel
        return _kernel_routed(what, iface.name, iface.type, remote, own_mtu=None)
    # the userspace datapath routes its tunnels itself, out of an OVS bridge that holds the
    # underlay address, to a neighbour it learned from ARP replies reaching that bridge
    fix = (f"on a userspace (netdev) bridge OVS sends tunnels itself: put the underlay "
           f"address on an OVS bridge (ovs-vsctl add-br br-phy -- set bridge br-phy "
           f"datapath_type=netdev other-config:hwaddr=<the NIC's MAC> -- add-port br-phy "
           f"<underlay NIC>; move the NIC's address to br-phy and ip link set br-phy up), "
           f"or use a kernel VXLAN device as the port (ip link add {iface.name} type vxlan "
           f"id VNI remote {remote} dstport 4789)")
    route = datapath.ovs_route(remote)
    if route is None:
        return Tunnel([f"{what} cannot send: OVS has no route to {remote} (ovs-appctl "
                       f"ovs/route/show): {fix}"])
    if route["dev"] not in bridges:
        return Tunnel([f"{what} cannot send: OVS routes {remote} via {route['dev']}, not an "
                       f"OVS bridge, so ovs-appctl tnl/neigh/show stays empty and every frame "
                       f"is lost: {fix}"])
    hop = datapath.next_hop(route, remote)
    known = [n for n in datapath.ovs_neighbours() if n.ip == hop and n.bridge == route["dev"]]
    problems = [] if known else [
        f"{what} cannot send: OVS has no neighbour {hop} on {route['dev']} (ovs-appctl "
        f"tnl/neigh/show), so frames into it are dropped: OVS learns it from ARP replies "
        f"reaching {route['dev']}'s local port: check that {route['dev']}'s flows pass them "
        f"(ovs-ofctl dump-flows {route['dev']}: actions=NORMAL) and that {hop} answers "
        f"(ping -c 1 {hop})"]
    device = datapath.link(route["dev"])
    underlay = device.get("mtu") if device else None
    return Tunnel(problems, underlay - overhead if underlay else None,
                  f"{iface.type} over {route['dev']}'s {underlay}")


def _kernel_device(iface: Interface) -> Tunnel:
    """A system port: for a kernel tunnel device (what the lab adds), up and routed."""
    device = datapath.link(iface.name)
    if device is None:
        return Tunnel([f"overlay port {iface.name} has no kernel device of that name: create "
                       f"it (ip link add {iface.name} type vxlan ...) or remove the port "
                       f"(ovs-vsctl del-port {iface.name})"])
    if "UP" not in device.get("flags", ()):
        return Tunnel([f"overlay port {iface.name} is down: ip link set {iface.name} up"])
    info = device.get("linkinfo") or {}
    kind, data = info.get("info_kind", ""), info.get("info_data") or {}
    remote = data.get("remote") or data.get("remote6")
    if kind not in datapath.TUNNEL_OVERHEAD or not remote:
        return Tunnel([], device.get("mtu"), f"{iface.name}'s MTU")
    return _kernel_routed(f"overlay port {iface.name} (kernel {kind} to {remote})", iface.name,
                          kind, remote, own_mtu=device.get("mtu"))


def _kernel_routed(what, name, kind, remote, own_mtu) -> Tunnel:
    """A tunnel the kernel routes: what it carries is the route's MTU less the overhead, or
    the device's own MTU (a kernel tunnel device) if that is less."""
    route = datapath.kernel_route(remote)
    if route is None:
        return Tunnel([f"{what} cannot send: no route to {remote} (ip route get {remote}): "
                       f"add the underlay address and route, or fix the tunnel's remote"])
    overhead = datapath.tunnel_overhead(kind, remote)
    carried = route["mtu"] - overhead if route.get("mtu") else None
    why = f"{kind} over {route['dev']}'s {route['mtu']}"
    if own_mtu is not None and (carried is None or own_mtu < carried):
        carried, why = own_mtu, f"{name}'s own MTU"
    return Tunnel([], carried, why)


def check_mtu(local: List[Interface], tunnels: Dict[str, Tunnel]) -> List[str]:
    known = [(t.mtu, name, t.why) for name, t in tunnels.items() if t.mtu]
    if not known:
        return []
    carried, port, why = min(known)
    return [f"local port {i.name} has MTU {i.mtu}, more than the overlay carries ({carried}: "
            f"{why}), so larger frames from it are lost: set {carried} on it and on the "
            f"container's interface behind it (ip link set dev {i.name} mtu {carried})"
            for i in local if i.mtu and i.mtu > carried]


def check_traces(bridge: str, entries: list, peer_names: List[str],
                 by_ofport: Dict[str, Interface], is_overlay, tunnels: Dict[str, Tunnel],
                 local: List[Interface]):
    """A frame from a local port to one host of each peer must leave by an overlay port that
    is there. A tunnel already found unable to send is not named again. Returns (problems,
    the peers traced)."""
    source = next((e for e in entries if e["local"] and e.get("port")), None)
    in_port, src_mac = (source["port"], source["mac"]) if source else \
        (local[0].name, PROBE_MAC) if local else (None, None)
    problems, traced = [], []
    for peer in peer_names if in_port else ():
        host = next((e for e in entries if not e["local"] and e["node"] == peer), None)
        if host is None:
            continue            # nothing of it learned yet: nothing to trace to
        flow = f"in_port={in_port},dl_src={src_mac},dl_dst={host['mac']}"
        flow += f",ip,nw_dst={host['ip']}" if host["family"] == "ipv4" else \
            f",ipv6,ipv6_dst={host['ip']}"
        result = datapath.trace(bridge, flow)
        traced.append(peer)
        where = f"peer {peer}'s host {host['ip']} ({host['mac']})"
        command = f"ovs-appctl ofproto/trace {bridge} {flow}"
        outs = [(o, by_ofport.get(o.port)) for o in result.outputs
                if "skipping output to input port" not in o.notes]
        gone = [o.port for o, iface in outs if iface is None or
                "Nonexistent output port" in o.notes]
        overlay = [(o, i.name) for o, i in outs if i is not None and is_overlay(i.name)]
        if gone:
            problems.append(f"bridge {bridge} sends frames for {where} to port "
                            f"{', '.join(gone)}, which does not exist (a flow left from a "
                            f"removed port; {command}: Nonexistent output port): delete it "
                            f"(ovs-ofctl -O OpenFlow13 del-flows {bridge} "
                            f"dl_dst={host['mac']}; it is learned again)")
        elif not overlay:
            names = [i.name for _, i in outs]
            problems.append(f"bridge {bridge} does not send frames for {where} into the "
                            f"overlay ({'out of ' + ', '.join(names) if names else 'dropped'}"
                            f"; {command}): read the trace's last table")
        for o, name in overlay:
            lost = [n for n in o.notes if n.startswith(TUNNEL_FAILURES)]
            if lost and not tunnels[name].problems:
                problems.append(f"frames for {where} are lost in overlay port {name} "
                                f"({lost[0]}; {command})")
    return problems, traced


def check(site, bridge: str, bridges: List[str], entries: list, peer_names: List[str]):
    """(problems of the bridge's data path, the peers a frame was traced to)."""
    netdev = vsctl("get", "bridge", bridge, "datapath_type").strip('"') == "netdev"
    every = interfaces(bridge)
    ifaces = [i for i in every if i.type != "internal"]
    overlay = [i for i in ifaces if site.options.is_overlay_port(i.name)]
    local = [i for i in ifaces if not site.options.is_overlay_port(i.name)]
    tunnels = {i.name: check_tunnel(i, netdev, bridges) for i in overlay}
    problems = [p for t in tunnels.values() for p in t.problems]
    problems += check_mtu(local, tunnels)
    by_ofport = {str(i.ofport): i for i in every}
    by_ofport["LOCAL"] = Interface(bridge, 65534, "internal", {}, None)
    traced, traced_to = check_traces(bridge, entries, peer_names, by_ofport,
                                     site.options.is_overlay_port, tunnels, local)
    return problems + traced, traced_to

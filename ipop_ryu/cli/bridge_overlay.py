"""`ipop-ryu bridge setup`'s tunnels: which kind works where it runs, their commands, the MTU.

    system datapath (the OVS kernel module)   OVS tunnel ports (type=vxlan|geneve)
    netdev (userspace), the kernel has vxlan  kernel VXLAN devices ipop-NAME as plain ports
    netdev with --underlay IFACE              OVS tunnel ports, IFACE on OVS bridge br-phy and
                                              its addresses moved there (OVS's userspace
                                              tunnels route and resolve only through a bridge)
    anything else                             refused, naming what is missing

Every kind uses each peer's VNI (one --key, else pair_vni of the two underlay addresses), so
sites that chose differently still meet.
"""
import json
import os
from dataclasses import dataclass
from typing import List, Optional

from ..host import CommandError
from ..host.ovsctl import IFNAMSIZ, check_name, first_line, run
from ..overlay import vxlan

PEER_PREFIX = "ipop-"
UNDERLAY_BRIDGE = "br-phy"
KERNEL, OVS, OVS_UNDERLAY = "kernel VXLAN devices", "OVS tunnel ports", \
    f"OVS tunnel ports, underlay on {UNDERLAY_BRIDGE}"
OVS_MODULE = "/sys/module/openvswitch"


@dataclass
class Tunnel:
    port: str                   # ipop-NAME: the OVS port, and the kernel device if any
    remote: str
    local: str                  # this site's end (the route's source address)
    vni: int
    dev: Optional[str] = None   # the underlay interface towards remote
    underlay_mtu: int = 1500

    @property
    def family(self):
        return vxlan.family_of(self.remote)


def port_name(peer_name):
    name = PEER_PREFIX + peer_name
    if len(name) > IFNAMSIZ:
        raise CommandError(f"bad --peer {peer_name!r}: port name {name} is longer than "
                           f"{IFNAMSIZ} characters")
    return check_name("peer", name)


def choose(datapath, tunnel, kernel_vxlan, underlay, n_peers, key):
    """The kind of tunnel for this host (see the module's table); CommandError if none."""
    if datapath != "netdev":
        if underlay:
            raise CommandError("--underlay is for --datapath-type netdev (the kernel "
                               "datapath routes tunnels itself): drop it")
        return OVS
    if underlay:
        return OVS_UNDERLAY
    if tunnel != "vxlan":
        raise CommandError(f"--tunnel {tunnel} on the userspace datapath needs --underlay "
                           f"IFACE (OVS's userspace tunnels send only through an OVS bridge "
                           f"holding the underlay address)")
    if not kernel_vxlan:
        raise CommandError("the userspace datapath (netdev) needs kernel VXLAN devices and "
                           "this kernel makes none (modprobe vxlan), or --underlay IFACE "
                           f"(its address moves to OVS bridge {UNDERLAY_BRIDGE})")
    if key is not None and n_peers > 1:
        raise CommandError("--key with kernel VXLAN devices and more than one peer: Linux "
                           "refuses two devices with one VNI; drop --key (each peer then gets "
                           "the VNI both ends derive from their addresses)")
    return KERNEL


def overlay_mtu(tunnels, tunnel="vxlan"):
    """The smallest MTU the tunnels leave (None without tunnels)."""
    mtus = [vxlan.overlay_mtu(t.underlay_mtu, tunnel, t.family) for t in tunnels]
    return min(mtus) if mtus else None


def mtu_line(mtu, tunnels, tunnel, encrypted=False):
    if encrypted:
        how = "inside WireGuard, less VXLAN"
    else:
        t = min(tunnels, key=lambda t: vxlan.overlay_mtu(t.underlay_mtu, tunnel, t.family))
        how = f"underlay {t.underlay_mtu} less {tunnel}'s {vxlan.TUNNEL_OVERHEAD[tunnel][t.family]}"
    return (f"overlay MTU {mtu} ({how}): set on the ports attached here; give every container "
            f"interface MTU {mtu} (ip link set IFACE mtu {mtu})")


# --- kernel VXLAN devices ------------------------------------------------------------------

def kernel_commands(tunnels: List[Tunnel], links, mtu):
    """ip commands that make each tunnel's device (before OVS adds it as a port).

    links: port name -> its `ip -d -j link show` dict, for those that exist. A device of that
    name that is not ours (no alias ipop-ryu) is refused, never replaced."""
    out = []
    for t in tunnels:
        link = links.get(t.port)
        if link is not None and not vxlan.owned(link):
            raise CommandError(f"{t.port} exists and was not made by ipop-ryu (its alias is not "
                               f"{vxlan.OWNER_ALIAS}): remove it (ip link del {t.port}), or "
                               "attach it with --port and drop that --peer")
        if link is None or not vxlan.matches(link, t.vni, t.remote, t.local):
            if link is not None:
                out.append(vxlan.delete_argv(t.port))
            out.append(vxlan.add_argv(t.port, t.vni, t.remote, t.local, dev=t.dev))
        out.append(vxlan.up_argv(t.port, mtu))
    return out


def stale_device_commands(stale_ports, links):
    """Devices of removed peers' ports that ipop-ryu made (after OVS let them go)."""
    return [vxlan.delete_argv(p) for p in stale_ports
            if links.get(p) is not None and vxlan.owned(links[p])]


# --- br-phy: the underlay on an OVS bridge (OVS tunnel ports on netdev) ----------------------

def underlay_clauses(iface, mtu):
    """ovs-vsctl clauses: br-phy (userspace, standalone: it forwards as a switch) with IFACE."""
    return ["--", "--may-exist", "add-br", UNDERLAY_BRIDGE,
            "--", "set", "bridge", UNDERLAY_BRIDGE, "datapath_type=netdev",
            "--", "set", "interface", UNDERLAY_BRIDGE, f"mtu_request={mtu}",
            "--", "--may-exist", "add-port", UNDERLAY_BRIDGE, iface]


def underlay_moves(iface, addresses, routes):
    """ip commands moving IFACE's addresses (CIDRs) and its routes through a gateway
    ((dst, gateway)) to br-phy; none when IFACE has no address left (done before)."""
    if not addresses:
        return [["ip", "link", "set", UNDERLAY_BRIDGE, "up"]]
    out = [["ip", "address", "del", a, "dev", iface] for a in addresses]
    out.append(["ip", "link", "set", UNDERLAY_BRIDGE, "up"])
    out += [["ip", "address", "replace", a, "dev", UNDERLAY_BRIDGE] for a in addresses]
    out += [["ip", "route", "replace", dst, "via", gw, "dev", UNDERLAY_BRIDGE]
            for dst, gw in routes]
    return out


# --- what the host has (read only) -----------------------------------------------------------

def _ip_json(*args):
    proc = run(["ip", "-j", *args], timeout=10)
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout or "[]")
    except ValueError:
        return None


def route_to(remote, what):
    """(source address, device) of the route to remote; CommandError naming the peer."""
    routes = _ip_json("route", "get", remote)
    if not routes or "prefsrc" not in routes[0]:
        raise CommandError(f"no route to {what}'s {remote} (ip route get {remote}): bring the "
                           "underlay up first; nothing changed")
    if routes[0].get("type") == "local":
        raise CommandError(f"{what}'s {remote} is an address of this host: give the peer's "
                           "own underlay address; nothing changed")
    return routes[0]["prefsrc"], routes[0].get("dev")


def link_mtu(dev, default=1500):
    links = _ip_json("link", "show", "dev", dev) if dev else None
    return int(links[0].get("mtu", default)) if links else default


def links_named(names):
    out = {}
    for name in names:
        found = _ip_json("-d", "link", "show", "dev", name)
        if found:
            out[name] = found[0]
    return out


def addresses_of(iface):
    links = _ip_json("address", "show", "dev", iface) or []
    return [f"{a['local']}/{a['prefixlen']}" for link in links
            for a in link.get("addr_info", []) if a.get("scope") == "global"]


def gateway_routes(iface):
    return [(r["dst"], r["gateway"]) for r in _ip_json("route", "show", "dev", iface) or []
            if r.get("gateway")]


def ovs_module_loaded():
    return os.path.isdir(OVS_MODULE)


def bridge_datapath(bridge):
    """The datapath_type of an existing bridge ("" is system), None if there is none."""
    proc = run(["ovs-vsctl", "--timeout=5", "get", "bridge", bridge, "datapath_type"],
               timeout=10)
    return proc.stdout.strip().strip('"') if proc.returncode == 0 else None


def failed_interfaces(list_json, names):
    """(name, why) of each of names without an OpenFlow port, from `ovs-vsctl --format=json
    --columns=name,ofport,error list interface`."""
    try:
        table = json.loads(list_json)
        rows = {row[0]: row[1:] for row in table["data"]}
    except (ValueError, KeyError, TypeError, IndexError):
        return [(n, "not readable from ovs-vsctl") for n in names]
    out = []
    for name in names:
        ofport, error = rows.get(name, (["set", []], ["set", []]))
        if not isinstance(ofport, int) or ofport < 0:
            out.append((name, error if isinstance(error, str) else ""))
    return out


def check_ofports(bridge, names, datapath):
    """CommandError (one line) unless the bridge and every port got an OpenFlow port."""
    proc = run(["ovs-vsctl", "--timeout=5", "--format=json", "--columns=name,ofport,error",
                "list", "interface"], timeout=10)
    if proc.returncode != 0:
        raise CommandError(f"bridge {bridge}: its ports not readable: {first_line(proc)}")
    failed = failed_interfaces(proc.stdout, [bridge, *names])
    if not failed:
        return
    if failed[0][0] == bridge and datapath != "netdev":
        raise CommandError(f"bridge {bridge} not created by ovs-vswitchd: "
                           + ("the OVS kernel module is not loaded: use --datapath-type "
                              "netdev (userspace)" if not ovs_module_loaded() else
                              "see ovs-vswitchd's log"))
    why = "; ".join(f"{n}: {e}" if e else f"{n}: no OpenFlow port (see ovs-vswitchd's log)"
                    for n, e in failed)
    raise CommandError(f"bridge {bridge} set up, but not all of it works: {why}")

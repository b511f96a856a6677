"""VXLAN between sites as Linux kernel devices, for the lab and `ipop-ryu bridge setup` alike,
and the MTU an overlay leaves its containers.

A kernel VXLAN device added to a bridge as a plain (system) port works on either OVS datapath:
on the userspace one (netdev) OVS's own tunnel ports need the underlay address on an OVS
bridge, which a kernel device does not. Linux refuses two VXLAN devices with one VNI on one
UDP port, so each peer gets its own VNI (pair_vni), which both ends compute alike.
"""
import hashlib
import ipaddress
import os
import subprocess

DSTPORT = 4789            # IANA's VXLAN port, OVS's default for its vxlan ports too
OWNER_ALIAS = "ipop-ryu"  # ifalias of the devices `bridge setup` made: only those it removes
# outer IP + UDP + the 8-byte VXLAN or (option-less) Geneve header + the inner Ethernet header
OVERHEAD = {4: 50, 6: 70}
TUNNEL_OVERHEAD = {"vxlan": OVERHEAD, "geneve": OVERHEAD}
MAX_VNI = (1 << 24) - 1


def overlay_mtu(underlay_mtu: int, tunnel: str = "vxlan", family: int = 4) -> int:
    """The largest frame (as an interface MTU) a tunnel carries over an underlay MTU."""
    return underlay_mtu - TUNNEL_OVERHEAD[tunnel][family]


def family_of(ip: str) -> int:
    return ipaddress.ip_address(ip).version


def pair_vni(a: str, b: str) -> int:
    """The VNI of the tunnel between underlay addresses a and b (1..2^24-1), the same seen
    from either end, so that two sites agree on it without being told."""
    ends = "|".join(sorted(str(ipaddress.ip_address(x)) for x in (a, b)))
    return 1 + int.from_bytes(hashlib.sha256(ends.encode()).digest()[:8], "big") % MAX_VNI


def _ip(ns):
    return ["ip", *(["-n", ns] if ns else [])]


def add_argv(name, vni, remote, local, dev=None, port=DSTPORT, ns=None) -> list:
    """`ip link add` of a point-to-point VXLAN device (no learning: one remote)."""
    return [*_ip(ns), "link", "add", name, "type", "vxlan", "id", str(vni), "remote", remote,
            "local", local, *(["dev", dev] if dev else []), "dstport", str(port), "nolearning"]


def up_argv(name, mtu, ns=None) -> list:
    """Its MTU, the alias that marks it as ours, up."""
    return [*_ip(ns), "link", "set", name, "mtu", str(mtu), "alias", OWNER_ALIAS, "up"]


def delete_argv(name, ns=None) -> list:
    return [*_ip(ns), "link", "del", name]


def matches(link: dict, vni, remote, local, port=DSTPORT) -> bool:
    """Whether a device as `ip -d -j link show` describes it is the VXLAN device wanted."""
    data = (link.get("linkinfo") or {}).get("info_data") or {}
    if (link.get("linkinfo") or {}).get("info_kind") != "vxlan":
        return False
    return (data.get("id") == vni and data.get("port") == port
            and _same_ip(data.get("remote") or data.get("remote6"), remote)
            and _same_ip(data.get("local") or data.get("local6"), local))


def owned(link: dict) -> bool:
    return link.get("ifalias") == OWNER_ALIAS


def _same_ip(a, b):
    try:
        return a is not None and ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def kernel_has_vxlan(ns=None) -> bool:
    """The vxlan module is loaded, or a VXLAN device can be made (and is removed again): the
    module may load on demand."""
    if os.path.isdir("/sys/module/vxlan"):
        return True
    probe = "ipopvxprobe0"
    made = subprocess.run([*_ip(ns), "link", "add", probe, "type", "vxlan", "id", str(MAX_VNI),
                           "dstport", "0"], capture_output=True).returncode == 0
    if made:
        subprocess.run(delete_argv(probe, ns), capture_output=True)
    return made

"""WireGuard between sites: the commands that make and key an interface, for the lab and for
`ipop-ryu bridge setup --encrypt` alike.

Each site's WireGuard key is its controller's own ICC key (`private_key_file`; the peers
file's `public_key`), so one identity per node. VXLAN and ICC run between the sites' tunnel
addresses (the peers file's `endpoint` hosts), WireGuard between their underlay addresses
(`wireguard_endpoint`).
"""
import ipaddress
import subprocess
from dataclasses import dataclass, field
from typing import List, Tuple

from .vxlan import overlay_mtu

PORT = 51820
OVERHEAD = 80             # WireGuard over IPv6 (60 over IPv4), what wg-quick subtracts
USERSPACE_ENV = {"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"}
UAPI_DIR = "/var/run/wireguard"   # wireguard-go's sockets: one per interface, machine-wide


@dataclass
class WgPeer:
    public_key: str
    endpoint: Tuple[str, int]
    allowed_ips: List[str] = field(default_factory=list)


def kernel_has_wireguard(ns=None) -> bool:
    """Try to make a kernel WireGuard link (and remove it): the module may load on demand."""
    where = ["-n", ns] if ns else []
    probe = "wgprobe0"
    made = subprocess.run(["ip", *where, "link", "add", probe, "type", "wireguard"],
                          capture_output=True).returncode == 0
    if made:
        subprocess.run(["ip", *where, "link", "del", probe], capture_output=True)
    return made


def host_route(ip: str) -> str:
    """One address as a prefix: a.b.c.d/32 or x::y/128 (allowed-ips, routes, addresses)."""
    return f"{ip}/{32 if ipaddress.ip_address(ip).version == 4 else 128}"


def wg_mtu(underlay_mtu: int = 1500) -> int:
    return underlay_mtu - OVERHEAD


def inner_mtu(underlay_mtu: int = 1500, family: int = 4) -> int:
    """The container ports' MTU: the underlay's, less WireGuard, less VXLAN."""
    return overlay_mtu(wg_mtu(underlay_mtu), "vxlan", family)


def set_argv(ifname, private_key_file, listen_port, peers, remove=()) -> list:
    """`wg set`: key, port and peers (their endpoint and allowed-ips replaced), and the
    removal of peers no longer wanted (their public keys)."""
    argv = ["wg", "set", ifname, "private-key", private_key_file, "listen-port",
            str(listen_port)]
    for peer in peers:
        host, port = peer.endpoint
        argv += ["peer", peer.public_key, "endpoint",
                 f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                 "allowed-ips", ",".join(peer.allowed_ips)]
    for public_key in remove:
        argv += ["peer", public_key, "remove"]
    return argv

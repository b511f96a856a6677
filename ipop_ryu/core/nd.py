"""Ethernet/IPv6 Neighbor Discovery frames (RFC 4861): parse what a switch punts (NS, NA),
build what the controller sends (a replayed NS, an NA answering for a learned owner).

The IPv6 counterpart of arp.py, for the neighbour-resolution family ND. Addresses are kept
in their compressed text form (`ipaddress` canonical), MACs as in arp.py.
"""
import socket
import struct
from dataclasses import dataclass
from typing import Optional

from .arp import mac_to_bytes, mac_to_str

ETH_TYPE_IPV6 = 0x86DD
ICMPV6 = 58
NS, NA = 135, 136
OPT_SLLA, OPT_TLLA = 1, 2           # source / target link-layer address options
UNSPECIFIED = "::"
ALL_NODES = "ff02::1"
HOP_LIMIT = 255                     # RFC 4861 7.1.1: anything else is not from the link
# NA flags (the first byte of the reserved word)
FLAG_ROUTER, FLAG_SOLICITED, FLAG_OVERRIDE = 0x80, 0x40, 0x20

_ETH = struct.Struct("!6s6sH")
_IP6 = struct.Struct("!IHBB16s16s")      # version/class/flow, payload length, next, hops
_ND = struct.Struct("!BBHI16s")          # type, code, checksum, flags/reserved, target


def ip_to_str(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, raw)


def ip_to_bytes(ip: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, ip)


def solicited_node(ip: str) -> str:
    """ff02::1:ffXX:XXXX, the multicast group an NS for ip is sent to."""
    low = ip_to_bytes(ip)[13:]
    return ip_to_str(bytes.fromhex("ff0200000000000000000001ff") + low)


def multicast_mac(ip: str) -> str:
    """33:33 and the group's last 32 bits (RFC 2464)."""
    return mac_to_str(b"\x33\x33" + ip_to_bytes(ip)[12:])


def is_link_local(ip: str) -> bool:
    return ip_to_bytes(ip)[:2] == b"\xfe\x80"


@dataclass(frozen=True)
class NdFrame:
    eth_src: str
    eth_dst: str
    src: str            # IPv6 source; "::" for a DAD probe
    dst: str
    type: int           # NS or NA
    target: str
    lladdr: Optional[str]    # the SLLA of an NS, the TLLA of an NA (None when absent)
    flags: int = 0           # NA only

    @property
    def is_dad(self) -> bool:
        """RFC 4862 duplicate address detection: an NS from the unspecified address."""
        return self.type == NS and self.src == UNSPECIFIED

    @property
    def is_multicast(self) -> bool:
        """An NS to the solicited-node group (resolution) rather than to the owner itself
        (neighbour unreachability detection, which the owner must answer)."""
        return ip_to_bytes(self.dst)[0] == 0xFF


def _checksum(src: bytes, dst: bytes, icmp: bytes) -> int:
    pseudo = src + dst + struct.pack("!IxxxB", len(icmp), ICMPV6)
    data = pseudo + icmp + (b"\0" if len(icmp) % 2 else b"")
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def parse(frame: bytes):
    """The NdFrame in an untagged Ethernet frame, or None unless it is a well-formed NS or NA
    (hop limit 255, code 0, checksum right, options of whole 8-byte units)."""
    if len(frame) < _ETH.size + _IP6.size + _ND.size:
        return None
    dst_mac, src_mac, eth_type = _ETH.unpack_from(frame)
    if eth_type != ETH_TYPE_IPV6:
        return None
    vtf, length, next_header, hops, src, dst = _IP6.unpack_from(frame, _ETH.size)
    start = _ETH.size + _IP6.size
    icmp = frame[start:start + length]
    if vtf >> 28 != 6 or next_header != ICMPV6 or hops != HOP_LIMIT or len(icmp) != length \
            or length < _ND.size:
        return None
    kind, code, _, word, target = _ND.unpack_from(icmp)
    if kind not in (NS, NA) or code != 0 or _checksum(src, dst, icmp) != 0:
        return None
    lladdr = _option(icmp[_ND.size:], OPT_SLLA if kind == NS else OPT_TLLA)
    if lladdr is False:
        return None
    return NdFrame(mac_to_str(src_mac), mac_to_str(dst_mac), ip_to_str(src), ip_to_str(dst),
                   kind, ip_to_str(target), lladdr, word >> 24 if kind == NA else 0)


def _option(options: bytes, wanted: int):
    """The link-layer address in option `wanted`; None if absent, False if malformed."""
    found = None
    while options:
        if len(options) < 2 or options[1] == 0 or len(options) < options[1] * 8:
            return False
        kind, size = options[0], options[1] * 8
        if kind == wanted and size == 8:
            found = mac_to_str(options[2:8])
        options = options[size:]
    return found


def build(nd: NdFrame) -> bytes:
    """Serialise an NdFrame (checksum computed; the option only when lladdr is set)."""
    src, dst = ip_to_bytes(nd.src), ip_to_bytes(nd.dst)
    option = b""
    if nd.lladdr is not None:
        option = bytes((OPT_SLLA if nd.type == NS else OPT_TLLA, 1)) + mac_to_bytes(nd.lladdr)
    body = _ND.pack(nd.type, 0, 0, nd.flags << 24, ip_to_bytes(nd.target)) + option
    body = body[:2] + struct.pack("!H", _checksum(src, dst, body)) + body[4:]
    return (_ETH.pack(mac_to_bytes(nd.eth_dst), mac_to_bytes(nd.eth_src), ETH_TYPE_IPV6)
            + _IP6.pack(6 << 28, len(body), ICMPV6, HOP_LIMIT, src, dst) + body)


def solicit(sender_ip: str, sender_mac: str, target: str) -> NdFrame:
    """A multicast NS for target, as a resolving host sends it."""
    group = solicited_node(target)
    return NdFrame(sender_mac, multicast_mac(group), sender_ip, group, NS, target, sender_mac)


def advertise(owner_ip: str, owner_mac: str, to_ip: str, to_mac: str,
              router: bool = False, with_tlla: bool = True) -> NdFrame:
    """A solicited NA from the owner to the host that asked (RFC 4861 7.2.4). An NS without
    a source link-layer option gets an NA without a target one (with_tlla=False): the asker
    then learns the owner's MAC from the NA's Ethernet source, as a real owner would have it."""
    flags = FLAG_SOLICITED | FLAG_OVERRIDE | (FLAG_ROUTER if router else 0)
    return NdFrame(owner_mac, to_mac, owner_ip, to_ip, NA, owner_ip,
                   owner_mac if with_tlla else None, flags)


def defend(owner_ip: str, owner_mac: str, router: bool = False) -> NdFrame:
    """The NA that makes a host doing DAD for owner_ip give it up (RFC 4862 5.4.3): to
    all-nodes, not solicited (the prober has no address to be answered at)."""
    flags = FLAG_OVERRIDE | (FLAG_ROUTER if router else 0)
    return NdFrame(owner_mac, multicast_mac(ALL_NODES), owner_ip, ALL_NODES, NA, owner_ip,
                   owner_mac, flags)

"""IPv4 and IPv6 address checks on the hot paths, without `ipaddress` objects (they cost
microseconds per packet-in and per ICC datagram).

IPv6 addresses are kept as text in their canonical (RFC 5952, `ipaddress`) form: one address,
one string, so the learned table, ICC and the flows never hold two spellings of one host.
"""
import ipaddress
import socket
from typing import Iterable, Optional, Tuple

V6_KEY_BASE = 1 << 128      # sort keys: IPv4 as its integer, IPv6 above every IPv4 one


def ipv4_int(text) -> Optional[int]:
    """The address as an integer, or None unless text is a strict dotted quad
    (no shorthand like '10.1', no leading zeros, no hex: what `ipaddress` accepts)."""
    if not isinstance(text, str) or not 7 <= len(text) <= 15:
        return None
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
    except (OSError, ValueError):       # ValueError: an embedded NUL
        return None
    return int.from_bytes(packed, "big")


def ipv6_packed(text) -> Optional[bytes]:
    """The 16 bytes of a canonical IPv6 address, or None (another spelling, a zone index,
    an IPv4-mapped dotted tail or anything else)."""
    if not isinstance(text, str) or not 2 <= len(text) <= 39 or "." in text:
        return None
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        return None
    return packed if socket.inet_ntop(socket.AF_INET6, packed) == text else None


def is_ipv6(text) -> bool:
    return ipv6_packed(text) is not None


def ip_key(text) -> Optional[int]:
    """One integer order for both families (IPv4 first), or None for neither."""
    value = ipv4_int(text)
    if value is not None:
        return value
    packed = ipv6_packed(text)
    return None if packed is None else V6_KEY_BASE | int.from_bytes(packed, "big")


def ip_of_key(key: int) -> str:
    if key >= V6_KEY_BASE:
        return socket.inet_ntop(socket.AF_INET6, (key ^ V6_KEY_BASE).to_bytes(16, "big"))
    return socket.inet_ntoa(key.to_bytes(4, "big"))


class Subnets:
    """A fixed set of IPv4 and IPv6 networks; `ip in subnets` for address strings. A family
    none of the networks belongs to is not restricted (`restricts(ip)` says False), so an
    IPv4-only list keeps IPv6 working as before it listed nothing."""

    def __init__(self, networks: Iterable):
        self.networks: Tuple = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self._masks = {4: (), 6: ()}
        for net in self.networks:
            self._masks[net.version] += ((int(net.network_address), int(net.netmask)),)

    def __contains__(self, ip) -> bool:
        value, masks = ipv4_int(ip), self._masks[4]
        if value is None:
            packed = ipv6_packed(ip)
            if packed is None:
                return False
            value, masks = int.from_bytes(packed, "big"), self._masks[6]
        return any(value & mask == net for net, mask in masks)

    def restricts(self, ip) -> bool:
        """True when some network of ip's family is listed."""
        return bool(self._masks[4 if ipv4_int(ip) is not None else 6])

    def __bool__(self):
        return bool(self.networks)

    def __eq__(self, other):
        return isinstance(other, Subnets) and self.networks == other.networks

    def __hash__(self):
        return hash(self.networks)

    def __repr__(self):
        return f"Subnets({[str(n) for n in self.networks]})"

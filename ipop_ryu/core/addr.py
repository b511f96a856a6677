"""IPv4 address checks on the hot paths, without `ipaddress` objects (they cost microseconds
per packet-in and per ICC datagram)."""
import ipaddress
import socket
from typing import Iterable, Optional, Tuple


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


class Subnets:
    """A fixed set of IPv4 networks; `ip in subnets` for dotted-quad strings."""

    def __init__(self, networks: Iterable):
        self.networks: Tuple[ipaddress.IPv4Network, ...] = tuple(
            ipaddress.IPv4Network(n, strict=False) for n in networks)
        self._masks = tuple((int(n.network_address), int(n.netmask)) for n in self.networks)

    def __contains__(self, ip) -> bool:
        value = ipv4_int(ip)
        return value is not None and any(value & mask == net for net, mask in self._masks)

    def __bool__(self):
        return bool(self.networks)

    def __eq__(self, other):
        return isinstance(other, Subnets) and self.networks == other.networks

    def __hash__(self):
        return hash(self.networks)

    def __repr__(self):
        return f"Subnets({[str(n) for n in self.networks]})"

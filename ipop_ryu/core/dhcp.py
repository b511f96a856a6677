"""Ethernet/IPv4/UDP DHCP frames (RFC 2131, 2132): what the bridge copies to the controller,
read for the lease it grants or gives back.

`parse` returns None for a frame that is not DHCP at all (not IPv4 UDP to port 67 or 68),
and raises Malformed for one that is but cannot be read, so the caller counts it and drops
it. Addresses as dotted quads, MACs as in arp.py.
"""
import socket
import struct
from dataclasses import dataclass
from typing import Dict, Optional

from .arp import mac_to_str
from .names import dns_label

ETH_TYPE_IPV4, UDP = 0x0800, 17
SERVER_PORT, CLIENT_PORT = 67, 68
BOOTREQUEST, BOOTREPLY = 1, 2
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
MESSAGE_TYPES = {DISCOVER: "discover", OFFER: "offer", REQUEST: "request", DECLINE: "decline",
                 ACK: "ack", NAK: "nak", RELEASE: "release", INFORM: "inform"}
OPT_PAD, OPT_HOSTNAME, OPT_REQUESTED_IP, OPT_LEASE_TIME, OPT_MESSAGE_TYPE, OPT_SERVER_ID, \
    OPT_END = 0, 12, 50, 51, 53, 54, 255
INFINITE = 0xFFFFFFFF               # lease time: never expires
MAGIC = b"\x63\x82\x53\x63"

_ETH = struct.Struct("!6s6sH")
_IP4 = struct.Struct("!BBHHHBBH4s4s")    # ver/ihl, tos, total length, id, flags/frag, ttl...
_UDP = struct.Struct("!HHHH")
_BOOTP = struct.Struct("!BBBBIHH4s4s4s4s16s")       # op .. chaddr; sname, file follow
BOOTP_FIXED = _BOOTP.size + 64 + 128               # 236, then the magic cookie


class Malformed(ValueError):
    """UDP to a DHCP port, but not a DHCP message we can read."""


@dataclass(frozen=True)
class DhcpFrame:
    eth_src: str
    eth_dst: str
    src_ip: str
    dst_ip: str
    op: int                   # BOOTREQUEST (client) or BOOTREPLY (server)
    message_type: int         # DISCOVER .. INFORM
    xid: int
    ciaddr: str               # the client's address it already has (renew, release)
    yiaddr: str               # the address the server grants (offer, ack)
    chaddr: str               # the client's MAC
    lease_time: Optional[int] = None       # seconds; INFINITE: forever
    hostname: Optional[str] = None
    server_id: Optional[str] = None
    requested_ip: Optional[str] = None

    @property
    def kind(self) -> str:
        return MESSAGE_TYPES.get(self.message_type, str(self.message_type))


def _ip(raw: bytes) -> str:
    return socket.inet_ntoa(raw)


def _ip_checksum_ok(header: bytes) -> bool:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def parse(frame: bytes) -> Optional[DhcpFrame]:
    """The DhcpFrame in an untagged Ethernet frame; None if it is not UDP to 67 or 68;
    Malformed if it is, but unreadable."""
    if len(frame) < _ETH.size + _IP4.size:
        return None
    dst_mac, src_mac, eth_type = _ETH.unpack_from(frame)
    if eth_type != ETH_TYPE_IPV4:
        return None
    ver_ihl, _, total, _, frag, _, proto, _, src, dst = _IP4.unpack_from(frame, _ETH.size)
    if proto != UDP or ver_ihl >> 4 != 4:
        return None
    ihl = (ver_ihl & 0x0F) * 4
    start = _ETH.size + ihl
    if len(frame) < start + _UDP.size:
        return None
    src_port, dst_port, udp_length, _ = _UDP.unpack_from(frame, start)
    if dst_port not in (SERVER_PORT, CLIENT_PORT):
        return None
    if ihl < _IP4.size or total < ihl + _UDP.size or _ETH.size + total > len(frame):
        raise Malformed("IPv4 header or total length out of bounds")
    if frag & 0x3FFF:
        raise Malformed("a fragment")
    if not _ip_checksum_ok(frame[_ETH.size:start]):
        raise Malformed("IPv4 header checksum wrong")
    if udp_length < _UDP.size or udp_length > total - ihl:
        raise Malformed("UDP length out of bounds")
    bootp = frame[start + _UDP.size:start + udp_length]
    if len(bootp) < BOOTP_FIXED + len(MAGIC) or bootp[BOOTP_FIXED:BOOTP_FIXED + 4] != MAGIC:
        raise Malformed("too short for DHCP, or no magic cookie")
    op, htype, hlen, _, xid, _, _, ciaddr, yiaddr, _, _, chaddr = _BOOTP.unpack_from(bootp)
    if op not in (BOOTREQUEST, BOOTREPLY) or htype != 1 or hlen != 6:
        raise Malformed(f"op {op}, hardware type {htype}/{hlen}: not DHCP over Ethernet")
    options = _options(bootp[BOOTP_FIXED + 4:])
    kind = options.get(OPT_MESSAGE_TYPE, b"")
    if len(kind) != 1 or kind[0] not in MESSAGE_TYPES:
        raise Malformed("no DHCP message type")
    return DhcpFrame(
        mac_to_str(src_mac), mac_to_str(dst_mac), _ip(src), _ip(dst), op, kind[0], xid,
        _ip(ciaddr), _ip(yiaddr), mac_to_str(chaddr[:6]),
        lease_time=_fixed(options, OPT_LEASE_TIME, 4, lambda raw: int.from_bytes(raw, "big")),
        hostname=_hostname(options.get(OPT_HOSTNAME)),
        server_id=_fixed(options, OPT_SERVER_ID, 4, _ip),
        requested_ip=_fixed(options, OPT_REQUESTED_IP, 4, _ip))


def _options(raw: bytes) -> Dict[int, bytes]:
    """code -> value; a code given twice is concatenated (RFC 3396)."""
    found: Dict[int, bytes] = {}
    offset = 0
    while offset < len(raw):
        code = raw[offset]
        if code == OPT_END:
            return found
        if code == OPT_PAD:
            offset += 1
            continue
        if offset + 2 > len(raw) or offset + 2 + raw[offset + 1] > len(raw):
            raise Malformed(f"option {code} runs past the end")
        length = raw[offset + 1]
        found[code] = found.get(code, b"") + raw[offset + 2:offset + 2 + length]
        offset += 2 + length
    raise Malformed("options without an end")


def _fixed(options, code, size, convert):
    value = options.get(code)
    if value is None:
        return None
    if len(value) != size:
        raise Malformed(f"option {code} is {len(value)} bytes, not {size}")
    return convert(value)


def _hostname(raw: Optional[bytes]) -> Optional[str]:
    """A hostname as a DNS label allows; anything else is not taken as a name."""
    return dns_label(raw.rstrip(b"\0").decode("ascii", "replace")) if raw else None

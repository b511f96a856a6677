"""Ethernet/ARP frames: parse what a switch punts, build what the controller sends."""
import socket
import struct
from dataclasses import dataclass

ETH_TYPE_ARP = 0x0806
ARP_REQUEST = 1
ARP_REPLY = 2
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
ZERO_MAC = "00:00:00:00:00:00"
UNSPECIFIED_IP = "0.0.0.0"

_ETH = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")  # htype ptype hlen plen op sha spa tha tpa
_VLAN_TPIDS = (0x8100, 0x88A8)


def mac_to_str(raw: bytes) -> str:
    return raw.hex(":")


def mac_to_bytes(mac: str) -> bytes:
    raw = bytes.fromhex(mac.replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return raw


def is_unicast_mac(mac: str) -> bool:
    """True for a usable host MAC: not multicast/broadcast (I/G bit clear) and not all zero."""
    return mac != ZERO_MAC and not int(mac[:2], 16) & 1


@dataclass(frozen=True)
class ArpFrame:
    eth_src: str
    eth_dst: str
    op: int
    sha: str
    spa: str
    tha: str
    tpa: str

    @property
    def is_broadcast(self) -> bool:
        return self.eth_dst == BROADCAST_MAC

    @property
    def is_probe(self) -> bool:
        """RFC 5227 probe: the sender has no address yet."""
        return self.spa == UNSPECIFIED_IP

    @property
    def is_gratuitous(self) -> bool:
        """A host announcing its own address (request or reply with spa == tpa)."""
        return self.spa == self.tpa


def parse(frame: bytes):
    """Return the ArpFrame in an untagged Ethernet frame, or None if it is not Ethernet/IPv4 ARP."""
    if len(frame) < _ETH.size + _ARP.size:
        return None
    dst, src, eth_type = _ETH.unpack_from(frame)
    if eth_type != ETH_TYPE_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(frame, _ETH.size)
    if (htype, ptype, hlen, plen) != (1, 0x0800, 6, 4) or op not in (ARP_REQUEST, ARP_REPLY):
        return None
    return ArpFrame(
        eth_src=mac_to_str(src), eth_dst=mac_to_str(dst), op=op,
        sha=mac_to_str(sha), spa=socket.inet_ntoa(spa),
        tha=mac_to_str(tha), tpa=socket.inet_ntoa(tpa),
    )


def build(arp: ArpFrame) -> bytes:
    """Serialise an ArpFrame as a minimum-size (60-byte, zero-padded) Ethernet frame."""
    frame = _ETH.pack(mac_to_bytes(arp.eth_dst), mac_to_bytes(arp.eth_src), ETH_TYPE_ARP)
    frame += _ARP.pack(
        1, 0x0800, 6, 4, arp.op,
        mac_to_bytes(arp.sha), socket.inet_aton(arp.spa),
        mac_to_bytes(arp.tha), socket.inet_aton(arp.tpa),
    )
    return frame.ljust(60, b"\0")


def request(sender_ip: str, sender_mac: str, target_ip: str) -> ArpFrame:
    """A broadcast who-has, as a host would send it."""
    return ArpFrame(sender_mac, BROADCAST_MAC, ARP_REQUEST,
                    sender_mac, sender_ip, ZERO_MAC, target_ip)


def reply(owner_ip: str, owner_mac: str, to_ip: str, to_mac: str) -> ArpFrame:
    """A unicast is-at from the owner, as the owner itself would send it."""
    return ArpFrame(owner_mac, to_mac, ARP_REPLY, owner_mac, owner_ip, to_mac, to_ip)

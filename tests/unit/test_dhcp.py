"""DHCP frames read from a real dnsmasq/udhcpc exchange (dhcp_frames), and refused when
they are DHCP but unreadable."""
import pytest

from ipop_ryu.core import dhcp

from . import dhcp_frames
from .helpers import who_has


def test_an_ack_gives_the_lease():
    ack = dhcp.parse(dhcp_frames.ACK)
    assert (ack.kind, ack.op, ack.yiaddr, ack.chaddr) == ("ack", dhcp.BOOTREPLY, "10.0.3.30",
                                                          "02:00:0a:00:03:07")
    assert (ack.lease_time, ack.hostname, ack.server_id) == (120, "c7", "10.0.3.1")
    assert (ack.eth_src, ack.src_ip) == ("02:49:50:4f:50:01", "10.0.3.1")


def test_the_clients_messages():
    discover, request = dhcp.parse(dhcp_frames.DISCOVER), dhcp.parse(dhcp_frames.REQUEST)
    assert (discover.kind, discover.op, discover.eth_dst) == ("discover", dhcp.BOOTREQUEST,
                                                              "ff:ff:ff:ff:ff:ff")
    assert (request.kind, request.requested_ip, request.server_id) == (
        "request", "10.0.3.30", "10.0.3.1")
    renew = dhcp.parse(dhcp_frames.RENEW)
    assert (renew.kind, renew.ciaddr, renew.eth_dst) == ("request", "10.0.3.30",
                                                         "02:49:50:4f:50:01")
    release = dhcp.parse(dhcp_frames.RELEASE)
    assert (release.kind, release.ciaddr, release.chaddr) == ("release", "10.0.3.30",
                                                              "02:00:0a:00:03:07")
    assert dhcp.parse(dhcp_frames.OFFER).kind == "offer"


def test_what_is_not_dhcp_is_none():
    assert dhcp.parse(who_has("10.0.3.7", "10.0.3.1")) is None
    other_port = bytearray(dhcp_frames.ACK)
    other_port[36:38] = (53).to_bytes(2, "big")               # UDP destination: DNS
    assert dhcp.parse(bytes(other_port)) is None
    assert dhcp.parse(b"") is None


def _patched(offset, value: bytes):
    data = bytearray(dhcp_frames.ACK)
    data[offset:offset + len(value)] = value
    return bytes(data)


BOOTP = 14 + 20 + 8
OPTIONS = BOOTP + dhcp.BOOTP_FIXED + 4


@pytest.mark.parametrize("data,why", [
    (dhcp_frames.ACK[:BOOTP + 100], "out of bounds"),
    (_patched(BOOTP + dhcp.BOOTP_FIXED, b"\0\0\0\0"), "magic"),
    (_patched(24, b"\0\0"), "checksum"),                       # IPv4 header checksum
    (_patched(BOOTP + 1, b"\x06"), "hardware"),                # htype 6 (IEEE 802)
    (_patched(OPTIONS, b"\x35\x01\x63"), "message type"),      # type 99
    (_patched(OPTIONS, b"\x35\xf0"), "runs past"),
    (_patched(20, b"\x20\x00"), "fragment"),
])
def test_unreadable_dhcp_is_malformed(data, why):
    with pytest.raises(dhcp.Malformed, match=why):
        dhcp.parse(data)


def test_a_hostname_that_is_no_label_is_not_taken():
    assert dhcp._hostname(b"c7\0") == "c7"
    assert dhcp._hostname(b"bad name") is None and dhcp._hostname(b"-x") is None
    assert dhcp._hostname(b"\xff\xfe") is None

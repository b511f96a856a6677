import pytest

from ipop_ryu.core import arp


def test_request_round_trip():
    frame = arp.request("10.0.3.5", "02:00:0a:00:03:05", "10.0.3.7")
    data = arp.build(frame)
    assert len(data) == 60
    assert arp.parse(data) == frame
    assert frame.is_broadcast and not frame.is_probe and not frame.is_gratuitous


def test_reply_is_unicast_from_owner():
    frame = arp.reply("10.0.3.7", "02:00:0a:00:03:07", "10.0.3.5", "02:00:0a:00:03:05")
    parsed = arp.parse(arp.build(frame))
    assert parsed.op == arp.ARP_REPLY
    assert (parsed.eth_src, parsed.eth_dst) == ("02:00:0a:00:03:07", "02:00:0a:00:03:05")
    assert (parsed.sha, parsed.spa, parsed.tha, parsed.tpa) == (
        "02:00:0a:00:03:07", "10.0.3.7", "02:00:0a:00:03:05", "10.0.3.5")


@pytest.mark.parametrize("data", [
    b"", b"\xff" * 41,
    bytes(12) + b"\x08\x00" + bytes(46),                                  # IPv4, not ARP
    bytes(12) + b"\x08\x06" + b"\x00\x06\x08\x00\x06\x04\x00\x01" + bytes(20),  # htype 6
    bytes(12) + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x09" + bytes(20),  # op 9
])
def test_parse_rejects_non_arp(data):
    assert arp.parse(data) is None


def test_probe_and_gratuitous():
    assert arp.request("0.0.0.0", "02:00:00:00:00:01", "10.0.3.9").is_probe
    assert arp.request("10.0.3.9", "02:00:00:00:00:01", "10.0.3.9").is_gratuitous


@pytest.mark.parametrize("mac,unicast", [
    ("02:00:0a:00:03:05", True), ("ff:ff:ff:ff:ff:ff", False),
    ("01:00:5e:00:00:01", False), ("00:00:00:00:00:00", False), ("33:33:00:00:00:01", False),
])
def test_unicast_mac(mac, unicast):
    assert arp.is_unicast_mac(mac) is unicast

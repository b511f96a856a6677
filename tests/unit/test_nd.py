"""ND frames: real Linux frames parse, ours are byte for byte what Linux sends."""
import pytest

from ipop_ryu.core import nd

# captured from Linux 6.x (tcpdump -xx) between two namespaces
LINUX_DAD_NS = bytes.fromhex(        # DAD probe for fe80::ff:fe00:a, with a nonce option (14)
    "3333ff00000a02000000000a86dd6000000000203aff00000000000000000000000000000000ff02"
    "00000000000000000001ff00000a8700ae7d00000000fe80000000000000000000fffe00000a0e01"
    "4afb67000e91")
LINUX_NS = bytes.fromhex(            # 2001:db8::a asks for 2001:db8::b
    "3333ff00000b02000000000a86dd6000000000203aff20010db800000000000000000000000aff02"
    "00000000000000000001ff00000b87001c030000000020010db800000000000000000000000b0101"
    "02000000000a")


def test_a_linux_ns_parses_and_is_rebuilt_byte_for_byte():
    frame = nd.parse(LINUX_NS)
    assert frame == nd.NdFrame("02:00:00:00:00:0a", "33:33:ff:00:00:0b", "2001:db8::a",
                               "ff02::1:ff00:b", nd.NS, "2001:db8::b", "02:00:00:00:00:0a")
    assert frame.is_multicast and not frame.is_dad
    assert nd.build(nd.solicit("2001:db8::a", "02:00:00:00:00:0a", "2001:db8::b")) == LINUX_NS


def test_a_dad_probe_is_recognised_and_its_nonce_is_not_an_address():
    frame = nd.parse(LINUX_DAD_NS)
    assert frame.is_dad and frame.target == "fe80::ff:fe00:a" and frame.lladdr is None


def test_an_na_checks_out_and_round_trips():
    na = nd.advertise("2001:db8::b", "02:00:00:00:00:0b", "2001:db8::a", "02:00:00:00:00:0a")
    raw = nd.build(na)
    assert nd.parse(raw) == na
    assert na.flags == nd.FLAG_SOLICITED | nd.FLAG_OVERRIDE
    bare = nd.advertise("2001:db8::b", "02:00:00:00:00:0b", "2001:db8::a",
                        "02:00:00:00:00:0a", router=True, with_tlla=False)
    assert nd.parse(nd.build(bare)).lladdr is None and bare.flags & nd.FLAG_ROUTER
    defend = nd.parse(nd.build(nd.defend("2001:db8::b", "02:00:00:00:00:0b")))
    assert (defend.dst, defend.eth_dst, defend.flags) == ("ff02::1", "33:33:00:00:00:01",
                                                          nd.FLAG_OVERRIDE)


@pytest.mark.parametrize("offset,value", [
    (21, 64),           # hop limit not 255: not from the link
    (56, 0x00),         # checksum
    (55, 1),            # code
    (54, 128),          # an echo request, not ND
    (20, 6),            # TCP, not ICMPv6
    (12, 0x08),         # not IPv6
    (79, 0),            # option length 0
    (79, 2),            # option longer than the frame
])
def test_anything_else_or_malformed_is_none(offset, value):
    raw = bytearray(LINUX_NS)
    raw[offset] = value if raw[offset] != value else value ^ 1
    assert nd.parse(bytes(raw)) is None
    assert nd.parse(LINUX_NS[:60]) is None


def test_groups():
    assert nd.solicited_node("2001:db8::1:2:3") == "ff02::1:ff02:3"
    assert nd.multicast_mac("ff02::1:ff02:3") == "33:33:ff:02:00:03"
    assert nd.is_link_local("fe80::1") and not nd.is_link_local("2001:db8::1")

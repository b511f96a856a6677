"""IPv6 in the core: addresses, the one table, ICC's ND messages (ARP's v1 unchanged), cookie
subjects, flow-mod templates and audits of proxy-ND responders."""
import pytest

from ipop_ryu.core import icc, pipeline, pipeline_nd, reconcile
from ipop_ryu.core.addr import Subnets, ip_key, ip_of_key, ipv6_packed
from ipop_ryu.core.config import parse
from ipop_ryu.core.intents import DeleteFlows
from ipop_ryu.core.switchmode import SwitchMode
from ipop_ryu.core.neighbour_table import NeighbourTable
from ipop_ryu.ofp import ryu13

from .fakeswitch import FakeSwitch
from .helpers import KEY, Clock, options

codec = icc.Codec(KEY)


def test_only_the_canonical_spelling_of_an_ipv6_address_is_one():
    assert ipv6_packed("fd00:3::7") and ipv6_packed("::") and ipv6_packed("fe80::aff:fe00:307")
    for text in ("FD00:3::7", "fd00:3:0::7", "fd00:0003::7", "fe80::1%eth0", "::ffff:1.2.3.4",
                 "10.0.3.7", "", None, 7, "fd00:3::7/64", "1::2::3"):
        assert ipv6_packed(text) is None, text


def test_one_order_for_both_families_ipv4_first():
    ips = ["fd00:3::7", "10.0.3.7", "fe80::1", "10.0.3.10", "::1"]
    ordered = sorted(ips, key=ip_key)
    assert ordered == ["10.0.3.7", "10.0.3.10", "::1", "fd00:3::7", "fe80::1"]
    assert [ip_of_key(ip_key(ip)) for ip in ordered] == ordered


def test_overlay_subnet_restricts_each_family_it_names():
    v4_only = Subnets(["10.0.3.0/24"])
    assert "10.0.3.7" in v4_only and not v4_only.restricts("fd00:3::7")
    both = Subnets(["10.0.3.0/24", "fd00:3::/64"])
    assert "fd00:3::7" in both and "fd00:4::7" not in both and both.restricts("fe80::1")
    opts = parse({"node_id": "A", "icc": "false", "overlay_subnet": "10.0.3.0/24, fd00:3::/64"})
    assert opts.in_overlay("fd00:3::5") and not opts.in_overlay("fe80::5")
    assert parse({"node_id": "A", "icc": "false",
                  "overlay_subnet": "10.0.3.0/24"}).in_overlay("fe80::5")


def test_the_table_pages_through_both_families():
    table = NeighbourTable("A", 300)
    for ip in ("fd00:3::7", "10.0.3.7", "fe80::7", "10.0.3.5"):
        table.learn(ip, "02:00:00:00:00:07", "B", None, 0.0)
    assert table.ipv6_count == 2
    page, after = table.page(1.0, None, 3)
    assert [e.ip for e in page] == ["10.0.3.5", "10.0.3.7", "fd00:3::7"] and after == "fd00:3::7"
    assert [e.ip for e in table.page(1.0, after, 3)[0]] == ["fe80::7"]
    table.remove("fe80::7")
    assert table.ipv6_count == 1


def nd_message(msg_type, **fields):
    return codec.encode(msg_type, "B", 1, 1700000000.0, **fields)


def test_nd_messages_are_checked_like_arp_ones():
    request = codec.decode(nd_message("nd_request", sender_ip="::", sender_mac="02:00:00:00:00:05",
                                      target_ip="fd00:3::7"))
    assert request["sender_ip"] == "::", "a DAD probe has no address yet"
    reply = codec.decode(nd_message("nd_reply", ip="fe80::7", mac="02:00:00:00:00:07", age=3))
    assert reply["age"] == 3
    for bad in (dict(ip="FE80::7", mac="02:00:00:00:00:07"),
                dict(ip="10.0.3.7", mac="02:00:00:00:00:07")):
        with pytest.raises(icc.Drop) as caught:
            codec.decode(nd_message("nd_reply", **bad))
        assert caught.value.reason == icc.BAD_FIELD
    with pytest.raises(icc.Drop):           # v1 ARP messages are still IPv4 only
        codec.decode(nd_message("arp_reply", ip="fd00:3::7", mac="02:00:00:00:00:07"))


def test_bindings_and_withdraw_carry_both_families():
    batch = codec.decode(nd_message("bindings", bindings=[["10.0.3.7", "02:00:00:00:00:07"],
                                                          ["fd00:3::7", "02:00:00:00:00:07", 2],
                                                          ["fd00:03::7", "02:00:00:00:00:07"]]))
    assert batch["bindings"] == [("10.0.3.7", "02:00:00:00:00:07", 0),
                                 ("fd00:3::7", "02:00:00:00:00:07", 2)]
    assert batch["invalid"] == 1
    withdraw = codec.decode(nd_message("withdraw", ips=["fd00:3::7", "10.0.3.7", "x"]))
    assert withdraw["ips"] == ["fd00:3::7", "10.0.3.7"] and withdraw["invalid"] == 1


def test_cookie_subjects_are_the_crc_and_collisions_take_the_next_value(monkeypatch):
    assert pipeline.cookie("proxy_nd", "fd00:3::7") & 0xFFFFFFFF == pipeline.v6_subject(
        "fd00:3::7")
    assert pipeline.cookie("proxy_arp", "10.0.3.7") == 0x495000040a000307, "ARP unchanged"
    monkeypatch.setattr(pipeline, "v6_subject", lambda ip: 0xFFFFFFFF)
    subjects = pipeline_nd.Subjects()
    assert subjects.take("fd00:3::7") == 0xFFFFFFFF
    assert subjects.take("fd00:3::8") == 0, "the next free value, wrapping"
    assert subjects.take("fd00:3::7") == 0xFFFFFFFF, "stable while held"
    subjects.release("fd00:3::7")
    assert subjects.take("fd00:3::9") == 0xFFFFFFFF


def test_ipv6_responders_share_one_template_and_equal_ryus_bytes():
    templates = ryu13.FlowModTemplates(ryu13._serialize)
    for n, ip in enumerate(("fd00:3::7", "fe80::aff:fe00:307", "2001:db8:1:2:3:4:5:6")):
        flow = pipeline_nd.install_nd_responder(ip, f"02:00:00:00:00:{n:02x}", n, 300 + n)
        assert bytes(templates.build(flow)) == ryu13._serialize(flow)
        catch = pipeline_nd.delete_relay_reply_punt(ip)
        assert bytes(templates.build(catch)) == ryu13._serialize(catch)
    assert len(templates._cache) == 2 and templates.fallbacks == 0


def test_the_nd_fields_ryu_lacks_are_encoded_as_ovs_reads_them():
    flow = pipeline_nd.install_nd_responder("fd00:3::7", "02:00:00:00:00:07", 1)
    data = ryu13._serialize(flow)
    assert bytes.fromhex("10000204" "60000000") in data, "nd_reserved = S|O"
    assert bytes.fromhex("10000401" "02") in data, "nd_options_type = target link-layer"


def test_a_proxy_nd_flow_removed_by_hand_is_repaired_by_the_audit():
    clock = Clock()
    core = SwitchMode(options("A", ["B"], peer_hold_time=1000), clock=clock, wallclock=clock)
    switch = FakeSwitch()
    switch.apply(core.switch_connected({1: "h3", 10: "ipop-B"}))
    for n in range(20):
        switch.apply(core.neighbours._learn(f"fd00:3::{n + 1:x}", "02:00:00:00:01:01", "B",
                                            None, clock(), clock()))
    core.reconciler.hold_deletes = False

    def audits():
        for _ in range(int(reconcile.AUDIT_MAX) * 3):
            clock.now += 1.0
            switch.apply(core.tick())
            switch.answer(core)
        return {f.cookie for f in switch.select(pipeline.cookie("proxy_nd"),
                                                pipeline.PURPOSE_MASK)}

    victim = pipeline.cookie("proxy_nd", "fd00:3::7")
    switch.apply([DeleteFlows(victim)])
    held = audits()
    assert victim in held and len(held) == 20
    stranger = pipeline_nd.install_nd_responder("fd00:3::99", "02:00:00:00:09:09", 12345)
    switch.apply([stranger])
    held = audits()
    assert stranger.cookie not in held and len(held) == 20

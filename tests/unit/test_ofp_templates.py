"""Flow-mods from templates are byte for byte what Ryu serializes."""
import socket

from hypothesis import given, settings
from hypothesis import strategies as st

from ipop_ryu.compat.framework import ofproto_v1_3 as ofp
from ipop_ryu.compat.framework import ofproto_v1_3_parser as parser

from ipop_ryu.core import pipeline
from ipop_ryu.core.intents import (Learn, Output, PacketOut, RequestAggregateStats, SetField,
                                   flow)
from ipop_ryu.ofp import ryu13
from ipop_ryu.ofp.templates import FlowModTemplates

from .test_ofp import FakeDatapath

ips = st.integers(1, 2 ** 32 - 2).map(lambda n: socket.inet_ntoa(n.to_bytes(4, "big")))
macs = st.binary(min_size=6, max_size=6).map(lambda b: bytes([b[0] & 0xFE]) + b[1:]) \
    .map(lambda b: b.hex(":"))


def by_ryu(intent, xid):
    (msg,) = ryu13.to_messages(FakeDatapath(), intent)
    msg.set_xid(xid)
    msg.serialize()
    return bytes(msg.buf)


def by_template(intent):
    datapath = FakeDatapath()
    datapath.xid = 41
    (data,) = ryu13.to_wire(datapath, intent)
    assert datapath.xid == 42
    return data


def same(intents):
    for intent in intents:
        assert by_template(intent) == by_ryu(intent, 42), intent


def templated(intent):
    return ryu13.TEMPLATES.build(intent) is not None


@settings(max_examples=300, deadline=None)
@given(ips, macs, st.integers(0, 65535))
def test_per_address_flows(ip, mac, timeout):
    intents = (pipeline.install_arp_responder(ip, mac, timeout)
               + pipeline.delete_arp_responder(ip) + pipeline.delete_learned_mac(mac)
               + [pipeline.install_relay_reply_punt(ip, mac, timeout)])
    same(intents)
    assert all(templated(intent) for intent in intents)


@settings(max_examples=200, deadline=None)
@given(ips, ips, macs, st.integers(0, 2 ** 64 - 1), st.integers(0, 65535),
       st.integers(0, 65535))
def test_every_patched_field(src, dst, mac, cookie, idle, hard):
    same([flow(2, 7, cookie, {"eth_type": 0x0800, "ipv4_src": src, "ipv4_dst": dst,
                              "eth_src": mac, "in_port": 4},
               [SetField("ipv4_dst", src), SetField("eth_dst", mac), Output(3)],
               goto=5, idle_timeout=idle, hard_timeout=hard)])


def test_pipeline_flows_and_the_ones_ryu_keeps():
    same(pipeline.base_flows(100) + pipeline.flood_flows([1, 2, 3], [10, 11])
         + [pipeline.classify_overlay_port(10), pipeline.delete_overlay_port(10)]
         + pipeline.install_port_punt(3, 100)[1:] + pipeline.delete_all_ours())


def test_deletes_by_out_port_keep_their_own_port():
    """out_port is part of the shape: one port's delete is never patched into another's."""
    same([pipeline.delete_learned_to_port(port) for port in (3, 4, 3, 0xFFFFFFFE)])


def test_learn_flows_fall_back_to_ryu_and_still_match():
    learning = [f for f in pipeline.base_flows(100)
                if any(type(a) is Learn for a in f.actions)]
    assert learning
    for intent in learning:
        assert not templated(intent)
    same(learning)


def test_odd_values_fall_back_to_ryu():
    # a prefix Ryu turns into a masked field, an upper-case MAC (templated, same bytes)
    odd = [flow(0, 1, 7, {"eth_type": 0x0800, "ipv4_dst": "10.1.0.0/16"}),
           flow(0, 1, 7, {"eth_dst": "02:AB:CD:00:00:01"},
                [SetField("eth_src", "0E:00:00:00:00:02")])]
    assert not templated(odd[0]) and templated(odd[1])
    same(odd)


def test_a_bad_first_intent_does_not_spoil_its_shape():
    templates = FlowModTemplates(ryu13._serialize)
    bad, good = (pipeline.install_arp_responder("10.0.0.1", "02:00:00:00:00:01", t)[0]
                 for t in (70000, 9))
    assert templates.build(bad) is None
    assert bytes(templates.build(good)) == by_ryu(good, 0)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["198.51.100.101", "198.51.100.102", "203.0.113.101", "10.0.0.1"]),
       st.sampled_from(["0e:5e:17:c0:de:41", "0e:5e:17:c0:de:42", "0a:a1:b2:c3:d4:41",
                        "02:00:00:00:00:01"]), st.integers(0, 65535))
def test_values_equal_to_sentinels(ip, mac, timeout):
    """A fresh cache whose first responder uses a sentinel's own value (in its cookie too)."""
    templates = FlowModTemplates(ryu13._serialize)
    for intent in pipeline.install_arp_responder(ip, mac, timeout) * 2:
        assert bytes(templates.build(intent)) == by_ryu(intent, 0)
    assert templates.fallbacks == 0


def test_sentinel_collisions_with_fixed_bytes():
    """Fixed bytes holding the first family's IPv4 sentinel: the second family is used;
    holding both: Ryu's path, same bytes."""
    def guarded(metadata, ip):
        return flow(1, 5, 9, {"metadata": metadata, "arp_spa": ip, "eth_type": 0x0806})

    templates = FlowModTemplates(ryu13._serialize)
    one = guarded(0xC6336465, "10.0.0.1")                   # 198.51.100.101
    assert bytes(templates.build(one)) == by_ryu(one, 0)
    both = guarded(0xC6336465CB007165, "10.0.0.1")          # and 203.0.113.101
    assert templates.build(both) is None and templates.fallbacks == 1
    same([one, both])


def test_aggregate_stats_request():
    for table in (None, 3):
        intent = RequestAggregateStats(0x1234 << 32, 0xFFFF << 32, table)
        msg = parser.OFPAggregateStatsRequest(
            FakeDatapath(), 0, ofp.OFPTT_ALL if table is None else table, ofp.OFPP_ANY,
            ofp.OFPG_ANY, 0x1234 << 32, 0xFFFF << 32, parser.OFPMatch())
        msg.set_xid(42)
        msg.serialize()
        assert by_template(intent) == by_ryu(intent, 42) == bytes(msg.buf)


def test_templates_are_used_and_outputs_do_not_share_buffers():
    a, b = (by_template(pipeline.install_arp_responder(ip, "02:00:00:00:00:01", 9)[0])
            for ip in ("10.0.0.1", "10.0.0.2"))
    assert a != b and a.replace(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) == b
    shapes = [v for v in ryu13.TEMPLATES._cache.values() if v is not None]
    assert shapes, "responders are built from a template"
    # each build is a fresh buffer: scribbling on one changes neither the next nor the cache
    first, second = (pipeline.install_arp_responder(ip, "02:00:00:00:00:01", 9)[0]
                     for ip in ("10.0.0.1", "10.0.0.2"))
    x = ryu13.TEMPLATES.build(first)
    x[:] = bytes(len(x))
    assert ryu13.TEMPLATES.build(first) == by_ryu(first, 0)
    assert ryu13.TEMPLATES.build(second) == by_ryu(second, 0)


def test_long_runs_of_flow_mods_go_in_a_bundle_in_order():
    datapath = FakeDatapath()
    flows = [m for ip in ("10.0.0.%d" % n for n in range(1, 11))
             for m in ryu13.to_wire(datapath, pipeline.install_arp_responder(
                 ip, "02:00:00:00:00:01", 9)[0])]
    packet_out = ryu13.to_wire(datapath, PacketOut(b"x" * 60, (Output(1),)))[0]
    lone = flows[:2]
    out = ryu13.bundled(datapath, lone + [packet_out] + flows, 7)
    assert out[:3] == lone + [packet_out], "short runs are left alone"
    open_, *adds, commit = out[3:]
    assert len(adds) == len(flows)
    # the same bytes Ryu's ONF bundle classes make
    for add, inner in zip(adds, flows):
        msg = parser.ONFBundleAddMsg(datapath, 7, ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED,
                                     _Raw(inner), [])
        msg.set_xid(int.from_bytes(inner[4:8], "big"))
        msg.serialize()
        assert add == bytes(msg.buf)
    for data, kind in ((open_, ofp.ONF_BCT_OPEN_REQUEST), (commit, ofp.ONF_BCT_COMMIT_REQUEST)):
        msg = parser.ONFBundleCtrlMsg(datapath, 7, kind, ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED,
                                      [])
        msg.set_xid(int.from_bytes(data[4:8], "big"))
        msg.serialize()
        assert data == bytes(msg.buf)


class _Raw:
    """A message Ryu's bundle class can embed: already serialized."""
    def __init__(self, data):
        self.buf, self.xid = bytearray(data), int.from_bytes(data[4:8], "big")

    def set_xid(self, xid):
        self.xid = xid

    def serialize(self):
        pass

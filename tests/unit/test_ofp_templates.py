"""Flow-mods from templates are byte for byte what Ryu serializes."""
import socket

from hypothesis import given, settings
from hypothesis import strategies as st

from ipop_ryu.core import pipeline
from ipop_ryu.core.intents import Output, PacketOut
from ipop_ryu.ofp import ryu13

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


@settings(max_examples=300, deadline=None)
@given(ips, macs, st.integers(0, 65535))
def test_per_address_flows(ip, mac, timeout):
    same(pipeline.install_arp_responder(ip, mac, timeout) + pipeline.delete_arp_responder(ip)
         + pipeline.delete_learned_mac(mac)
         + [pipeline.install_relay_reply_punt(ip, mac, timeout),
            pipeline.delete_relay_reply_punt(ip)])


def test_pipeline_flows_and_the_ones_ryu_keeps():
    same(pipeline.base_flows(100) + pipeline.flood_flows([1, 2, 3], [10, 11])
         + [pipeline.classify_overlay_port(10), pipeline.delete_overlay_port(10)]
         + pipeline.install_port_punt(3, 100)[1:] + pipeline.delete_all_ours())


def test_templates_are_used_and_outputs_do_not_share_buffers():
    a, b = (by_template(pipeline.install_arp_responder(ip, "02:00:00:00:00:01", 9)[0])
            for ip in ("10.0.0.1", "10.0.0.2"))
    assert a != b and a.replace(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) == b
    shapes = [v for v in ryu13.TEMPLATES._cache.values() if v is not None]
    assert shapes, "responders are built from a template"


def test_long_runs_of_flow_mods_go_in_a_bundle_in_order():
    from ryu.ofproto import ofproto_v1_3 as ofp
    from ryu.ofproto import ofproto_v1_3_parser as parser
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

"""The Ryu translation serialises every intent the core produces (no switch needed)."""
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from ipop_ryu.core import pipeline
from ipop_ryu.core.intents import CONTROLLER, TABLE, Output, PacketOut
from ipop_ryu.ofp.ryu13 import to_message

from .helpers import who_has


class FakeDatapath:
    ofproto, ofproto_parser = ofp, parser
    id = 1

    def set_xid(self, msg):
        msg.xid = 1


def serialise(intent):
    msg = to_message(FakeDatapath(), intent)
    msg.serialize()
    return msg


def test_all_flows_serialise():
    intents = (pipeline.delete_all_ours() + pipeline.base_flows()
               + pipeline.flood_flows([1, 2], [10])
               + [pipeline.classify_overlay_port(10), pipeline.delete_overlay_port(10)]
               + pipeline.install_arp_responder("10.0.3.7", "02:00:0a:00:03:07", 30)
               + pipeline.delete_arp_responder("10.0.3.7"))
    for intent in intents:
        assert len(serialise(intent).buf) > 0


def test_reserved_ports_and_packet_out():
    msg = serialise(PacketOut(who_has("10.0.3.3", "10.0.3.7"), (Output(TABLE),)))
    assert msg.in_port == ofp.OFPP_CONTROLLER
    assert msg.actions[0].port == ofp.OFPP_TABLE
    flow = next(f for f in pipeline.base_flows() if f.match.get("in_port") == CONTROLLER)
    assert serialise(flow).match["in_port"] == ofp.OFPP_CONTROLLER


def test_delete_uses_cookie_mask():
    msg = serialise(pipeline.delete_all_ours()[0])
    assert msg.command == ofp.OFPFC_DELETE and msg.table_id == ofp.OFPTT_ALL
    assert msg.cookie_mask == pipeline.COOKIE_TAG_MASK

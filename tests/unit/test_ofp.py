"""The Ryu translation serialises every intent the core produces (no switch needed)."""
from ipop_ryu.compat.framework import ofproto_v1_3 as ofp
from ipop_ryu.compat.framework import ofproto_v1_3_parser as parser

from ipop_ryu.core import pipeline
from ipop_ryu.core.intents import CONTROLLER, TABLE, Output, PacketOut
from ipop_ryu.ofp.ryu13 import port_is_down, to_message, to_wire

from .helpers import who_has


class FakeDatapath:
    ofproto, ofproto_parser = ofp, parser
    id = 1

    xid = 0

    def set_xid(self, msg):
        self.xid += 1
        msg.set_xid(self.xid)


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


def test_packed_packet_outs_are_byte_for_byte_what_ryu_serializes():
    frame = who_has("10.0.3.3", "10.0.3.7")
    for intent in (PacketOut(frame, (Output(TABLE),)), PacketOut(frame, (Output(3),), in_port=2),
                   PacketOut(frame, tuple(Output(p) for p in (1, 2, 5, 0xFFFFFFFB)))):
        fast, slow = FakeDatapath(), FakeDatapath()
        fast.xid = slow.xid = 41
        msg = to_message(slow, intent)
        slow.set_xid(msg)
        msg.serialize()
        assert to_wire(fast, intent) == [bytes(msg.buf)] and fast.xid == slow.xid == 42


def test_other_intents_go_through_ryu():
    dp = FakeDatapath()
    bufs = to_wire(dp, pipeline.install_arp_responder("10.0.3.7", "02:00:0a:00:03:07", 30)[0])
    assert len(bufs) == 1 and bufs[0][1] == ofp.OFPT_FLOW_MOD and dp.xid == 1


def test_delete_by_out_port():
    """The delete of what was learned behind a port names the port; every other delete
    takes any port."""
    msg = serialise(pipeline.delete_learned_to_port(7))
    assert msg.command == ofp.OFPFC_DELETE and msg.table_id == ofp.OFPTT_ALL
    assert msg.out_port == 7 and msg.cookie == pipeline.cookie("learned_mac")
    assert msg.cookie_mask == pipeline.PURPOSE_MASK
    assert serialise(pipeline.delete_overlay_port(7)).out_port == ofp.OFPP_ANY


def test_a_port_is_down_when_its_link_is_or_it_is_turned_down():
    def port(state=0, config=0):
        return parser.OFPPort(port_no=3, hw_addr="02:00:00:00:00:03", name=b"h3", config=config,
                              state=state, curr=0, advertised=0, supported=0, peer=0,
                              curr_speed=0, max_speed=0)
    assert not port_is_down(port(state=ofp.OFPPS_LIVE))
    assert port_is_down(port(state=ofp.OFPPS_LINK_DOWN))
    assert port_is_down(port(config=ofp.OFPPC_PORT_DOWN))

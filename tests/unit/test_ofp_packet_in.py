"""The lean packet-in parser agrees with Ryu's on every field it reads."""
import struct

import pytest

from ipop_ryu.compat.framework import ofp_event, ofproto_protocol
from ipop_ryu.compat.framework import ofproto_v1_3 as ofp
from ipop_ryu.compat.framework import ofproto_v1_3_parser as parser
from ipop_ryu.ofp import packet_in

DATAPATH = ofproto_protocol.ProtocolDesc(ofp.OFP_VERSION)


def packet_in_bytes(match, frame, total_len=None, reason=ofp.OFPR_ACTION, table_id=6,
                    cookie=0x4950000900000000):
    """An OFPT_PACKET_IN as OVS sends it: match padded to 8 bytes, 2 pad bytes, the frame."""
    buf = bytearray()
    match.serialize(buf, 0)
    body = struct.pack("!IHBBQ", ofp.OFP_NO_BUFFER, len(frame) if total_len is None
                       else total_len, reason, table_id, cookie) + bytes(buf) + bytes(2) + frame
    return struct.pack("!BBHI", ofp.OFP_VERSION, ofp.OFPT_PACKET_IN, 8 + len(body), 7) + body


MATCHES = [parser.OFPMatch(in_port=3),
           parser.OFPMatch(in_port=65000, metadata=(1, 0xFF)),
           parser.OFPMatch(metadata=2, in_port=7, tunnel_id=5),
           parser.OFPMatch(in_port=7, metadata=(0x101, 0x1FF)),         # masked: Ryu's
           parser.OFPMatch(eth_type=0x0806)]        # no in_port: falls back to Ryu's


@pytest.mark.parametrize("match", MATCHES)
@pytest.mark.parametrize("frame", [bytes(range(42)), bytes(60), b"\x01" * 1500])
def test_lean_parse_matches_ryu(match, frame):
    data = packet_in_bytes(match, frame)
    ryu = parser.OFPPacketIn.parser(DATAPATH, ofp.OFP_VERSION, ofp.OFPT_PACKET_IN, len(data),
                                    7, data)
    lean = packet_in.OFPPacketIn.parser(DATAPATH, ofp.OFP_VERSION, ofp.OFPT_PACKET_IN,
                                        len(data), 7, data)
    for name in ("buffer_id", "total_len", "reason", "table_id", "cookie", "xid", "msg_len"):
        assert getattr(lean, name) == getattr(ryu, name), name
    assert bytes(lean.data) == bytes(ryu.data) == frame
    assert lean.match.get("in_port") == ryu.match.get("in_port")
    assert lean.match.get("metadata", 0) == ryu.match.get("metadata", 0)
    assert dict(lean.match.items()) == dict(ryu.match.items())
    assert ("metadata" in lean.match) == ("metadata" in ryu.match)
    assert lean.match.length == ryu.match.length


def test_a_truncated_frame_keeps_what_came():
    data = packet_in_bytes(parser.OFPMatch(in_port=1), bytes(range(64)), total_len=1500)
    lean = packet_in.OFPPacketIn.parser(DATAPATH, ofp.OFP_VERSION, ofp.OFPT_PACKET_IN,
                                        len(data), 7, data)
    assert bytes(lean.data) == bytes(range(64)) and lean.total_len == 1500


def test_install_routes_ryu_packet_ins_to_the_lean_parser():
    packet_in.install()
    data = packet_in_bytes(parser.OFPMatch(in_port=2), bytes(42))
    msg = parser.msg_parser(DATAPATH, ofp.OFP_VERSION, ofp.OFPT_PACKET_IN, len(data), 7, data)
    assert isinstance(msg, packet_in.OFPPacketIn)
    assert isinstance(ofp_event.ofp_msg_to_ev(msg), ofp_event.EventOFPPacketIn)
    assert msg.match["in_port"] == 2

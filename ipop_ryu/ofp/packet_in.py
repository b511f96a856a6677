"""A lean OFPT_PACKET_IN parser for Ryu: the ARP punt path reads only in_port and the frame.

Ryu parses every OXM field of a packet-in's match into an OFPMatch (25 us warm here, and
about 190 us for the first packet after the process idled 150 ms, which is what a cold ARP
resolution meets twice). This parser unpacks the fixed header, finds in_port in the match
and slices the frame (about 3 us); the full OFPMatch is built only if something asks for
another field. The message is still an `OFPPacketIn` (a subclass of Ryu's, same name), so
Ryu delivers it as EventOFPPacketIn to every app, ours or not.
"""
import struct

from ipop_ryu.compat.framework import ofproto_v1_3 as ofp
from ipop_ryu.compat.framework import ofproto_v1_3_parser as parser

_FIXED = struct.Struct("!IHBBQ")              # buffer_id, total_len, reason, table_id, cookie
_MATCH_HEADER = struct.Struct("!HH")          # ofp_match type, length
_OXM_HEADER = struct.Struct("!HBB")           # oxm class, field << 1 | hasmask, length
MATCH_OFFSET = ofp.OFP_PACKET_IN_SIZE - ofp.OFP_MATCH_SIZE     # 24
# the fields read without Ryu: OXM header (unmasked) -> its value's format
FAST_FIELDS = {"in_port": ((ofp.OFPXMC_OPENFLOW_BASIC, ofp.OFPXMT_OFB_IN_PORT << 1, 4),
                           struct.Struct("!I")),
               "metadata": ((ofp.OFPXMC_OPENFLOW_BASIC, ofp.OFPXMT_OFB_METADATA << 1, 8),
                            struct.Struct("!Q"))}


class LazyMatch:
    """The packet-in's match: in_port and metadata read straight from their OXM, the rest
    parsed by Ryu's OFPMatch on first use."""
    __slots__ = ("_buf", "_full")

    def __init__(self, buf):
        self._buf, self._full = buf, None

    def _parsed(self):
        if self._full is None:
            self._full = parser.OFPMatch.parser(self._buf, MATCH_OFFSET)
        return self._full

    def _fast(self, oxm, value):
        """The field's value, or None when it is absent (or masked: Ryu's then)."""
        buf = self._buf
        _, length = _MATCH_HEADER.unpack_from(buf, MATCH_OFFSET)
        offset, end = MATCH_OFFSET + 4, MATCH_OFFSET + length
        while offset + 4 <= end:
            header = _OXM_HEADER.unpack_from(buf, offset)
            if header == oxm:
                return value.unpack_from(buf, offset + 4)[0]
            offset += 4 + header[2]
        return None

    def __getitem__(self, key):
        fast = FAST_FIELDS.get(key)
        if fast is not None:
            found = self._fast(*fast)
            if found is not None:
                return found
        return self._parsed()[key]

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key):
        return key in self._parsed()

    def __getattr__(self, name):          # length, fields, to_jsondict, ... as OFPMatch has
        return getattr(self._parsed(), name)

    def __repr__(self):
        return repr(self._parsed())


class OFPPacketIn(parser.OFPPacketIn):
    """Ryu's OFPPacketIn with the lean parser (the name maps it to EventOFPPacketIn)."""

    @classmethod
    def parser(cls, datapath, version, msg_type, msg_len, xid, buf):
        msg = cls(datapath)
        msg.set_headers(version, msg_type, msg_len, xid)
        msg.set_buf(buf)
        (msg.buffer_id, msg.total_len, msg.reason, msg.table_id,
         msg.cookie) = _FIXED.unpack_from(buf, ofp.OFP_HEADER_SIZE)
        _, match_length = _MATCH_HEADER.unpack_from(buf, MATCH_OFFSET)
        msg.match = LazyMatch(buf)
        start = MATCH_OFFSET + (match_length + 7) // 8 * 8 + 2      # match padded, 2 pad bytes
        msg.data = buf[start:start + msg.total_len]     # drops the 8-byte alignment padding
        return msg


def install():
    """Make Ryu parse OpenFlow 1.3 packet-ins with OFPPacketIn above (idempotent)."""
    parser._MSG_PARSERS[ofp.OFPT_PACKET_IN] = OFPPacketIn.parser

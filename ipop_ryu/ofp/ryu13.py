"""Translate core intents into Ryu OpenFlow 1.3 messages for one datapath."""
import struct

from ipop_ryu.compat.framework import ofproto_v1_3 as ofp
from ipop_ryu.compat.framework import ofproto_v1_3_parser as parser
from ipop_ryu.compat.framework import oxm_fields, type_desc

from ipop_ryu.core.intents import (ALL, CONTROLLER, IN_PORT, TABLE, DeleteFlows, DeleteMeter,
                                   Flow, Learn, Meter, Move, Output, PacketOut,
                                   RequestAggregateStats, RequestFlowStats, Resubmit, SetField)
from ipop_ryu.ofp.templates import XID_OFFSET, FlowModTemplates


class _EricssonOxm(oxm_fields._OxmClass):
    """OXM class 0x1000 (OVS's ERICOXM_OF_), a plain 32-bit OXM header like NXM's."""
    _class = 0x1000


def _register_nd_fields():
    """OVS's ND flags word and option type (ERICOXM_OF_ICMPV6_ND_RESERVED 1 and
    ERICOXM_OF_ICMPV6_ND_OPTIONS_TYPE 2, OVS >= 2.11), which Ryu 4.34 does not know: a
    proxy-ND responder sets both to turn an NS into an NA."""
    known = {field.name for field in ofp.oxm_types}
    extra = [_EricssonOxm("nd_reserved", 1, type_desc.Int4),
             _EricssonOxm("nd_options_type", 2, type_desc.Int1)]
    extra = [field for field in extra if field.name not in known]
    if extra:
        ofp.oxm_types.extend(extra)
        oxm_fields.generate(ofp.__name__)


_register_nd_fields()

RESERVED_PORTS = {IN_PORT: ofp.OFPP_IN_PORT, CONTROLLER: ofp.OFPP_CONTROLLER,
                  TABLE: ofp.OFPP_TABLE, ALL: ofp.OFPP_ALL}


def port_number(port):
    return RESERVED_PORTS[port] if isinstance(port, str) else port


def _action(action):
    if isinstance(action, Output):
        return parser.OFPActionOutput(port_number(action.port), ofp.OFPCML_NO_BUFFER)
    if isinstance(action, SetField):
        return parser.OFPActionSetField(**{action.field: action.value})
    if isinstance(action, Move):
        return parser.NXActionRegMove(src_field=action.src, dst_field=action.dst,
                                      n_bits=action.n_bits)
    if isinstance(action, Learn):
        # learned flow: eth_dst == this frame's eth_src -> output to this frame's in_port
        return parser.NXActionLearn(
            table_id=action.table, priority=action.priority, cookie=action.cookie,
            idle_timeout=action.idle_timeout,
            specs=[parser.NXFlowSpecMatch(src=("eth_src_nxm", 0), dst=("eth_dst_nxm", 0),
                                          n_bits=48),
                   parser.NXFlowSpecOutput(src=("in_port_nxm", 0), dst="", n_bits=16)])
    if isinstance(action, Resubmit):    # in_port unchanged: its default is OFPP_IN_PORT
        return parser.NXActionResubmitTable(table_id=action.table)
    raise TypeError(f"no OpenFlow action for {action!r}")


def _match(fields: dict):
    return parser.OFPMatch(**{name: port_number(value) if name == "in_port" else value
                              for name, value in fields.items()})


def to_messages(datapath, intent):
    """The OpenFlow messages for one intent (a meter takes two: see below)."""
    if isinstance(intent, Meter):
        # ADD fails harmlessly when the meter exists (controller restart); MODIFY then sets
        # the rate either way. Deleting first would delete the flows that use the meter.
        bands = [parser.OFPMeterBandDrop(rate=intent.rate, burst_size=intent.burst)]
        flags = ofp.OFPMF_PKTPS | ofp.OFPMF_BURST
        return [parser.OFPMeterMod(datapath, command, flags, intent.meter_id, bands)
                for command in (ofp.OFPMC_ADD, ofp.OFPMC_MODIFY)]
    if isinstance(intent, DeleteMeter):
        return [parser.OFPMeterMod(datapath, ofp.OFPMC_DELETE, 0, intent.meter_id, [])]
    return [to_message(datapath, intent)]


def to_message(datapath, intent):
    if isinstance(intent, Flow):
        instructions = []
        if intent.meter is not None:
            instructions.append(parser.OFPInstructionMeter(intent.meter, ofp.OFPIT_METER))
        if intent.actions:
            instructions.append(parser.OFPInstructionActions(
                ofp.OFPIT_APPLY_ACTIONS, [_action(a) for a in intent.actions]))
        if intent.metadata is not None:
            instructions.append(parser.OFPInstructionWriteMetadata(*intent.metadata))
        if intent.goto is not None:
            instructions.append(parser.OFPInstructionGotoTable(intent.goto))
        return parser.OFPFlowMod(
            datapath, cookie=intent.cookie, table_id=intent.table, command=ofp.OFPFC_ADD,
            idle_timeout=intent.idle_timeout, hard_timeout=intent.hard_timeout,
            priority=intent.priority, buffer_id=ofp.OFP_NO_BUFFER, match=_match(intent.match),
            instructions=instructions)
    if isinstance(intent, DeleteFlows):
        return parser.OFPFlowMod(
            datapath, cookie=intent.cookie, cookie_mask=intent.cookie_mask,
            table_id=ofp.OFPTT_ALL if intent.table is None else intent.table,
            command=ofp.OFPFC_DELETE, out_group=ofp.OFPG_ANY,
            out_port=ofp.OFPP_ANY if intent.out_port is None else port_number(intent.out_port),
            match=_match(dict(intent.match_items)))
    if isinstance(intent, PacketOut):
        return parser.OFPPacketOut(
            datapath, buffer_id=ofp.OFP_NO_BUFFER, in_port=port_number(intent.in_port),
            actions=[_action(a) for a in intent.actions], data=intent.data)
    if isinstance(intent, RequestFlowStats):
        return parser.OFPFlowStatsRequest(
            datapath, table_id=ofp.OFPTT_ALL if intent.table is None else intent.table,
            out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY, cookie=intent.cookie,
            cookie_mask=intent.cookie_mask, match=parser.OFPMatch())
    if isinstance(intent, RequestAggregateStats):
        return parser.OFPAggregateStatsRequest(
            datapath, 0, ofp.OFPTT_ALL if intent.table is None else intent.table,
            ofp.OFPP_ANY, ofp.OFPG_ANY, intent.cookie, intent.cookie_mask, parser.OFPMatch())
    raise TypeError(f"no OpenFlow message for {intent!r}")


# Packet-outs that only output are the per-packet work (floods, replays, answers): packed
# here directly, they cost a few microseconds instead of Ryu's objects and serialize().
_HEADER_AND_PACKET_OUT = struct.Struct("!BBHIIIH6x")   # ofp_header + ofp_packet_out
_OUTPUT_ACTION = struct.Struct("!HHIH6x")              # ofp_action_output
_XID = struct.Struct("!I")


def next_xid(datapath):
    """What Datapath.set_xid does, for messages packed without a Ryu object."""
    datapath.xid = (datapath.xid + 1) & ofp.MAX_XID
    return datapath.xid


def pack_packet_out(xid: int, intent: PacketOut) -> bytes:
    actions = b"".join(_OUTPUT_ACTION.pack(ofp.OFPAT_OUTPUT, _OUTPUT_ACTION.size,
                                           port_number(a.port), ofp.OFPCML_NO_BUFFER)
                       for a in intent.actions)
    length = _HEADER_AND_PACKET_OUT.size + len(actions) + len(intent.data)
    return _HEADER_AND_PACKET_OUT.pack(
        ofp.OFP_VERSION, ofp.OFPT_PACKET_OUT, length, xid, ofp.OFP_NO_BUFFER,
        port_number(intent.in_port), len(actions)) + actions + intent.data


def _serialize(intent) -> bytes:
    """Ryu's bytes for a one-message intent, with xid 0 (what templates start from)."""
    msg = to_message(_TEMPLATE_DATAPATH, intent)
    msg.set_xid(0)
    msg.serialize()
    return bytes(msg.buf)


class _TemplateDatapath:
    ofproto, ofproto_parser = ofp, parser


_TEMPLATE_DATAPATH = _TemplateDatapath()
TEMPLATES = FlowModTemplates(_serialize)


def to_wire(datapath, intent) -> list:
    """The serialized OpenFlow messages (bytes) for one intent."""
    kind = type(intent)
    if kind is PacketOut and all(type(a) is Output for a in intent.actions):
        return [pack_packet_out(next_xid(datapath), intent)]
    if kind is Flow or kind is DeleteFlows:
        data = TEMPLATES.build(intent)      # None: a shape left to Ryu, below
        if data is not None:
            _XID.pack_into(data, XID_OFFSET, next_xid(datapath))
            return [bytes(data)]
    out = []
    for msg in to_messages(datapath, intent):
        datapath.set_xid(msg)
        msg.serialize()
        out.append(msg.buf)
    return out


# Bulk flow-mods go in OpenFlow bundles (the ONF extension for 1.3 that OVS implements): OVS
# then publishes one new flow-table version per bundle instead of one per flow-mod, which is
# what bounded learning (measured: ovs-vswitchd spent ~180 us per lone flow-mod, ~20 us in a
# bundle). Only runs of at least BUNDLE_MIN consecutive flow-mods are wrapped, so a lone
# flow-mod on the cold path costs nothing more, and the order of all messages is kept.
BUNDLE_MIN = 8
_BUNDLE_CTRL = struct.Struct("!BBHIIIIHH")     # header, experimenter, type, id, type, flags
_BUNDLE_ADD = struct.Struct("!BBHIIII2xH")     # header, experimenter, type, id, pad, flags
_ONF, _CONTROL, _ADD = 0x4F4E4600, 2300, 2301
_OPEN, _COMMIT = 0, 4
_BUNDLE_FLAGS = 3                              # ONF_BF_ATOMIC | ONF_BF_ORDERED


def bundled(datapath, messages: list, bundle_id: int) -> list:
    """messages (serialized, in order) with each long run of flow-mods inside a bundle."""
    out, run = [], []

    def close_run():
        if len(run) < BUNDLE_MIN:
            out.extend(run)
        else:
            out.append(_bundle_ctrl(next_xid(datapath), bundle_id, _OPEN))
            for msg in run:
                xid = msg[4:8]        # the inner message keeps its xid, the outer repeats it
                out.append(_BUNDLE_ADD.pack(ofp.OFP_VERSION, ofp.OFPT_EXPERIMENTER,
                                            _BUNDLE_ADD.size + len(msg),
                                            int.from_bytes(xid, "big"), _ONF, _ADD,
                                            bundle_id, _BUNDLE_FLAGS) + msg)
            out.append(_bundle_ctrl(next_xid(datapath), bundle_id, _COMMIT))
        run.clear()

    for msg in messages:
        if msg[1] == ofp.OFPT_FLOW_MOD:
            run.append(msg)
        else:
            close_run()
            out.append(msg)
    close_run()
    return out


def _bundle_ctrl(xid: int, bundle_id: int, kind: int) -> bytes:
    return _BUNDLE_CTRL.pack(ofp.OFP_VERSION, ofp.OFPT_EXPERIMENTER, _BUNDLE_CTRL.size, xid,
                             _ONF, _CONTROL, bundle_id, kind, _BUNDLE_FLAGS)


def port_is_down(desc):
    """A port (OFPPort) that can carry no frame: its link down (a vanished veth) or turned
    down by configuration."""
    return bool(desc.state & ofp.OFPPS_LINK_DOWN or desc.config & ofp.OFPPC_PORT_DOWN)


def more_replies_follow(msg):
    """True while a multipart reply has more parts to come."""
    return bool(msg.flags & ofp.OFPMPF_REPLY_MORE)

"""A simulated OpenFlow 1.3 (+ Nicira) flow table: run a frame through the core's flows and see
where it comes out and how it was rewritten (as FAUCET's clib/fakeoftable.py does).

Models what the pipeline uses: priority lookup per table (a tie is an error: an ambiguous
pipeline), exact and (value, mask) matches, apply-actions in order (Output with OVS's rule that
a frame never leaves by its in_port unless sent to IN_PORT, SetField, Move, Learn, Resubmit),
meters (recorded, never dropping), write-metadata and goto-table; MACs match under masks;
each flow's packet count (what flow stats report). A flow replaced or deleted and added again
starts from 0, as in OVS.
OVS's prerequisite for writing nd_tll is enforced: the writing flow's own match must say
icmpv6_type=136 (a set_field to 136 earlier in the same flow does not count), and an ND field
is matched or written only by a flow whose match names the ND type. Not modelled: timeouts,
byte counts, groups, vlan, buffering.
"""
import socket

from ipop_ryu.core import arp, nd
from ipop_ryu.core.intents import (CONTROLLER, IN_PORT, TABLE, DeleteFlows, Flow, Learn, Move,
                                   Output, Resubmit, SetField, flow)

from .fakeswitch import FakeSwitch


ND_FIELDS = ("ipv6_nd_target", "ipv6_nd_sll", "ipv6_nd_tll", "nd_reserved", "nd_options_type")


def frame(data: bytes) -> dict:
    """An Ethernet/ARP, Ethernet/IPv6 ND or Ethernet/IPv4 UDP (DHCP) frame as the fields the
    pipeline matches on."""
    parsed = arp.parse(data)
    if parsed is None:
        found = nd.parse(data)
        if found is None:
            return udp_fields(data)
        return nd_fields(found)
    return {"eth_src": parsed.eth_src, "eth_dst": parsed.eth_dst, "eth_type": arp.ETH_TYPE_ARP,
            "arp_op": parsed.op, "arp_sha": parsed.sha, "arp_spa": parsed.spa,
            "arp_tha": parsed.tha, "arp_tpa": parsed.tpa}


def udp_fields(data: bytes) -> dict:
    """An IPv4 UDP frame (DHCP, say) as OVS extracts it."""
    if len(data) < 42 or data[12:14] != b"\x08\x00" or data[23] != 17:
        raise ValueError("only ARP, ND and IPv4 UDP frames are modelled")
    start = 14 + (data[14] & 0x0F) * 4
    return {"eth_src": arp.mac_to_str(data[6:12]), "eth_dst": arp.mac_to_str(data[:6]),
            "eth_type": 0x0800, "ipv4_src": socket.inet_ntoa(data[26:30]),
            "ipv4_dst": socket.inet_ntoa(data[30:34]), "ip_proto": 17,
            "udp_src": int.from_bytes(data[start:start + 2], "big"),
            "udp_dst": int.from_bytes(data[start + 2:start + 4], "big")}


def icmpv6(src_mac: str, dst_mac: str, src: str, dst: str, kind: int) -> dict:
    """An ICMPv6 message other than NS/NA (RS, RA) as the fields the pipeline matches on."""
    return {"eth_src": src_mac, "eth_dst": dst_mac, "eth_type": nd.ETH_TYPE_IPV6,
            "ip_proto": nd.ICMPV6, "ipv6_src": src, "ipv6_dst": dst, "icmpv6_type": kind}


def nd_fields(found: nd.NdFrame) -> dict:
    """As OVS extracts an NS or NA: an absent link-layer option reads as all zeros; the
    option's type and the flags word are the Nicira nd_options_type and nd_reserved."""
    lladdr = found.lladdr or "00:00:00:00:00:00"
    return {"eth_src": found.eth_src, "eth_dst": found.eth_dst, "eth_type": nd.ETH_TYPE_IPV6,
            "ip_proto": nd.ICMPV6, "ipv6_src": found.src, "ipv6_dst": found.dst,
            "icmpv6_type": found.type, "ipv6_nd_target": found.target,
            "ipv6_nd_sll": lladdr if found.type == nd.NS else "00:00:00:00:00:00",
            "ipv6_nd_tll": lladdr if found.type == nd.NA else "00:00:00:00:00:00",
            "nd_reserved": found.flags << 24,
            "nd_options_type": (nd.OPT_SLLA if found.type == nd.NS else nd.OPT_TLLA)
            if found.lladdr else 0}


def to_nd_frame(packet: dict) -> nd.NdFrame:
    """The NdFrame a packet (as it left the fake table) would be on the wire."""
    kind, option = packet["icmpv6_type"], packet["nd_options_type"]
    lladdr = {nd.OPT_SLLA: packet["ipv6_nd_sll"], nd.OPT_TLLA: packet["ipv6_nd_tll"]}.get(option)
    if option and (option == nd.OPT_SLLA) != (kind == nd.NS):
        raise AssertionError(f"an ICMPv6 type {kind} with link-layer option {option}")
    return nd.NdFrame(packet["eth_src"], packet["eth_dst"], packet["ipv6_src"],
                      packet["ipv6_dst"], kind, packet["ipv6_nd_target"], lladdr,
                      packet["nd_reserved"] >> 24)


def ethernet(src: str, dst: str, eth_type: int = 0x0800) -> dict:
    return {"eth_src": src, "eth_dst": dst, "eth_type": eth_type}


class FakeOFTable(FakeSwitch):
    def __init__(self):
        super().__init__()
        self.to_controller = []          # (meter, packet) copies sent to the controller
        self.punted_metadata = []        # the metadata each copy carried (packet-in match)
        self.packets = {}                # (table, priority, match) -> packets matched

    def apply(self, intents):
        intents = list(intents)
        super().apply(intents)
        for intent in intents:
            if isinstance(intent, Flow):            # added or replaced: counts from 0
                self.packets.pop(_key(intent), None)

    def packet_count(self, flow) -> int:
        return self.packets.get(_key(flow), 0)

    def tables(self):
        by_table = {}
        for f in self.flows.values():
            by_table.setdefault(f.table, []).append(f)
        return by_table

    def lookup(self, table: int, packet: dict):
        hits = [f for f in self.flows.values() if f.table == table and _matches(f, packet)]
        if not hits:
            return None
        best = max(f.priority for f in hits)
        top = [f for f in hits if f.priority == best]
        assert len(top) == 1, f"ambiguous pipeline in table {table}: {top}"
        return top[0]

    def process(self, in_port, packet: dict):
        """[(out_port, packet as it left)] for a frame entering at in_port."""
        packet = dict(packet, in_port=in_port, metadata=0)
        out = []
        self._run(0, packet, out, depth=0)
        return out

    def packet_out(self, packet_out) -> list:
        """Carry out a PacketOut intent: its own outputs, or the pipeline for Output(TABLE)."""
        out = []
        for action in packet_out.actions:
            if action.port == TABLE:
                out += self.process(CONTROLLER, frame(packet_out.data))
            else:
                out.append((action.port, frame(packet_out.data)))
        return out

    def _run(self, table, packet, out, depth):
        assert depth < 64, "resubmit or goto loop"
        rule = self.lookup(table, packet)
        if rule is None:
            return                                   # a table miss drops, as OVS 1.3 does
        self.packets[_key(rule)] = self.packets.get(_key(rule), 0) + 1
        if rule.meter is not None:
            packet["_meter"] = rule.meter
        for action in rule.actions:
            self._act(rule, action, packet, out, depth)
        if rule.metadata is not None:
            value, mask = rule.metadata
            packet["metadata"] = packet["metadata"] & ~mask | value & mask
        if rule.goto is not None:
            self._run(rule.goto, packet, out, depth + 1)

    def _act(self, rule, action, packet, out, depth):
        kind = type(action)
        if kind is Output:
            port = action.port
            if port == IN_PORT:
                out.append((packet["in_port"], _clean(packet)))
            elif port == CONTROLLER:
                self.to_controller.append((packet.get("_meter"), _clean(packet)))
                self.punted_metadata.append(packet["metadata"])
                out.append((CONTROLLER, _clean(packet)))
            elif port != packet["in_port"]:           # OVS skips output to the input port
                out.append((port, _clean(packet)))
        elif kind is SetField:
            _check_nd_write(rule, action.field)
            packet[action.field] = action.value
        elif kind is Move:
            _check_nd_write(rule, action.dst)
            packet[action.dst] = packet[action.src]
        elif kind is Learn:
            learned = flow(action.table, action.priority, action.cookie,
                           {"eth_dst": packet["eth_src"]}, [Output(packet["in_port"])],
                           idle_timeout=action.idle_timeout)
            self.apply([learned])
        elif kind is Resubmit:
            self._run(action.table, packet, out, depth + 1)
        else:
            raise NotImplementedError(f"action {action!r}")


def _check_nd_write(rule: Flow, field: str):
    """OVS refuses the flow otherwise (prerequisites are checked against the match only)."""
    kind = rule.match.get("icmpv6_type")
    if field == "ipv6_nd_tll":
        assert kind == nd.NA, f"OVS refuses {field} without icmpv6_type=136 in the match: {rule}"
    elif field in ND_FIELDS:
        assert kind in (nd.NS, nd.NA), f"OVS refuses {field} without an ND type: {rule}"


def _int(value):
    return int(value.replace(":", ""), 16) if isinstance(value, str) else value


def _matches(rule: Flow, packet: dict) -> bool:
    for name, want in rule.match_items:
        have = packet.get(name)
        if name in ND_FIELDS:
            assert rule.match.get("icmpv6_type") in (nd.NS, nd.NA), \
                f"OVS refuses a match on {name} without an ND type: {rule}"
        if isinstance(want, tuple):
            value, mask = map(_int, want)
            if have is None or _int(have) & mask != value & mask:
                return False
        elif have != want:
            return False
    return True


def _key(rule: Flow):
    return (rule.table, rule.priority, rule.match_items)


def _clean(packet: dict) -> dict:
    return {k: v for k, v in packet.items() if k not in ("in_port", "metadata", "_meter")}


__all__ = ["FakeOFTable", "frame", "ethernet", "icmpv6", "nd_fields", "to_nd_frame",
           "udp_fields", "DeleteFlows"]

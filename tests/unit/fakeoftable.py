"""A simulated OpenFlow 1.3 (+ Nicira) flow table: run a frame through the core's flows and see
where it comes out and how it was rewritten (as FAUCET's clib/fakeoftable.py does).

Models what the pipeline uses: priority lookup per table (a tie is an error: an ambiguous
pipeline), exact and (value, mask) matches, apply-actions in order (Output with OVS's rule that
a frame never leaves by its in_port unless sent to IN_PORT, SetField, Move, Learn, Resubmit),
meters (recorded, never dropping), write-metadata and goto-table. Not modelled: timeouts,
counters, groups, vlan, buffering.
"""
from ipop_ryu.core import arp
from ipop_ryu.core.intents import (CONTROLLER, IN_PORT, TABLE, DeleteFlows, Flow, Learn, Move,
                                   Output, Resubmit, SetField, flow)

from .fakeswitch import FakeSwitch


def frame(data: bytes) -> dict:
    """An Ethernet/ARP frame as the fields the pipeline matches on."""
    parsed = arp.parse(data)
    if parsed is None:
        raise ValueError("only ARP frames are modelled")
    return {"eth_src": parsed.eth_src, "eth_dst": parsed.eth_dst, "eth_type": arp.ETH_TYPE_ARP,
            "arp_op": parsed.op, "arp_sha": parsed.sha, "arp_spa": parsed.spa,
            "arp_tha": parsed.tha, "arp_tpa": parsed.tpa}


def ethernet(src: str, dst: str, eth_type: int = 0x0800) -> dict:
    return {"eth_src": src, "eth_dst": dst, "eth_type": eth_type}


class FakeOFTable(FakeSwitch):
    def __init__(self):
        super().__init__()
        self.to_controller = []          # (meter, packet) copies sent to the controller
        self.punted_metadata = []        # the metadata each copy carried (packet-in match)

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
        if rule.meter is not None:
            packet["_meter"] = rule.meter
        for action in rule.actions:
            self._act(action, packet, out, depth)
        if rule.metadata is not None:
            value, mask = rule.metadata
            packet["metadata"] = packet["metadata"] & ~mask | value & mask
        if rule.goto is not None:
            self._run(rule.goto, packet, out, depth + 1)

    def _act(self, action, packet, out, depth):
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
            packet[action.field] = action.value
        elif kind is Move:
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


def _matches(rule: Flow, packet: dict) -> bool:
    for name, want in rule.match_items:
        have = packet.get(name)
        if isinstance(want, tuple):
            value, mask = want
            if have is None or have & mask != value & mask:
                return False
        elif have != want:
            return False
    return True


def _clean(packet: dict) -> dict:
    return {k: v for k, v in packet.items() if k not in ("in_port", "metadata", "_meter")}


__all__ = ["FakeOFTable", "frame", "ethernet", "DeleteFlows"]

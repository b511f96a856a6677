"""What the core asks the outside world to do: plain data, no OpenFlow library.

Matches use Ryu/OXM field names (`eth_type`, `arp_tpa`, `metadata`...), so the translation
in `ipop_ryu.ofp` stays mechanical and `ovs-ofctl dump-flows` reads the same.
"""
from dataclasses import dataclass, field
from typing import Optional, Tuple, Union

# Reserved OpenFlow ports, by name; the translator maps them to numbers.
IN_PORT, CONTROLLER, TABLE, ALL = "in_port", "controller", "table", "all"
Port = Union[int, str]
# OFPP_LOCAL: the bridge's own interface (named like the bridge), as a number because
# packet-ins and port descriptions carry it as one
BRIDGE_LOCAL = 0xFFFFFFFE


@dataclass(frozen=True)
class Output:
    port: Port


@dataclass(frozen=True)
class SetField:
    field: str
    value: object


@dataclass(frozen=True)
class Move:
    """Nicira register move: copy n_bits of src field into dst field (NXActionRegMove)."""
    src: str
    dst: str
    n_bits: int


@dataclass(frozen=True)
class Learn:
    """Nicira learn: from the packet being processed, add a flow to `table` that matches
    eth_dst == this packet's eth_src and outputs to this packet's in_port (MAC learning)."""
    table: int
    priority: int
    cookie: int
    idle_timeout: int


@dataclass(frozen=True)
class Resubmit:
    """Nicira resubmit: run this packet through `table` now, then carry on with this flow's
    remaining actions and instructions (NXActionResubmitTable, in_port unchanged)."""
    table: int


Action = Union[Output, SetField, Move, Learn, Resubmit]


def _frozen(match: dict) -> Tuple:
    return tuple(sorted(match.items()))


@dataclass(frozen=True)
class Flow:
    """Add (or replace) one flow. No actions and no goto means drop."""
    table: int
    priority: int
    cookie: int
    match_items: Tuple = ()
    actions: Tuple[Action, ...] = ()
    goto: Optional[int] = None
    metadata: Optional[Tuple[int, int]] = None      # write_metadata (value, mask)
    meter: Optional[int] = None
    idle_timeout: int = 0
    hard_timeout: int = 0

    @property
    def match(self) -> dict:
        return dict(self.match_items)


def flow(table, priority, cookie, match=None, actions=(), **kw) -> Flow:
    return Flow(table, priority, cookie, _frozen(match or {}), tuple(actions), **kw)


@dataclass(frozen=True)
class DeleteFlows:
    """Delete every flow whose cookie matches under cookie_mask (in all tables by default)
    and whose match includes match_items (OpenFlow non-strict delete); with out_port, only
    those with an output action to that port (learned flows' too: OVS learn writes a
    plain output)."""
    cookie: int
    cookie_mask: int = 0xFFFFFFFFFFFFFFFF
    table: Optional[int] = None
    match_items: Tuple = ()
    out_port: Optional[Port] = None


@dataclass(frozen=True)
class Meter:
    """Add or update a packets-per-second meter that drops above rate (burst in packets)."""
    meter_id: int
    rate: int
    burst: int


@dataclass(frozen=True)
class DeleteMeter:
    meter_id: int


@dataclass(frozen=True)
class RequestFlowStats:
    """Ask the switch for the counters of the flows whose cookie matches under cookie_mask."""
    cookie: int
    cookie_mask: int
    table: Optional[int] = None


@dataclass(frozen=True)
class RequestAggregateStats:
    """Ask the switch how many flows (and packets) match cookie under cookie_mask: one small
    reply however many flows there are (the cheap half of an audit)."""
    cookie: int
    cookie_mask: int
    table: Optional[int] = None


@dataclass(frozen=True)
class PacketOut:
    data: bytes
    actions: Tuple[Action, ...]
    in_port: Port = CONTROLLER


@dataclass(frozen=True)
class WriteFile:
    """Replace the file at path with text, atomically (readers see the old file or the new,
    never a part), making its directory if need be."""
    path: str
    text: str


@dataclass(frozen=True)
class IccSend:
    addr: Tuple[str, int]
    data: bytes
    peer: str = field(default="")

"""Flow-mods from byte templates: Ryu serializes each flow *shape* once, later flows are patched.

This module owns the template cache behind `ryu13.to_wire` for Flow and DeleteFlows intents.
A shape is the intent with its variable parts taken out: the cookie, the timeouts, and every
match or set-field value that is an IPv4 dotted quad, a canonical IPv6 address or a MAC
string. Everything else (table,
priority, goto, metadata, meter, ports, the other actions) is part of the shape. Two ARP
responders differ only in variable parts, so the second costs a bytearray copy and a few
slice assignments instead of Ryu's objects and serialize() (~20x cheaper).

The first intent of a shape is serialized by Ryu with sentinel values; each sentinel must be
found exactly once in the bytes, and the template patched with the intent's own values must
equal Ryu's bytes for that intent. Otherwise (and for Learn actions, unknown actions, odd
values) the shape stays on Ryu's path: `build` returns None and the caller uses Ryu.
"""
import dataclasses
import socket
import struct
from typing import Callable, Dict, List, Optional, Tuple

from ipop_ryu.core.addr import ipv6_packed
from ipop_ryu.core.intents import DeleteFlows, Flow, Move, Output, Resubmit, SetField

# ofp_flow_mod: ofp_header (8 bytes, xid at 4), cookie (8) at 8, cookie_mask (8), table_id,
# command, idle_timeout (2) at 26, hard_timeout (2) at 28. The xid is the caller's to set.
XID_OFFSET = 4
_COOKIE = struct.Struct("!Q")
_TIMEOUTS = struct.Struct("!HH")
_COOKIE_OFFSET, _TIMEOUTS_OFFSET = 8, 26

# Actions whose bytes follow from their fields alone, so they can stay literally in the key.
# Learn flows are few (base flows only) and not worth the risk: Ryu builds them every time.
_FIXED_ACTIONS = frozenset((Output, Move, Resubmit))

MAX_SHAPES = 4096       # past this, new shapes go to Ryu (a bound on memory, never reached)
MAX_SLOTS = 64          # sentinels are numbered within one byte


class _Slot:
    """Stands for a variable value in a shape key; never equal to a real value."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<{self.name}>"


IPV4_SLOT, MAC_SLOT, IPV6_SLOT = _Slot("ipv4"), _Slot("mac"), _Slot("ipv6")
_ODD = _Slot("odd")     # looks like an address but does not parse strictly: Ryu decides

# Two sentinel families (documentation ranges, locally administered MACs): if a shape's fixed
# bytes happen to contain one family's sentinel, the other is tried before giving up.
_SENTINELS = ({4: lambda n: socket.inet_ntoa(bytes((198, 51, 100, 101 + n))),
               6: lambda n: bytes((0x0e, 0x5e, 0x17, 0xc0, 0xde, 0x41 + n)).hex(":"),
               16: lambda n: f"2001:db8:5e17:c0de:e5e1:7c0d:ea5e:{0x4100 + n:x}"},
              {4: lambda n: socket.inet_ntoa(bytes((203, 0, 113, 101 + n))),
               6: lambda n: bytes((0x0a, 0xa1, 0xb2, 0xc3, 0xd4, 0x41 + n)).hex(":"),
               16: lambda n: f"2001:db8:aa1:b2c3:d4e5:f607:1829:{0x3a00 + n:x}"})

_Template = Tuple[bytes, Tuple[int, ...]]       # bytes (xid 0), offset of each slot
_MISSING = object()


def _variable(value, raws: List[bytes]):
    """IPV4_SLOT, IPV6_SLOT or MAC_SLOT (its packed bytes appended to raws) when value is a
    plain IPv4, canonical IPv6 or MAC string; _ODD when it only looks like one; None for
    anything else."""
    if type(value) is not str:
        return None
    if len(value) == 17 and value[2::3] == ":::::":
        try:
            raw = bytes.fromhex(value.replace(":", ""))
        except ValueError:
            return _ODD
        if len(raw) != 6:
            return _ODD
        raws.append(raw)
        return MAC_SLOT
    if value.count(".") == 3:
        try:    # strict: no leading zeros, no prefix length (Ryu reads those its own way)
            raws.append(socket.inet_pton(socket.AF_INET, value))
        except OSError:
            return _ODD
        return IPV4_SLOT
    if ":" in value:
        packed = ipv6_packed(value)
        if packed is None:      # another spelling, a zone: Ryu reads those its own way
            return _ODD
        raws.append(packed)
        return IPV6_SLOT
    return None


def shape(intent) -> Optional[Tuple[tuple, List[bytes]]]:
    """(the shape's key, the packed variable values in slot order), or None if the intent
    cannot be templated."""
    raws: List[bytes] = []
    match = []
    for name, value in intent.match_items:
        slot = _variable(value, raws)
        if slot is None:
            match.append((name, value))
        elif slot is _ODD:
            return None
        else:
            match.append((name, slot))
    if type(intent) is DeleteFlows:
        return (DeleteFlows, intent.cookie_mask, intent.table, intent.out_port,
                tuple(match)), raws
    actions = []
    for action in intent.actions:
        kind = type(action)
        if kind is SetField:
            slot = _variable(action.value, raws)
            if slot is None:
                actions.append(action)
            elif slot is _ODD:
                return None
            else:
                actions.append((action.field, slot))    # a tuple: never equal to an action
        elif kind in _FIXED_ACTIONS:
            actions.append(action)
        else:
            return None
    return (Flow, intent.table, intent.priority, intent.goto, intent.metadata, intent.meter,
            tuple(match), tuple(actions)), raws


class FlowModTemplates:
    def __init__(self, serialize: Callable[[object], bytes]):
        """serialize(intent) -> the bytes Ryu makes for it, with xid 0."""
        self._serialize = serialize
        self._cache: Dict[tuple, Optional[_Template]] = {}
        self.fallbacks = 0      # shapes left to Ryu (for tests and curiosity)

    def build(self, intent) -> Optional[bytearray]:
        """The flow-mod's bytes with xid 0 (a fresh buffer each call), or None: use Ryu."""
        if type(intent) is not Flow and type(intent) is not DeleteFlows:
            return None
        found = shape(intent)
        if found is None:
            return None
        key, raws = found
        try:
            template = self._cache.get(key, _MISSING)
        except TypeError:       # an unhashable value somewhere in the intent
            return None
        if template is _MISSING:
            if len(self._cache) >= MAX_SHAPES:
                return None
            try:    # the real bytes for this intent: the template must reproduce them
                expected = self._serialize(intent)
            except Exception:   # a bad intent, not a bad shape: Ryu's path raises the error
                return None
            template = self._cache[key] = self._make(intent, raws, expected)
            if template is None:
                self.fallbacks += 1
        if template is None:
            return None
        data, offsets = template
        return _patched(data, offsets, intent, raws)

    def _make(self, intent, raws: List[bytes], expected: bytes) -> Optional[_Template]:
        if len(raws) > MAX_SLOTS:
            return None
        for family in _SENTINELS:
            sentinels = [family[len(raw)](n) for n, raw in enumerate(raws)]
            # cookie and timeouts 0 in the probe, so a cookie made from an address (proxy_arp
            # cookies carry the IP) cannot be mistaken for a sentinel
            try:
                data = self._serialize(_with_values(intent, sentinels))
            except Exception:   # any surprise: Ryu's path
                return None
            packed = [_pack(s) for s in sentinels]
            if any(data.count(raw) != 1 for raw in packed):
                continue
            offsets = tuple(data.index(raw) for raw in packed)
            if _patched(data, offsets, intent, raws) == expected:
                return bytes(data), offsets
        return None


def _patched(data: bytes, offsets, intent, raws) -> bytearray:
    out = bytearray(data)
    _COOKIE.pack_into(out, _COOKIE_OFFSET, intent.cookie)
    if type(intent) is Flow:
        _TIMEOUTS.pack_into(out, _TIMEOUTS_OFFSET, intent.idle_timeout, intent.hard_timeout)
    for offset, raw in zip(offsets, raws):
        out[offset:offset + len(raw)] = raw
    return out


def _pack(text: str) -> bytes:
    if "." in text:
        return socket.inet_pton(socket.AF_INET, text)
    if len(text) == 17 and text[2::3] == ":::::":
        return bytes.fromhex(text.replace(":", ""))
    return socket.inet_pton(socket.AF_INET6, text)


def _with_values(intent, texts: List[str]):
    """The intent with its variable values replaced by texts (slot order), cookie and
    timeouts zeroed. Slots are found exactly as shape() finds them."""
    it = iter(texts)

    def swap(value):
        return next(it) if _variable(value, []) is not None else value

    match = tuple((name, swap(value)) for name, value in intent.match_items)
    if type(intent) is DeleteFlows:
        return dataclasses.replace(intent, cookie=0, match_items=match)
    actions = tuple(SetField(a.field, swap(a.value)) if type(a) is SetField else a
                    for a in intent.actions)
    return dataclasses.replace(intent, cookie=0, match_items=match, actions=actions,
                               idle_timeout=0, hard_timeout=0)

"""Flow-mods from byte templates: Ryu builds each flow *shape* once, later flows are patched.

A shape is a Flow or DeleteFlows with its variable parts taken out: the cookie, the timeouts,
and every IPv4 or MAC value in its match and set-fields. Two responders differ only there, so
the second costs a bytearray copy and a few slice assignments (about 3 us) instead of Ryu's
objects and serialize() (about 240 us). The first of a shape is serialized with sentinel
values, each found exactly once in the bytes (else that shape stays on Ryu's path); the unit
tests hold every template's output byte for byte equal to Ryu's.
"""
import socket
import struct
from typing import Dict, List, Optional, Tuple

from ipop_ryu.core.intents import DeleteFlows, Flow, SetField

# ofp_flow_mod: header (8), cookie (8) at 8, cookie_mask (8), table_id, command,
# idle_timeout (2) at 26, hard_timeout (2) at 28
_XID, _COOKIE, _TIMEOUTS = 4, 8, 26
IPV4, MAC = "ipv4", "mac"
_SENTINEL = {IPV4: lambda n: bytes((198, 51, 100, 101 + n)),             # TEST-NET-2
             MAC: lambda n: bytes((0x0e, 0x5e, 0x17, 0xc0, 0xde, 0x41 + n))}
_Template = Tuple[bytes, Tuple[Tuple[int, str, int], ...]]   # bytes, (offset, kind, slot)


def _kind(value) -> Optional[str]:
    """IPV4 or MAC for the values the core puts in flows; None for anything else."""
    if type(value) is not str:
        return None
    if len(value) == 17 and value[2] == ":":
        return MAC
    if value.count(".") == 3:
        return IPV4
    return None


def _pack(kind: str, value: str) -> bytes:
    return socket.inet_aton(value) if kind == IPV4 else bytes.fromhex(value.replace(":", ""))


def _shape(intent):
    """(the shape's key, the variable values in slot order)"""
    values: List[Tuple[str, str]] = []
    match = []
    for name, value in intent.match_items:
        kind = _kind(value)
        if kind:
            values.append((kind, value))
            match.append((name, kind))
        else:
            match.append((name, value))
    if type(intent) is DeleteFlows:
        return (DeleteFlows, intent.cookie_mask, intent.table, tuple(match)), values
    actions = []
    for action in intent.actions:
        kind = _kind(action.value) if type(action) is SetField else None
        if kind:
            values.append((kind, action.value))
            actions.append((SetField, action.field, kind))
        else:
            actions.append(action)
    return (Flow, intent.table, intent.priority, intent.goto, intent.metadata, intent.meter,
            tuple(match), tuple(actions)), values


class FlowModTemplates:
    def __init__(self, serialize):
        """serialize(intent) -> the bytes Ryu makes for it (xid 0)."""
        self._serialize = serialize
        self._cache: Dict[tuple, Optional[_Template]] = {}

    def build(self, intent, xid: int) -> Optional[bytes]:
        """The flow-mod's bytes, or None when its shape has no template (use Ryu)."""
        key, values = _shape(intent)
        template = self._cache.get(key, False)
        if template is False:
            template = self._cache[key] = self._make(intent, values)
        if template is None:
            return None
        data, places = template
        out = bytearray(data)
        struct.pack_into("!I", out, _XID, xid)
        struct.pack_into("!Q", out, _COOKIE, intent.cookie)
        if type(intent) is Flow:
            struct.pack_into("!HH", out, _TIMEOUTS, intent.idle_timeout, intent.hard_timeout)
        for offset, kind, slot in places:
            raw = _pack(kind, values[slot][1])
            out[offset:offset + len(raw)] = raw
        return bytes(out)

    def _make(self, intent, values) -> Optional[_Template]:
        sentinels = [_SENTINEL[kind](n) for n, (kind, _) in enumerate(values)]
        probe = _with_values(intent, [(kind, _unpack(kind, raw))
                                      for (kind, _), raw in zip(values, sentinels)])
        try:
            data = self._serialize(probe)
        except Exception:       # a shape Ryu cannot build this way: leave it to Ryu
            return None
        places = []
        for slot, ((kind, _), raw) in enumerate(zip(values, sentinels)):
            if data.count(raw) != 1:
                return None
            places.append((data.index(raw), kind, slot))
        return data, tuple(places)


def _unpack(kind: str, raw: bytes) -> str:
    return socket.inet_ntoa(raw) if kind == IPV4 else raw.hex(":")


def _with_values(intent, values):
    """The intent with its variable values replaced, in slot order."""
    it = iter(values)
    match = tuple((name, next(it)[1] if _kind(value) else value)
                  for name, value in intent.match_items)
    if type(intent) is DeleteFlows:
        return DeleteFlows(intent.cookie, intent.cookie_mask, intent.table, match)
    actions = tuple(SetField(a.field, next(it)[1]) if type(a) is SetField and _kind(a.value)
                    else a for a in intent.actions)
    return Flow(intent.table, intent.priority, intent.cookie, match, actions, intent.goto,
                intent.metadata, intent.meter, intent.idle_timeout, intent.hard_timeout)

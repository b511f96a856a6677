"""ICC, the inter-controller protocol: signed, versioned JSON in one UDP datagram.

    datagram = MAGIC (4 bytes "IPOP") | HMAC-SHA256(key, MAGIC | payload) (32 bytes) | payload
    payload  = UTF-8 JSON object {"v": 1, "type": ..., "node": sender node_id,
                                  "seq": per-sender counter, "ts": sender's UNIX time, ...}

Everything is checked before anything is believed: size, magic, signature (constant-time),
JSON shape, version, type and every field's type and range. A failure raises Drop(reason),
which the caller counts; nothing here logs or raises anything else.
"""
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Dict

from .addr import ipv4_int

VERSION = 1
MAGIC = b"IPOP"
SIG_LEN = 32
MAX_DATAGRAM = 1400           # stays inside one underlay packet
MIN_DATAGRAM = len(MAGIC) + SIG_LEN + 2
MAX_BINDINGS = 64             # a 1400-byte datagram holds about 36 IPv4 [ip, mac] pairs

# drop reasons, in the order they are checked
OVERSIZED, TRUNCATED, BAD_MAGIC, BAD_SIGNATURE, MALFORMED, BAD_VERSION, UNKNOWN_TYPE, \
    BAD_FIELD = ("oversized", "truncated", "bad_magic", "bad_signature", "malformed",
                 "bad_version", "unknown_type", "bad_field")
# ... and, checked by the receiver against its peers: sender not a configured peer (node id and
# source address), timestamp outside the freshness window, sequence number already seen
UNKNOWN_PEER, STALE, REPLAY = "unknown_peer", "stale", "replay"
DROP_REASONS = (OVERSIZED, TRUNCATED, BAD_MAGIC, BAD_SIGNATURE, MALFORMED, BAD_VERSION,
                UNKNOWN_TYPE, BAD_FIELD, UNKNOWN_PEER, STALE, REPLAY)


class Drop(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# made once: json.dumps/loads with options build a new coder on every call
_ENCODER = json.JSONEncoder(separators=(",", ":"))
_DECODER = json.JSONDecoder()
_NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _node(value):
    return isinstance(value, str) and bool(_NODE_RE.match(value))


def _ipv4(value):
    return ipv4_int(value) is not None


def _mac(value):
    return isinstance(value, str) and bool(_MAC_RE.match(value))


def _uint(value):
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 63


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 2 ** 40


HEADER = {"v": _uint, "type": lambda v: isinstance(v, str), "node": _node, "seq": _uint,
          "ts": _number}
# message type -> its own fields; extra fields are ignored (forward compatibility)
SCHEMAS: Dict[str, Dict] = {
    # a host at `node` asks who has target_ip; peers replay it on their local ports
    "arp_request": {"sender_ip": _ipv4, "sender_mac": _mac, "target_ip": _ipv4},
    # `node` owns ip at mac (the answer to an arp_request, or an announcement); an optional
    # `age` says how long ago the owner last saw the host (its claim's time is ts - age)
    "arp_reply": {"ip": _ipv4, "mac": _mac},
    # liveness; `boot` changes when the sender restarts, so peers resend their entries
    "hello": {"boot": lambda v: isinstance(v, str) and 0 < len(v) <= 32},
    # `node` owns each [ip, mac(, age)] (a batch of arp_reply claims: sync, announcements); each
    # binding is checked on its own, so one bad binding drops only itself (see decode)
    "bindings": {"bindings": lambda v: isinstance(v, list) and 0 < len(v) <= MAX_BINDINGS},
    # "send me your local hosts": answered with bindings batches, then sync_end
    "sync_request": {},
    # the last datagram of a sync: `count` bindings were sent (graceful restart waits for it)
    "sync_end": {"count": _uint},
    # `node` no longer has these hosts (aged out, moved away, port gone); each checked alone
    "withdraw": {"ips": lambda v: isinstance(v, list) and 0 < len(v) <= MAX_BINDINGS},
}

_CHECKS = {msg_type: tuple({**HEADER, **schema}.items()) for msg_type, schema in SCHEMAS.items()}


def _valid_bindings(items):
    """(the well-formed [ip, mac, age] as (ip, mac, age) tuples, how many were not). age,
    seconds since the owner last saw the host, is optional (0)."""
    good = []
    for item in items:
        if isinstance(item, list) and 2 <= len(item) <= 3 and _ipv4(item[0]) \
                and _mac(item[1]) and (len(item) == 2 or _number(item[2])):
            good.append((item[0], item[1], item[2] if len(item) == 3 else 0))
    return good, len(items) - len(good)


def bindings_batches(bindings, room: int = MAX_DATAGRAM - 240):
    """Split [(ip, mac) or (ip, mac, age)...] into lists that each fit one datagram (header
    and signature included: `room` bytes of JSON for the list) and MAX_BINDINGS."""
    batch, size = [], 2
    for binding in bindings:
        item = [binding[0], binding[1]] if len(binding) < 3 or not binding[2] else \
            [binding[0], binding[1], int(binding[2])]
        length = len(item[0]) + len(item[1]) + 8 + (len(str(item[2])) + 1 if len(item) > 2
                                                     else 0)      # ["ip","mac",age],
        if batch and (size + length > room or len(batch) == MAX_BINDINGS):
            yield batch
            batch, size = [], 2
        batch.append(item)
        size += length
    if batch:
        yield batch


def is_node_id(value) -> bool:
    return _node(value)


@dataclass(frozen=True)
class Message:
    type: str
    node: str
    seq: int
    ts: float
    fields: dict

    def __getitem__(self, name):
        return self.fields[name]


class Codec:
    def __init__(self, key: bytes):
        if not key:
            raise ValueError("ICC key is empty")
        self._key = key
        # HMAC state after the key and MAGIC, copied per datagram: no digest lookup by name
        # and no key schedule each time (half the cost of hmac.digest, a third when cold)
        self._keyed = hmac.new(key, MAGIC, hashlib.sha256)

    def _sign(self, payload: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(payload)
        return mac.digest()

    def encode(self, msg_type: str, node: str, seq: int, ts: float, **fields) -> bytes:
        body = {"v": VERSION, "type": msg_type, "node": node, "seq": seq, "ts": round(ts, 6),
                **fields}
        payload = _ENCODER.encode(body).encode()
        return MAGIC + self._sign(payload) + payload

    def decode(self, datagram: bytes) -> Message:
        if len(datagram) > MAX_DATAGRAM:
            raise Drop(OVERSIZED, f"{len(datagram)} bytes")
        if len(datagram) < MIN_DATAGRAM:
            raise Drop(TRUNCATED, f"{len(datagram)} bytes")
        if datagram[:len(MAGIC)] != MAGIC:
            raise Drop(BAD_MAGIC)
        signature = datagram[len(MAGIC):len(MAGIC) + SIG_LEN]
        payload = datagram[len(MAGIC) + SIG_LEN:]
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise Drop(BAD_SIGNATURE)
        try:
            body = _DECODER.decode(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise Drop(MALFORMED, type(exc).__name__) from None
        if not isinstance(body, dict):
            raise Drop(MALFORMED, "not an object")
        version, msg_type = body.get("v"), body.get("type")
        if not _uint(version) or version != VERSION:      # (True == 1 in Python)
            raise Drop(BAD_VERSION, repr(version)[:20])
        schema = SCHEMAS.get(msg_type) if isinstance(msg_type, str) else None
        if schema is None:
            raise Drop(UNKNOWN_TYPE, repr(msg_type)[:40])
        for name, valid in _CHECKS[msg_type]:
            if name not in body or not valid(body[name]):
                raise Drop(BAD_FIELD, name)
        fields = {name: body[name] for name in schema}
        if "age" in body and msg_type == "arp_reply":
            if not _number(body["age"]):
                raise Drop(BAD_FIELD, "age")
            fields["age"] = body["age"]
        if msg_type == "bindings":
            fields["bindings"], fields["invalid"] = _valid_bindings(body["bindings"])
        elif msg_type == "withdraw":
            fields["ips"] = [ip for ip in body["ips"] if _ipv4(ip)]
            fields["invalid"] = len(body["ips"]) - len(fields["ips"])
        return Message(body["type"], body["node"], body["seq"], float(body["ts"]), fields)

"""ICC, the inter-controller protocol: signed, versioned JSON in one UDP datagram.

    shared key (icc_key_file, every node holds the same secret):
    datagram = MAGIC (4 bytes "IPOP") | HMAC-SHA256(key, MAGIC | payload) (32 bytes) | payload
    per-node keys (private_key_file; keys.py derives one key per pair and direction):
    datagram = NODE_MAGIC ("IPON") | n (1 byte) | sender node id (n bytes)
               | HMAC-SHA256(key sender->receiver, everything before it | payload) | payload
    payload  = UTF-8 JSON object {"v": 1, "type": ..., "node": sender node_id,
                                  "seq": per-sender counter, "ts": sender's UNIX time, ...}

The per-node header names the sender in clear only to pick the key: the payload's "node" must
say the same, and only the two nodes of a pair hold its key, so no node can sign as another.

Everything is checked before anything is believed: size, magic, signature (constant-time),
JSON shape, version, type and every field's type and range. A failure raises Drop(reason),
which the caller counts; nothing here logs or raises anything else.
"""
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Dict, Mapping, Optional

from .addr import ipv4_int, ipv6_packed

VERSION = 1
MAGIC = b"IPOP"
NODE_MAGIC = b"IPON"
SIG_LEN = 32
MAX_DATAGRAM = 1400           # stays inside one underlay packet
MIN_DATAGRAM = len(MAGIC) + SIG_LEN + 2
MAX_BINDINGS = 64             # a 1400-byte datagram holds about 36 IPv4 [ip, mac] pairs
MAX_NAME = 253                # a DNS name's length: anything longer is junk, not a name

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
    """a node id: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"""
    return isinstance(value, str) and bool(_NODE_RE.match(value))


def _ipv4(value):
    """an IPv4 address, dotted quad"""
    return ipv4_int(value) is not None


def _ipv6(value):
    """an IPv6 address in its canonical text form (RFC 5952)"""
    return ipv6_packed(value) is not None       # one spelling per address: the table's key


def _ipv6_or_unspecified(value):
    """an IPv6 address in canonical form, or `::` (a DAD probe's source)"""
    return _ipv6(value)          # "::" is canonical too


def _ip(value):
    return _ipv4(value) or _ipv6(value)


def _mac(value):
    """a MAC address, six lower-case hex pairs joined by ':'"""
    return isinstance(value, str) and bool(_MAC_RE.match(value))


def _uint(value):
    """a whole number from 0 to 2**63 - 1"""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 63


def _number(value):
    """a number (whole or not) from 0 to 2**40"""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 2 ** 40


def _text(value):
    """a string"""
    return isinstance(value, str)


def _boot(value):
    """a string of 1-32 characters"""
    return isinstance(value, str) and 0 < len(value) <= 32


def _true_or_false(value):
    """true or false"""
    return isinstance(value, bool)


def _batch(value):
    """a list of 1-64 items (MAX_BINDINGS), each checked on its own"""
    return isinstance(value, list) and 0 < len(value) <= MAX_BINDINGS


def _name(value):
    """a string of 1-253 characters: the host's name, taken only if it is a DNS label"""
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME


def _names(value):
    """an object of 1-64 (MAX_BINDINGS) address: name pairs, each checked on its own"""
    return isinstance(value, dict) and 0 < len(value) <= MAX_BINDINGS


HEADER = {"v": _uint, "type": _text, "node": _node, "seq": _uint, "ts": _number}
# message type -> its own fields; extra fields are ignored (forward compatibility)
SCHEMAS: Dict[str, Dict] = {
    "arp_request": {"sender_ip": _ipv4, "sender_mac": _mac, "target_ip": _ipv4},
    "arp_reply": {"ip": _ipv4, "mac": _mac},
    "hello": {"boot": _boot},
    "nd_request": {"sender_ip": _ipv6_or_unspecified, "sender_mac": _mac, "target_ip": _ipv6},
    "nd_reply": {"ip": _ipv6, "mac": _mac},
    "bindings": {"bindings": _batch},
    "sync_request": {},
    "sync_end": {"count": _uint},
    "withdraw": {"ips": _batch},
}
# fields a message may carry, checked when present
# (a site from before a field ignores it: parse_payload keeps only the fields it knows)
OPTIONAL: Dict[str, Dict] = {
    "arp_reply": {"age": _number, "name": _name},
    "nd_reply": {"age": _number, "router": _true_or_false, "name": _name},
    "bindings": {"names": _names},
}
# what each message says (the protocol reference, docs/reference/icc-messages.md, shows it)
MEANINGS: Dict[str, str] = {
    "arp_request": "a host at `node` asks who has `target_ip`; peers replay the request on "
                   "their local ports",
    "arp_reply": "`node` owns `ip` at `mac`: the answer to an arp_request, or an announcement "
                 "(gratuitous ARP, a move); `age` says how long ago the owner last saw the host "
                 "(the claim's time is `ts - age`); `name`: the host's name (its DHCP "
                 "hostname), taken only from a site that may claim `ip`",
    "hello": "liveness, every hello_interval; `boot` changes when the sender restarts, so peers "
             "resend their entries; `gateway`, `gateway6` and `gateway_mac` (site services) say "
             "the sender's anycast gateway, which must be every site's (core/gateway.py)",
    "nd_request": "the IPv6 counterpart of arp_request: a host at `node` sends an NS for "
                  "`target_ip` (`sender_ip` `::`: a DAD probe, answered only by an owner)",
    "nd_reply": "the IPv6 counterpart of arp_reply: `node` owns `ip` at `mac`; `router` true: "
                "its NA said it is a router (answers for it carry the R flag); `name` as in "
                "arp_reply",
    "bindings": "`node` owns each `[ip, mac]`, `[ip, mac, age]` or `[ip, mac, age, 1]` (1: an "
                "IPv6 router): many claims in one datagram, IPv4 and IPv6 mixed, for syncs and "
                "announcements; each binding is checked on its own, so a bad one (or an IPv6 "
                "one at a controller from before ND) drops only itself; `names` maps some of "
                "the addresses to their hosts' names (beside the list: a site from before "
                "names ignores it, where a fifth item would make it drop the binding)",
    "sync_request": "send me your local hosts: answered with bindings batches, then sync_end",
    "sync_end": "the last datagram of a sync: `count` bindings were sent (a graceful restart "
                "waits for it)",
    "withdraw": "`node` no longer has these hosts (aged out, moved away, port gone); each "
                "address is checked on its own, and only entries `node` owns are removed",
}


def _short_text(value):
    """a string of 1-64 characters"""
    return isinstance(value, str) and 0 < len(value) <= 64


# optional fields that are only advice: a bad one is left out and the message still counts
LENIENT: Dict[str, Dict] = {
    "hello": {"gateway": _short_text, "gateway6": _short_text, "gateway_mac": _mac},
}
_CHECKS = {msg_type: tuple({**HEADER, **schema}.items()) for msg_type, schema in SCHEMAS.items()}


def _valid_bindings(items):
    """(the well-formed [ip, mac, age(, router)] as (ip, mac, age) tuples, how many were not).
    age, seconds since the owner last saw the host, is optional (0); router (1: an IPv6
    router, see _routers) too."""
    good = []
    for item in items:
        if isinstance(item, list) and 2 <= len(item) <= 4 and _ip(item[0]) \
                and _mac(item[1]) and (len(item) == 2 or _number(item[2])) \
                and (len(item) < 4 or type(item[3]) is int and item[3] in (0, 1)):
            good.append((item[0], item[1], item[2] if len(item) >= 3 else 0))
    return good, len(items) - len(good)


def _routers(items) -> set:
    """The IPv6 addresses of well-formed bindings whose owner is a router."""
    return {item[0] for item in items if isinstance(item, list) and len(item) == 4
            and item[3] == 1 and type(item[3]) is int and _ipv6(item[0])}


def bindings_fields(bindings, room: int = MAX_DATAGRAM - 240):
    """Split [(ip, mac), (ip, mac, age), (ip, mac, age, router) or (ip, mac, age, router,
    name)...] into the fields of bindings messages ({"bindings": [...], "names": {ip: name}},
    names only if any) that each fit one datagram (header and signature included: `room`
    bytes of JSON for the fields) and MAX_BINDINGS."""
    batch, names, size = [], {}, 2
    for binding in bindings:
        if len(binding) > 3 and binding[3]:
            item = [binding[0], binding[1], int(binding[2]), 1]
        elif len(binding) < 3 or not binding[2]:
            item = [binding[0], binding[1]]
        else:
            item = [binding[0], binding[1], int(binding[2])]
        name = binding[4] if len(binding) > 4 else None
        length = len(item[0]) + len(item[1]) + 8 + sum(len(str(v)) + 1 for v in item[2:])
        if name:
            length += len(item[0]) + len(name) + 6            # "ip":"name",
        names_room = _NAMES_FIELD if names or name else 0      # ,"names":{}
        if batch and (size + length + names_room > room or len(batch) == MAX_BINDINGS):
            yield _fields(batch, names)
            batch, names, size = [], {}, 2
        batch.append(item)
        if name:
            names[item[0]] = name
        size += length
    if batch:
        yield _fields(batch, names)


_NAMES_FIELD = len(',"names":{}')


def _fields(batch, names) -> dict:
    return {"bindings": batch, "names": names} if names else {"bindings": batch}


def bindings_batches(bindings, room: int = MAX_DATAGRAM - 240):
    """The binding lists of bindings_fields (no names)."""
    for fields in bindings_fields(bindings, room):
        yield fields["bindings"]


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


def encode_payload(msg_type: str, node: str, seq: int, ts: float, **fields) -> bytes:
    body = {"v": VERSION, "type": msg_type, "node": node, "seq": seq, "ts": round(ts, 6),
            **fields}
    return _ENCODER.encode(body).encode()


def payload_start(datagram: bytes) -> int:
    """Where the JSON starts in a datagram of either codec (a cheap look; decode checks)."""
    if datagram[:len(NODE_MAGIC)] == NODE_MAGIC and len(datagram) > len(NODE_MAGIC):
        return len(NODE_MAGIC) + 1 + datagram[len(NODE_MAGIC)] + SIG_LEN
    return len(MAGIC) + SIG_LEN


# how encode_payload starts a hello
_HELLO_HEAD = _ENCODER.encode({"v": VERSION, "type": "hello"})[:-1].encode()


def is_hello(datagram: bytes) -> bool:
    """Whether a datagram of either codec carries a hello, by a cheap look at the bytes our
    encoder writes (for the app's hello-first sort; decode checks everything after)."""
    return datagram.startswith(_HELLO_HEAD, payload_start(datagram))


def _check_size(datagram: bytes, minimum: int = MIN_DATAGRAM):
    if len(datagram) > MAX_DATAGRAM:
        raise Drop(OVERSIZED, f"{len(datagram)} bytes")
    if len(datagram) < minimum:
        raise Drop(TRUNCATED, f"{len(datagram)} bytes")


def _keyed(key: bytes, prefix: bytes):
    """HMAC state after the key and the datagram's prefix, copied per datagram: no digest
    lookup by name and no key schedule each time (half the cost of hmac.digest)."""
    return hmac.new(key, prefix, hashlib.sha256)


def _signature(keyed, payload: bytes) -> bytes:
    mac = keyed.copy()
    mac.update(payload)
    return mac.digest()


class Codec:
    """The shared-key mode: every node signs and checks with one secret (the seed's simple
    setup; any key holder can sign as any node)."""
    per_peer = False            # one datagram serves every peer

    def __init__(self, key: bytes):
        if not key:
            raise ValueError("ICC key is empty")
        self._key = key
        self._keyed = _keyed(key, MAGIC)

    def _sign(self, payload: bytes) -> bytes:
        return _signature(self._keyed, payload)

    def seal(self, payload: bytes, peer: Optional[str] = None) -> bytes:
        return MAGIC + self._sign(payload) + payload

    def encode(self, msg_type: str, node: str, seq: int, ts: float, **fields) -> bytes:
        return self.seal(encode_payload(msg_type, node, seq, ts, **fields))

    def decode(self, datagram: bytes) -> "Message":
        _check_size(datagram)
        if datagram[:len(MAGIC)] != MAGIC:
            raise Drop(BAD_MAGIC)
        signature = datagram[len(MAGIC):len(MAGIC) + SIG_LEN]
        payload = datagram[len(MAGIC) + SIG_LEN:]
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise Drop(BAD_SIGNATURE)
        return parse_payload(payload)


class NodeCodec:
    """Per-node keys: a datagram to or from a peer is signed with the key of that pair and
    direction (keys.pair_keys). Peers without a public key fall back to `shared` (a Codec),
    if given: a site at a time can move from the shared key to its own; a peer that has a
    public key is never believed on the shared key."""
    per_peer = True

    def __init__(self, node_id: str, pair_keys: Mapping[str, tuple],
                 shared: Optional[Codec] = None):
        """pair_keys: peer node id -> (send key, receive key), as keys.pair_keys gives."""
        own = node_id.encode()
        self._prefix = NODE_MAGIC + bytes((len(own),)) + own
        self._min = len(self._prefix) + SIG_LEN + 2
        self.shared = shared
        self.set_peers(pair_keys)

    def set_peers(self, pair_keys: Mapping[str, tuple]):
        """Replace the pairs (a reload): applies to the next datagram."""
        self._send = {name: _keyed(send, self._prefix) for name, (send, _) in pair_keys.items()}
        self._receive = {}
        for name, (_, receive) in pair_keys.items():
            peer = name.encode()
            self._receive[peer] = (name, _keyed(receive, NODE_MAGIC + bytes((len(peer),)) + peer))

    def keyed_peers(self) -> frozenset:
        return frozenset(self._send)

    def seal(self, payload: bytes, peer: str) -> bytes:
        keyed = self._send.get(peer)
        if keyed is None:
            return self.shared.seal(payload)
        return self._prefix + _signature(keyed, payload) + payload

    def decode(self, datagram: bytes) -> "Message":
        if datagram[:len(NODE_MAGIC)] != NODE_MAGIC:
            if self.shared is None or datagram[:len(MAGIC)] != MAGIC:
                _check_size(datagram)
                raise Drop(BAD_MAGIC)
            message = self.shared.decode(datagram)
            if message.node in self._send:
                raise Drop(BAD_SIGNATURE, f"{message.node} has a public key: the shared key "
                                          f"does not speak for it")
            return message
        _check_size(datagram, len(NODE_MAGIC) + 1 + 1 + SIG_LEN + 2)
        start = len(NODE_MAGIC) + 1
        end = start + datagram[len(NODE_MAGIC)]
        found = self._receive.get(datagram[start:end])
        if found is None:
            raise Drop(UNKNOWN_PEER, repr(datagram[start:end])[:70])
        name, keyed = found
        payload = datagram[end + SIG_LEN:]
        if len(payload) < 2:
            raise Drop(TRUNCATED, f"{len(datagram)} bytes")
        if not hmac.compare_digest(datagram[end:end + SIG_LEN], _signature(keyed, payload)):
            raise Drop(BAD_SIGNATURE, name)
        message = parse_payload(payload)
        if message.node != name:
            raise Drop(BAD_FIELD, f"node {message.node!r} in a datagram signed by {name}")
        return message


class Link:
    """One node speaking to one peer, with either codec: the encode/decode of the shared-key
    Codec (bench tools and tests that play a peer)."""

    def __init__(self, codec, peer: Optional[str] = None):
        self.codec, self.peer = codec, peer

    def encode(self, msg_type: str, node: str, seq: int, ts: float, **fields) -> bytes:
        return self.codec.seal(encode_payload(msg_type, node, seq, ts, **fields), self.peer)

    def decode(self, datagram: bytes) -> "Message":
        return self.codec.decode(datagram)


def parse_payload(payload: bytes) -> "Message":
    """Check an authenticated payload's JSON: shape, version, type, every field."""
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
    for name, valid in OPTIONAL.get(msg_type, {}).items():
        if name in body:
            if not valid(body[name]):
                raise Drop(BAD_FIELD, name)
            fields[name] = body[name]
    fields.update((name, body[name]) for name, valid in LENIENT.get(msg_type, {}).items()
                  if name in body and valid(body[name]))
    if msg_type == "bindings":
        fields["bindings"], fields["invalid"] = _valid_bindings(body["bindings"])
        fields["routers"] = _routers(body["bindings"]) & {b[0] for b in fields["bindings"]}
        listed = {b[0] for b in fields["bindings"]}
        fields["names"] = {ip: name for ip, name in fields.get("names", {}).items()
                           if ip in listed and _name(name)}
    elif msg_type == "withdraw":
        fields["ips"] = [ip for ip in body["ips"] if _ip(ip)]
        fields["invalid"] = len(body["ips"]) - len(fields["ips"])
    return Message(body["type"], body["node"], body["seq"], float(body["ts"]), fields)

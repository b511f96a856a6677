"""Per-node keys: the key derivation, the per-node datagram format and its fuzzing, the
peers file, allowed_ips and reloads, without a switch."""
import base64
import dataclasses
import json

import pytest
from hypothesis import given, settings, strategies as st

from ipop_ryu.cli.status import render_peers
from ipop_ryu.core import icc, keys, peers, status
from ipop_ryu.core.addr import Subnets
from ipop_ryu.core.config import ConfigError, Options, Peer, parse
from ipop_ryu.core.intents import DeleteFlows, Flow, IccSend
from ipop_ryu.core.membership import make_codec
from ipop_ryu.core.switchmode import SwitchMode

from .helpers import KEY, Clock, mac_of

PRIVATE = {name: keys.generate_private_key() for name in "ABC"}
PUBLIC = {name: keys.public_key_of(key) for name, key in PRIVATE.items()}
HOSTS = {"A": "192.0.2.1", "B": "192.0.2.2", "C": "192.0.2.3"}
TS = 1700000000.0


def b64(hex_text):
    return base64.b64encode(bytes.fromhex(hex_text)).decode()


def test_public_key_matches_rfc7748_and_wireguard_format():
    # RFC 7748 section 6.1 (X25519): Alice's private and public keys
    alice = b64("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    assert keys.public_key_of(alice) == \
        b64("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert len(PRIVATE["A"]) == 44 and PRIVATE["A"].endswith("=")    # as `wg genkey`
    for bad in ("", "not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError):
            keys.decode_key(bad)


def raw(name):
    return keys.decode_key(PRIVATE[name])


def pub(name):
    return keys.decode_key(PUBLIC[name])


def test_pair_keys_are_shared_by_the_pair_only_and_differ_by_direction():
    a_send, a_receive = keys.pair_keys(raw("A"), pub("B"))
    b_send, b_receive = keys.pair_keys(raw("B"), pub("A"))
    assert (a_send, a_receive) == (b_receive, b_send) and a_send != a_receive
    c_send, c_receive = keys.pair_keys(raw("C"), pub("B"))
    assert {c_send, c_receive}.isdisjoint({a_send, a_receive})
    with pytest.raises(ValueError):
        keys.pair_keys(raw("A"), pub("A"))
    with pytest.raises(ValueError):             # a low-order point: all-zero shared secret
        keys.pair_keys(raw("A"), bytes(32))


def node_codec(name, peers="ABC", shared=None):
    pairs = {p: keys.pair_keys(raw(name), pub(p)) for p in peers if p != name}
    return icc.NodeCodec(name, pairs, shared)


def reason(codec, data):
    with pytest.raises(icc.Drop) as caught:
        codec.decode(data)
    return caught.value.reason


def reply_from(codec, node, peer, **fields):
    payload = icc.encode_payload("arp_reply", node, 7, TS, ip="10.0.3.7",
                                 mac="02:00:0a:00:03:07", **fields)
    return codec.seal(payload, peer)


def test_a_node_cannot_sign_as_another():
    a, b, c = node_codec("A"), node_codec("B"), node_codec("C")
    good = reply_from(b, "B", "A")
    assert good.startswith(icc.NODE_MAGIC + b"\x01B")
    assert a.decode(good).node == "B"
    # C, with its own valid keys, sends as B: the header says B -> checked with B's key
    forged = icc.NODE_MAGIC + b"\x01B" + reply_from(c, "B", "A")[len(icc.NODE_MAGIC) + 2:]
    assert reason(a, forged) == icc.BAD_SIGNATURE
    # ... or signs honestly as C but the payload says B
    assert reason(a, reply_from(c, "B", "A")) == icc.BAD_FIELD
    # B's datagram to A is no good to C (another pair's key), nor back at B (not its peer)
    assert reason(c, good) == icc.BAD_SIGNATURE
    assert reason(b, good) == icc.UNKNOWN_PEER
    assert reason(node_codec("A", peers="AC"), good) == icc.UNKNOWN_PEER
    # the shared-key format is refused without a shared key
    assert reason(a, icc.Codec(KEY).encode("hello", "B", 1, TS, boot="x")) == icc.BAD_MAGIC


def test_shared_key_fallback_only_for_peers_without_a_public_key():
    shared = icc.Codec(KEY)
    a = node_codec("A", peers="AB", shared=shared)      # C has no public key here
    assert a.decode(shared.encode("hello", "C", 1, TS, boot="x")).node == "C"
    assert reason(a, shared.encode("hello", "B", 1, TS, boot="x")) == icc.BAD_SIGNATURE
    assert a.seal(b"{}", "C").startswith(icc.MAGIC)
    assert a.seal(b"{}", "B").startswith(icc.NODE_MAGIC)


def test_is_hello_agrees_with_the_encoder_in_both_key_modes():
    """The app's hello-first sort looks at the bytes; decode says what they were."""
    shared = icc.Codec(KEY)
    longest = "n" * 64                  # the per-node prefix's length follows the node id
    there, back = b"s" * 32, b"r" * 32
    senders = [("B", icc.Link(shared), shared),
               ("B", icc.Link(node_codec("B", "AB"), "A"), node_codec("A", "AB")),
               (longest, icc.Link(icc.NodeCodec(longest, {"A": (there, back)}), "A"),
                icc.NodeCodec("A", {longest: (back, there)}))]
    for node, sender, receiver in senders:
        for msg_type, fields in [("hello", {"boot": "x"}), ("sync_request", {"hello": "x"}),
                                 ("arp_reply", {"ip": "10.0.3.7", "mac": "02:00:0a:00:03:07"}),
                                 ("sync_end", {"count": 0})]:
            datagram = sender.encode(msg_type, node, 7, TS, **fields)
            assert receiver.decode(datagram).type == msg_type
            assert icc.is_hello(datagram) == (msg_type == "hello"), (node, msg_type, datagram)
    assert not icc.is_hello(b"") and not icc.is_hello(icc.NODE_MAGIC)


A_OF_B = node_codec("A")
B_TO_A = node_codec("B")


def decode(data):
    try:
        message = A_OF_B.decode(data)
    except icc.Drop as drop:
        assert drop.reason in icc.DROP_REASONS
        return None
    assert message.node == "B" and message.type in icc.SCHEMAS
    return message


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=1600))
def test_fuzz_random_bytes_after_the_node_header(data):
    assert decode(icc.NODE_MAGIC + data) is None or data.startswith(b"\x01B")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_payloads_signed_with_the_pair_key(payload):
    decode(B_TO_A.seal(payload, "A"))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "type", "node", "seq", "ts", "ip", "mac", "x"]),
                       st.none() | st.integers() | st.text(max_size=12), max_size=8))
def test_fuzz_json_objects_signed_with_the_pair_key(body):
    decode(B_TO_A.seal(json.dumps(body).encode(), "A"))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_fuzz_any_single_byte_change_is_dropped(position, value):
    data = bytearray(reply_from(B_TO_A, "B", "A"))
    position %= len(data)
    if data[position] != value:
        data[position] = value
        assert decode(bytes(data)) is None


def test_longest_node_ids_still_fit_a_full_bindings_batch():
    name = "n" * 64
    sender = icc.NodeCodec(name, {"A": keys.pair_keys(raw("B"), pub("A"))})
    batch = next(icc.bindings_batches([(f"10.0.{i // 250}.{i % 250}", mac_of("10.0.3.7"), 300)
                                       for i in range(200)]))
    data = sender.seal(icc.encode_payload("bindings", name, 2 ** 62, TS, bindings=batch), "A")
    assert len(data) <= icc.MAX_DATAGRAM


# ---- the peers file -----------------------------------------------------------------------

def write_site(tmp_path, node="A", peers_text=None, key=None):
    (tmp_path / f"{node}.key").write_text((key or PRIVATE[node]) + "\n")
    if peers_text is None:
        peers_text = "".join(f"[{n}]\nendpoint = {HOSTS[n]}:30000\npublic_key = {PUBLIC[n]}\n"
                             f"allowed_ips = 10.0.3.{16 * i}/28, fd00:3::{i:x}00/120\n\n"
                             for i, n in enumerate("ABC", 1))
    (tmp_path / "peers.conf").write_text(peers_text)
    return {"node_id": node, "private_key_file": str(tmp_path / f"{node}.key"),
            "peers_file": str(tmp_path / "peers.conf")}


def test_peers_file(tmp_path):
    options = parse(write_site(tmp_path))
    assert [p.name for p in options.peers] == ["B", "C"] and options.own.name == "A"
    b = options.peers[0]
    assert (b.host, b.port, b.public_key) == ("192.0.2.2", 30000, PUBLIC["B"])
    assert b.allows("10.0.3.33") and not b.allows("10.0.3.17") and b.allows("fd00:3::2ff")
    assert not b.allows("fd00:3::1ff") and options.unrestricted_peers == ()
    assert isinstance(make_codec(options), icc.NodeCodec) and options.icc_key == b""


@pytest.mark.parametrize("text,expected", [
    ("[B]\npublic_key = {B}\n", "[B] endpoint: is required"),
    ("[B]\nendpoint = 192.0.2.2\npublic_key = {B}\n", "[B] endpoint: '192.0.2.2'"),
    ("[B]\nendpoint = 192.0.2.2:30000\npublic_key = abc\n", "[B] public_key: 'abc'"),
    ("[B]\nendpoint = 192.0.2.2:30000\npublic_key = {B}\nallowed_ips = 10.0.3.0/33\n",
     "[B] allowed_ips: '10.0.3.0/33'"),
    ("[B]\nendpoint = 192.0.2.2:30000\npublic_key = {B}\nallowed_ips =\n",
     "[B] allowed_ips: '': empty"),
    ("[B]\nendpoint = 192.0.2.2:30000\npublic_key = {B}\nallowd_ips = 10.0.3.0/24\n",
     "[B] allowd_ips: unknown key"),
    ("[B]\nendpoint = 192.0.2.2:30000\n", "B has no public_key"),
    ("[B]\nendpoint = 192.0.2.2:30000\npublic_key = {A}\n", "public_key: the peer's public "
                                                           "key is this node's own"),
    ("[A]\nendpoint = 192.0.2.1:30000\npublic_key = {B}\n", "is not the key of [A]"),
    ("[B]\nendpoint = 192.0.2.2:30000\n[B]\nendpoint = 192.0.2.2:30000\n", "already exists"),
    ("[B b]\nendpoint = 192.0.2.2:30000\n", "[B b] section"),
    ("endpoint = 192.0.2.2:30000\n", "no section header"),
])
def test_bad_peers_file_names_the_file_the_section_and_the_key(tmp_path, text, expected):
    raw_options = write_site(tmp_path, peers_text=text.format(**PUBLIC))
    with pytest.raises(ConfigError) as caught:
        parse(raw_options)
    message = str(caught.value)
    assert "[ipop] " in message and expected in message, message
    assert str(tmp_path) in message or "private_key_file" in message, message


def test_bad_private_key_file(tmp_path):
    raw_options = write_site(tmp_path, key="not a key")
    with pytest.raises(ConfigError, match=r"\[ipop\] private_key_file: .*not base64"):
        parse(raw_options)


def test_no_allowed_ips_is_any_address_and_reported(tmp_path):
    options = parse(write_site(tmp_path, peers_text=f"[B]\nendpoint = 192.0.2.2:30000\n"
                                                    f"public_key = {PUBLIC['B']}\n"))
    assert options.unrestricted_peers == ("B",) and options.peers[0].allows("203.0.113.9")


def test_shared_key_with_per_node_keys_serves_peers_without_a_public_key(tmp_path):
    (tmp_path / "icc.key").write_text("0123456789abcdef0123456789abcdef\n")
    options = parse({**write_site(tmp_path, peers_text=f"[B]\nendpoint = 192.0.2.2:30000\n"
                                                       f"public_key = {PUBLIC['B']}\n"),
                     "icc_key_file": str(tmp_path / "icc.key"), "peers": "C@192.0.2.3:30000"})
    codec = make_codec(options)
    assert codec.keyed_peers() == {"B"} and codec.shared is not None


# ---- allowed_ips and reloads on the core -----------------------------------------------------

def options_for(node, allowed=None, peers="ABC", private=None):
    allowed = allowed or {}
    return parse_like(node, [Peer(p, HOSTS[p], 30000, PUBLIC[p], allowed.get(p))
                             for p in peers if p != node], private)


def parse_like(node, peers, private=None):
    """Options as parse() makes them from a peers file: allowed_ips as Subnets."""
    peers = tuple(p if p.allowed_ips is None or isinstance(p.allowed_ips, Subnets)
                  else Peer(p.name, p.host, p.port, p.public_key, Subnets(p.allowed_ips))
                  for p in peers)
    return Options(node_id=node, peers=peers,
                   private_key=keys.decode_key(private or PRIVATE[node]))


class Site:
    """One core and the codecs its peers sign with."""
    def __init__(self, node="A", allowed=None, peers="ABC"):
        self.clock = Clock()
        self.core = SwitchMode(options_for(node, allowed, peers), clock=self.clock,
                               wallclock=lambda: TS + self.clock.now)
        self.core.switch_connected({1: "h3", 100: "ipop-B", 101: "ipop-C"})
        self.seq = {}

    def from_peer(self, peer, msg_type, **fields):
        self.seq[peer] = self.seq.get(peer, 0) + 1
        sender = node_codec(peer)
        data = sender.seal(icc.encode_payload(msg_type, peer, self.seq[peer],
                                              TS + self.clock.now, **fields), self.core.node_id)
        return self.core.icc_datagram(data, (HOSTS[peer], 30000))


def test_claims_outside_allowed_ips_never_touch_the_table():
    site = Site(allowed={"B": ["10.0.3.0/28"], "C": ["10.0.3.16/28"]})
    out = site.from_peer("B", "arp_reply", ip="10.0.3.7", mac=mac_of("10.0.3.7"))
    assert site.core.table.get("10.0.3.7", site.clock()).node == "B" and out
    # C claims B's host (a move or a conflict, were it allowed): ignored, counted
    site.from_peer("C", "hello", boot="c")
    for msg_type, fields in (("arp_reply", {"ip": "10.0.3.7", "mac": "02:00:00:00:00:66"}),
                             ("bindings", {"bindings": [["10.0.3.7", "02:00:00:00:00:66"]]}),
                             ("arp_request", {"sender_ip": "10.0.3.7",
                                              "sender_mac": "02:00:00:00:00:66",
                                              "target_ip": "10.0.3.3"})):
        assert site.from_peer("C", msg_type, **fields) == []
    entry = site.core.table.get("10.0.3.7", site.clock())
    assert (entry.node, entry.mac) == ("B", mac_of("10.0.3.7"))
    assert site.core.stats["icc_not_allowed"] == 3
    assert site.core.stats["host_conflict"] == site.core.stats["host_moved"] == 0
    # inside C's own range it is believed
    site.from_peer("C", "arp_reply", ip="10.0.3.20", mac=mac_of("10.0.3.20"))
    assert site.core.table.get("10.0.3.20", site.clock()).node == "C"


def test_refused_claims_are_listed_per_peer_until_fixed_or_aged():
    site = Site(allowed={"B": ["10.0.3.128/25"], "C": ["10.0.3.16/28"]})
    for _ in range(6):
        site.from_peer("B", "arp_reply", ip="10.0.3.200", mac=mac_of("10.0.3.200"))
        site.from_peer("B", "arp_reply", ip="10.0.3.7", mac=mac_of("10.0.3.7"))
        site.clock.now += 1
    rows = {row["name"]: row for row in status.peers(site.core)}
    assert rows["B"]["claims_refused"] == [
        {"address": "10.0.3.7", "count": 6, "first_ago": 6.0, "last_ago": 1.0}]
    assert rows["C"]["claims_refused"] == []
    assert "10.0.3.7 x6" in render_peers(list(rows.values())).splitlines()[1], "ipop-ryu peers"
    site.clock.now += peers.REFUSALS_WINDOW
    assert status.peers(site.core)[0]["claims_refused"] == [], "aged out"
    site.from_peer("B", "arp_reply", ip="10.0.3.7", mac=mac_of("10.0.3.7"))
    assert len(site.core.refusals.recent(site.clock())) == 1
    site.core.reconfigure(options_for("A", {"B": ["10.0.3.0/24"], "C": ["10.0.3.16/28"]}))
    assert site.core.refusals.recent(site.clock()) == [], "B's allowed_ips changed"


def test_reload_adds_removes_rotates_and_narrows_without_touching_the_rest():
    site = Site(peers="AB")
    core = site.core
    site.from_peer("B", "bindings", bindings=[["10.0.3.7", mac_of("10.0.3.7")],
                                              ["10.0.3.40", mac_of("10.0.3.40")]])
    assert len(core.table) == 2
    # C joins: greeted at once (hello and sync request)
    out, change = core.reconfigure(options_for("A", peers="ABC"))
    assert change == {"added": ["C"], "removed": [], "changed": [], "needs_restart": []}
    assert sorted(json.loads(i.data[icc.payload_start(i.data):])["type"] for i in out
                  if isinstance(i, IccSend)) == ["hello", "sync_request"]
    assert not [i for i in out if isinstance(i, (Flow, DeleteFlows))], "no flow churn"
    assert len(core.table) == 2
    site.from_peer("C", "arp_reply", ip="10.0.3.20", mac=mac_of("10.0.3.20"))
    assert core.table.get("10.0.3.20", site.clock()).node == "C"
    # B narrowed to 10.0.3.0/28: its 10.0.3.40 goes, 10.0.3.7 stays
    out, change = core.reconfigure(options_for("A", {"B": ["10.0.3.0/28"]}))
    assert change["changed"] == ["B"] and core.table.get("10.0.3.40", site.clock()) is None
    assert core.table.get("10.0.3.7", site.clock()) is not None
    assert any(isinstance(i, DeleteFlows) for i in out)
    # C removed: its entry and flows go; B's stay
    out, change = core.reconfigure(options_for("A", {"B": ["10.0.3.0/28"]}, peers="AB"))
    assert change["removed"] == ["C"] and core.table.get("10.0.3.20", site.clock()) is None
    assert core.table.get("10.0.3.7", site.clock()).node == "B"
    assert site.from_peer("C", "hello", boot="x") == [] and \
        core.stats["icc_dropped.unknown_peer"] == 1
    # our own key rotated: every pair key changes, B must use the new one
    new_key = keys.generate_private_key()
    core.reconfigure(parse_like("A", options_for("A", peers="AB").peers, new_key))
    site.from_peer("B", "hello", boot="x")
    assert core.stats["icc_dropped.bad_signature"] == 1
    assert core.stats["reloads_applied"] == 4


def test_reload_reports_options_it_cannot_apply():
    site = Site(peers="AB")
    changed = dataclasses.replace(site.core.options, arp_timeout=60, icc_port=30001)
    _, change = site.core.reconfigure(changed)
    assert change["needs_restart"] == ["arp_timeout", "icc_port"]
    assert site.core.options.arp_timeout == 300

"""The directory's pure parts: key layout, signed values, the relist diff, RBAC commands."""
import json

import pytest

from ipop_ryu.core.keys import generate_private_key, signing_public_key_of
from ipop_ryu.directory import layout, rbac
from ipop_ryu.directory.session import parse_endpoints
from ipop_ryu.directory.signing import Refused, Signer, Verifier
from ipop_ryu.directory.view import Delete, Put, Resynced, View

KEYS = {n: generate_private_key() for n in ("A", "B")}
ALLOWED = {"A": ["10.0.3.0/25"], "B": ["10.0.3.128/25"]}


@pytest.fixture
def verifier():
    return Verifier.from_text({n: (signing_public_key_of(KEYS[n]), ALLOWED[n]) for n in KEYS})


def signed(node, ip, mac="02:00:00:00:00:01", seq=1, by=None):
    path = layout.host_key(node, ip)
    return path, Signer(by or node, KEYS[by or node]).encode(path, {"ip": ip, "mac": mac,
                                                                      "seq": seq})


def test_layout_round_trip_and_strangers():
    assert layout.parse(layout.host_key("A", "10.0.3.1")) == layout.Key("host", "A", "10.0.3.1")
    assert layout.parse(layout.alive_key("A")) == layout.Key("alive", "A")
    for stranger in ("/ipop/v1/hosts/A", "/ipop/v1/hosts//1.2.3.4", "/ipop/v1/hosts/A/x/y",
                     "/ipop/v1/sites/A/other", "/elsewhere/A/1"):
        assert layout.parse(stranger) is None


def test_signing_key_is_derived_deterministically():
    assert signing_public_key_of(KEYS["A"]) == signing_public_key_of(KEYS["A"])
    assert signing_public_key_of(KEYS["A"]) != signing_public_key_of(KEYS["B"])


def test_a_value_signed_by_its_site_is_accepted(verifier):
    path, raw = signed("A", "10.0.3.1")
    record = verifier.verify(path, raw)
    assert (record["node"], record["ip"], record["mac"], record["seq"]) == \
        ("A", "10.0.3.1", "02:00:00:00:00:01", 1)


def test_a_value_signed_by_the_wrong_site_is_refused(verifier):
    # B signs a claim under A's prefix, as B itself (node field B) and forged as A
    path, raw = signed("A", "10.0.3.1", by="B")
    with pytest.raises(Refused) as refused:
        verifier.verify(path, raw)
    assert refused.value.kind == "wrong-signer"
    record = json.loads(raw)
    record["node"] = "A"
    with pytest.raises(Refused) as refused:
        verifier.verify(path, json.dumps(record).encode())
    assert refused.value.kind == "bad-signature"


def test_a_value_moved_to_another_key_is_refused(verifier):
    _, raw = signed("A", "10.0.3.1")
    with pytest.raises(Refused) as refused:
        verifier.verify(layout.host_key("A", "10.0.3.2"), raw)
    assert refused.value.kind in ("bad-signature", "malformed")


def test_an_address_outside_allowed_ips_is_refused_and_counted(verifier):
    view = View(verifier.verify)
    path, raw = signed("A", "10.0.3.200")          # B's half
    assert view.put(path, raw, 5) is None
    assert view.refused == {"outside-allowed-ips": 1}
    assert view.records == {}


def test_garbage_and_unknown_sites_are_refused_by_kind(verifier):
    view = View(verifier.verify)
    view.put(layout.host_key("A", "10.0.3.1"), b"not json", 2)
    view.put(layout.host_key("C", "10.0.3.1"), b"{}", 3)
    view.put("/ipop/v1/other", b"{}", 4)
    assert view.refused == {"malformed": 1, "unknown-site": 1, "layout": 1}


def test_relist_diff_synthesises_deletes_and_reports_changes_only(verifier):
    view = View(verifier.verify)
    a1, b1, b2 = signed("A", "10.0.3.1"), signed("B", "10.0.3.129"), signed("B", "10.0.3.130")
    events = view.resync([a1, b1, b2], 10, "start")
    assert [type(e) for e in events] == [Put, Put, Put, Resynced]
    moved = signed("B", "10.0.3.129", mac="02:00:00:00:00:99", seq=2)
    events = view.resync([a1, moved], 20, "compacted")     # b2 vanished, b1 moved, a1 same
    assert events == [Delete(layout.Key("host", "B", "10.0.3.130"), 20),
                      Put(layout.Key("host", "B", "10.0.3.129"), verifier.verify(*moved), 20),
                      Resynced(20, "compacted")]
    assert view.resync([a1, moved], 21, "reconnect") == [Resynced(21, "reconnect")]


def test_a_refused_put_over_an_accepted_value_withdraws_it(verifier):
    view = View(verifier.verify)
    path, raw = signed("A", "10.0.3.1")
    view.put(path, raw, 2)
    assert view.put(path, b"tampered", 3) == Delete(layout.parse(path), 3)
    assert view.records == {}


def test_heartbeats_do_not_repeat_liveness(verifier):
    view = View(verifier.verify)
    signer, path = Signer("A", KEYS["A"]), layout.alive_key("A")
    assert isinstance(view.put(path, signer.encode(path, {"beat": 0}), 2), Put)
    assert view.put(path, signer.encode(path, {"beat": 1}), 3) is None
    assert view.alive() == ["A"]
    assert view.delete(path, 4) == Delete(layout.Key("alive", "A"), 4)


def test_rbac_gives_a_site_its_own_prefixes_and_read_on_the_rest():
    commands = rbac.add_site("A", "secret")
    grants = [c[2:5] for c in commands if c[:2] == ["role", "grant-permission"]]
    assert grants == [["ipop-A", "readwrite", "/ipop/v1/hosts/A/"],
                      ["ipop-A", "readwrite", "/ipop/v1/sites/A/"],
                      ["ipop-A", "read", "/ipop/v1/"]]
    assert not any("secret" in arg and not arg.startswith("--new-user-password=")
                   for c in commands for arg in c)
    with pytest.raises(ValueError, match="node id"):
        rbac.add_site("A/B", "x")


def test_endpoints_are_checked_one_by_one():
    assert parse_endpoints("http://a:2379, https://b:2379/") == ["http://a:2379",
                                                                  "https://b:2379"]
    with pytest.raises(ValueError, match="'a:2379'"):
        parse_endpoints("a:2379")

"""Hosts' names in ICC (issue 20, names across sites): an optional `name` on arp_reply and
nd_reply, an optional `names` object beside a bindings list. Sites from before names and sites
with them interoperate both ways."""
import json

import pytest

from ipop_ryu.core import icc

from .helpers import KEY

codec = icc.Codec(KEY)


def signed(body: dict) -> bytes:
    payload = json.dumps(body).encode()
    return icc.MAGIC + codec._sign(payload) + payload


# a bindings datagram as a site from before names writes it (the seed's encoder, as JSON)
OLD_BINDINGS = {"v": 1, "type": "bindings", "node": "B", "seq": 3, "ts": 1700000000.0,
                "bindings": [["10.0.3.7", "02:00:0a:00:03:07"],
                             ["10.0.3.8", "02:00:0a:00:03:08", 4]]}


def test_an_old_datagram_decodes_without_names():
    message = codec.decode(signed(OLD_BINDINGS))
    assert message["bindings"] == [("10.0.3.7", "02:00:0a:00:03:07", 0),
                                   ("10.0.3.8", "02:00:0a:00:03:08", 4)]
    assert message["names"] == {}
    reply = codec.decode(signed({"v": 1, "type": "arp_reply", "node": "B", "seq": 4, "ts": 5,
                                 "ip": "10.0.3.7", "mac": "02:00:0a:00:03:07"}))
    assert "name" not in reply.fields


def test_names_round_trip():
    fields = next(icc.bindings_fields([("10.0.3.7", "02:00:0a:00:03:07", 0, False, "c7"),
                                       ("10.0.3.8", "02:00:0a:00:03:08", 2, False, None)]))
    assert fields == {"bindings": [["10.0.3.7", "02:00:0a:00:03:07"],
                                   ["10.0.3.8", "02:00:0a:00:03:08", 2]],
                      "names": {"10.0.3.7": "c7"}}
    message = codec.decode(codec.encode("bindings", "B", 1, 5, **fields))
    assert message["names"] == {"10.0.3.7": "c7"}
    reply = codec.decode(codec.encode("arp_reply", "B", 2, 5, ip="10.0.3.7",
                                      mac="02:00:0a:00:03:07", name="c7"))
    assert reply["name"] == "c7"


def test_a_new_datagram_decodes_at_a_site_built_without_names(monkeypatch):
    """A site from before names knows neither field: its OPTIONAL lacks them, and
    parse_payload keeps only the fields it knows, so the claims still count there."""
    new = codec.encode("bindings", "B", 1, 5, bindings=[["10.0.3.7", "02:00:0a:00:03:07"]],
                       names={"10.0.3.7": "c7"})
    reply = codec.encode("nd_reply", "B", 2, 5, ip="fd00:3::7", mac="02:00:0a:00:03:07",
                         router=False, name="c7")
    monkeypatch.setattr(icc, "OPTIONAL", {"arp_reply": {"age": icc._number},
                                          "nd_reply": {"age": icc._number,
                                                       "router": icc._true_or_false}})
    message = codec.decode(new)
    assert message["bindings"] == [("10.0.3.7", "02:00:0a:00:03:07", 0)]
    assert "name" not in codec.decode(reply).fields


def test_the_names_field_is_checked_but_a_bad_name_costs_only_itself():
    base = dict(OLD_BINDINGS)
    for junk in ([], "c7", {}, {f"10.0.3.{i}": "x" for i in range(icc.MAX_BINDINGS + 1)}):
        with pytest.raises(icc.Drop) as caught:
            codec.decode(signed({**base, "names": junk}))
        assert caught.value.reason == icc.BAD_FIELD
    # names of addresses not in the list, and names that are not strings, are left out
    message = codec.decode(signed({**base, "names": {"10.0.3.7": "c7", "10.0.3.9": "c9",
                                                     "10.0.3.8": 8}}))
    assert message["names"] == {"10.0.3.7": "c7"}
    assert len(message["bindings"]) == 2
    with pytest.raises(icc.Drop):
        codec.decode(signed({"v": 1, "type": "arp_reply", "node": "B", "seq": 4, "ts": 5,
                             "ip": "10.0.3.7", "mac": "02:00:0a:00:03:07", "name": ""}))


def test_batches_with_names_fit_one_datagram():
    """Long names take room: every batch still fits MAX_DATAGRAM, signature and header in."""
    bindings = [(f"10.0.{i // 250}.{i % 250 + 1}", "02:00:00:00:%02x:%02x" % (i // 256, i % 256),
                 123456, False, "n" * 63) for i in range(200)]
    sent = 0
    for fields in icc.bindings_fields(bindings):
        datagram = codec.encode("bindings", "node-with-a-long-name", 2 ** 40, 1.7e9, **fields)
        assert len(datagram) <= icc.MAX_DATAGRAM
        assert len(codec.decode(datagram)["names"]) == len(fields["bindings"])
        sent += len(fields["bindings"])
    assert sent == 200

import json

import pytest

from ipop_ryu.core import icc

from .helpers import KEY

codec = icc.Codec(KEY)


def good(**fields):
    body = dict(sender_ip="10.0.3.5", sender_mac="02:00:0a:00:03:05", target_ip="10.0.3.7")
    body.update(fields)
    return codec.encode("arp_request", "A", 7, 1700000000.5, **body)


def signed(payload: bytes) -> bytes:
    return icc.MAGIC + codec._sign(payload) + payload


def test_round_trip():
    message = codec.decode(good())
    assert (message.type, message.node, message.seq, message.ts) == (
        "arp_request", "A", 7, 1700000000.5)
    assert message["target_ip"] == "10.0.3.7"


def reason(data):
    with pytest.raises(icc.Drop) as caught:
        codec.decode(data)
    return caught.value.reason


def test_signature_and_framing():
    data = good()
    assert reason(data[:20]) == icc.TRUNCATED
    assert reason(data + b" " * icc.MAX_DATAGRAM) == icc.OVERSIZED
    assert reason(b"XXXX" + data[4:]) == icc.BAD_MAGIC
    tampered = data[:-3] + b"8\"}"
    assert reason(tampered) == icc.BAD_SIGNATURE
    assert reason(icc.Codec(b"another key!!!!!").encode("arp_reply", "A", 1, 1,
                                                        ip="10.0.3.7", mac="02:00:00:00:00:07")
                  ) == icc.BAD_SIGNATURE
    unsigned = icc.MAGIC + bytes(32) + data[36:]
    assert reason(unsigned) == icc.BAD_SIGNATURE


def test_content_checks():
    header = {"v": 1, "type": "arp_reply", "node": "B", "seq": 1, "ts": 5,
              "ip": "10.0.3.7", "mac": "02:00:00:00:00:07"}
    assert codec.decode(signed(json.dumps(header).encode())).node == "B"
    assert reason(signed(b"\xff\xfe")) == icc.MALFORMED
    assert reason(signed(b"[1, 2]")) == icc.MALFORMED
    assert reason(signed(b"{" * 5000)) in (icc.MALFORMED, icc.OVERSIZED)
    assert reason(signed(json.dumps({**header, "v": 2}).encode())) == icc.BAD_VERSION
    assert reason(signed(json.dumps({**header, "type": "rm -rf"}).encode())) == icc.UNKNOWN_TYPE
    for name, value in [("ip", "10.0.3.300"), ("mac", "02:00:00:00:00"), ("seq", -1),
                        ("seq", True), ("node", "../etc"), ("ts", "now"), ("ip", 7)]:
        assert reason(signed(json.dumps({**header, name: value}).encode())) == icc.BAD_FIELD
    missing = dict(header)
    del missing["mac"]
    assert reason(signed(json.dumps(missing).encode())) == icc.BAD_FIELD


def test_deeply_nested_json_is_a_drop_not_a_crash():
    payload = b"[" * 600 + b"]" * 600
    assert reason(signed(payload)) in (icc.MALFORMED, icc.OVERSIZED)
    small = b'{"a":' * 200 + b"1" + b"}" * 200
    assert reason(signed(small)) in (icc.MALFORMED, icc.BAD_VERSION)


def test_regressions_found_by_fuzzing():
    # True == 1 in Python, and a list is not a dict key: both once escaped as exceptions
    assert reason(signed(b'{"v": true, "type": "hello"}')) == icc.BAD_VERSION
    assert reason(signed(b'{"v": 1, "type": []}')) == icc.UNKNOWN_TYPE


def test_a_hellos_gateway_fields_are_optional_and_a_bad_one_is_left_out():
    hello = codec.decode(codec.encode("hello", "B", 1, 1700000000.0, boot="b1",
                                      gateway="10.0.3.1/24", gateway_mac="02:49:50:4f:50:01"))
    assert (hello["gateway"], hello["gateway_mac"]) == ("10.0.3.1/24", "02:49:50:4f:50:01")
    bad = codec.decode(codec.encode("hello", "B", 2, 1700000000.0, boot="b1", gateway=7,
                                    gateway_mac="not a mac", gateway6="fd00:3::1/64"))
    assert bad.fields == {"boot": "b1", "gateway6": "fd00:3::1/64"}, "still a hello"
    assert "gateway" not in codec.decode(codec.encode("hello", "B", 3, 1700000000.0,
                                                      boot="b1")).fields

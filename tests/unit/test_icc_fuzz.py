"""Property-based fuzzing of the ICC decoder: whatever arrives, the result is a valid
Message or a Drop with a known reason, never another exception."""
import json

from hypothesis import given, settings, strategies as st

from ipop_ryu.core import icc

from .helpers import KEY

codec = icc.Codec(KEY)


def decode(data):
    try:
        message = codec.decode(data)
    except icc.Drop as drop:
        assert drop.reason in icc.DROP_REASONS
        return None
    assert message.type in icc.SCHEMAS and icc.is_node_id(message.node)
    assert set(message.fields) == set(icc.SCHEMAS[message.type])
    return message


def signed(payload: bytes) -> bytes:
    return icc.MAGIC + codec._sign(payload) + payload


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                      children, max_size=4),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=1600))
def test_random_bytes(data):
    assert decode(data) is None or data.startswith(icc.MAGIC)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_signed_payloads(payload):
    decode(signed(payload))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "type", "node", "seq", "ts", "ip", "mac", "boot",
                                        "sender_ip", "sender_mac", "target_ip", "x"]),
                       json_values, max_size=10))
def test_signed_json_objects_of_any_shape(body):
    decode(signed(json.dumps(body).encode()))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_any_single_byte_change_of_a_valid_datagram_is_dropped(position, value):
    data = bytearray(codec.encode("arp_reply", "B", 7, 1700000000.0, ip="10.0.3.7",
                                  mac="02:00:0a:00:03:07"))
    position %= len(data)
    if data[position] == value:
        return
    data[position] = value
    assert decode(bytes(data)) is None

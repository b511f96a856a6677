"""The fast IPv4 checks agree with `ipaddress` on every input."""
import ipaddress

from hypothesis import given, strategies as st

from ipop_ryu.core.addr import Subnets, ipv4_int


def reference(text):
    try:
        return int(ipaddress.IPv4Address(text))
    except (ipaddress.AddressValueError, ValueError, TypeError):
        return None


dotted = st.lists(st.integers(0, 300).map(str) | st.sampled_from(["01", "0x1", "", " 1", "-1"]),
                  min_size=1, max_size=5).map(".".join)


@given(dotted | st.text(max_size=20) | st.integers() | st.none())
def test_ipv4_int_agrees_with_ipaddress(text):
    assert ipv4_int(text) == (reference(text) if isinstance(text, str) else None)


@given(st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1), st.integers(0, 32))
def test_subnets_membership_agrees_with_ipaddress(address, network, prefix):
    net = ipaddress.IPv4Network((network, prefix), strict=False)
    ip = str(ipaddress.IPv4Address(address))
    assert (ip in Subnets([net])) == (ipaddress.IPv4Address(address) in net)


def test_subnets_reject_what_is_not_an_address():
    subnets = Subnets(["10.0.3.0/24", "192.0.2.0/24"])
    assert "10.0.3.7" in subnets and "192.0.2.1" in subnets
    assert "10.0.4.7" not in subnets and "10.0.3" not in subnets and None not in subnets
    assert not Subnets([]) and subnets

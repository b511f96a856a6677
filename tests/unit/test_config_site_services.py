"""The site-services options: gateway, site_address and dhcp_range checked against the
segment, this site's allowed_ips and every other site's."""
import ipaddress

import pytest

from ipop_ryu.core.config import GATEWAY_MAC, ConfigError, link_local_of, parse

CONF = "/etc/ipop/site.conf"


@pytest.fixture
def peers_file(tmp_path):
    path = tmp_path / "peers.ini"
    path.write_text("[A]\nendpoint = 192.0.2.1:30000\nallowed_ips = 10.0.3.0/26, 10.0.3.1/32\n"
                    "[B]\nendpoint = 192.0.2.2:30000\nallowed_ips = 10.0.3.64/26\n"
                    "[C]\nendpoint = 192.0.2.3:30000\n")
    return str(path)


def site(**raw):
    return parse({"node_id": "A", "icc": "off", **raw}, source=lambda name: CONF)


def test_no_site_services_by_default():
    options = site()
    assert not options.site_services and options.gateway is None
    assert options.gateway_mac == GATEWAY_MAC and options.dns_domain == "lxc"
    assert options.port_security == "none" and options.gateway_addresses == ()


def test_a_full_site(peers_file):
    options = site(gateway="10.0.3.1/24", gateway6="fd00:3::1/64", site_address="10.0.3.2",
                   dhcp_range="10.0.3.10-10.0.3.60", gateway_mac="02:49:50:4F:50:01",
                   peers_file=peers_file, dns_domain="Lab.", port_security="dhcp")
    assert options.site_services
    assert options.gateway == ipaddress.ip_interface("10.0.3.1/24")
    assert str(options.gateway.network) == "10.0.3.0/24"
    assert options.site_address == "10.0.3.2" and str(options.dhcp_range) == \
        "10.0.3.10-10.0.3.60"
    assert "10.0.3.60" in options.dhcp_range and "10.0.3.61" not in options.dhcp_range
    assert options.gateway_mac == "02:49:50:4f:50:01" and options.dns_domain == "lab"
    assert options.gateway_link_local == "fe80::49:50ff:fe4f:5001"
    assert options.gateway_addresses == ("10.0.3.1", "fd00:3::1", "fe80::49:50ff:fe4f:5001")


def test_an_ipv6_site_address_beside_gateway6():
    options = site(gateway="10.0.3.1/24", gateway6="fd00:3::1/64", site_address="10.0.3.2",
                   site_address6="fd00:3::2")
    assert options.site_address6 == "fd00:3::2"
    assert "fd00:3::2" not in options.gateway_addresses      # a host's like any other


def test_link_local_flips_the_universal_bit():
    assert link_local_of("00:11:22:33:44:55") == "fe80::211:22ff:fe33:4455"


@pytest.mark.parametrize("raw,option,says", [
    ({"gateway": "10.0.3.1"}, "gateway", "ADDRESS/PREFIX"),
    ({"gateway": "10.0.3.0/24"}, "gateway", "network's own address"),
    ({"gateway": "fd00::1/64"}, "gateway", "IPv4"),
    ({"gateway": "10.0.3.1/33"}, "gateway", ""),
    ({"gateway": "10.0.3.1/24", "gateway6": "10.0.3.1/24"}, "gateway6", "IPv6"),
    ({"gateway": "10.0.3.1/24", "gateway6": "fe80::1/64"}, "gateway6", "unicast"),
    ({"gateway_mac": "01:00:5e:00:00:01"}, "gateway_mac", "unicast"),
    ({"gateway_mac": "02:49:50"}, "gateway_mac", "MAC"),
    ({"site_address": "10.0.3.2"}, "site_address", "needs gateway"),
    ({"dhcp_range": "10.0.3.10-10.0.3.99"}, "dhcp_range", "needs gateway"),
    ({"gateway6": "fd00:3::1/64"}, "gateway6", "needs gateway"),
    ({"gateway": "10.0.3.1/24", "site_address": "10.0.4.2"}, "site_address", "outside"),
    ({"gateway": "10.0.3.1/24", "site_address": "10.0.3.1"}, "site_address", "gateway's"),
    ({"gateway": "10.0.3.1/24", "site_address": "10.0.3.255"}, "site_address", "host address"),
    ({"gateway": "10.0.3.1/24", "site_address": "nope"}, "site_address", ""),
    ({"gateway": "10.0.3.1/24", "dhcp_range": "10.0.3.10"}, "dhcp_range", "START-END"),
    ({"gateway": "10.0.3.1/24", "dhcp_range": "10.0.3.99-10.0.3.10"}, "dhcp_range", "after"),
    ({"gateway": "10.0.3.1/24", "dhcp_range": "10.0.3.10-10.0.4.9"}, "dhcp_range", "inside"),
    ({"gateway": "10.0.3.1/24", "dhcp_range": "10.0.3.0-10.0.3.9"}, "dhcp_range", "network"),
    ({"gateway": "10.0.3.1/24", "dhcp_range": "10.0.3.1-10.0.3.9"}, "dhcp_range",
     "contains the gateway"),
    ({"gateway": "10.0.3.1/24", "site_address": "10.0.3.20",
      "dhcp_range": "10.0.3.10-10.0.3.99"}, "dhcp_range", "contains the site_address"),
    ({"gateway": "10.0.3.1/24", "dhcp_range": "fd00::1-fd00::9"}, "dhcp_range", "IPv4"),
    ({"gateway": "10.0.3.1/24", "site_address6": "fd00:3::2"}, "site_address6",
     "needs gateway6"),
    ({"gateway": "10.0.3.1/24", "gateway6": "fd00:3::1/64", "site_address6": "fd00:4::2"},
     "site_address6", "outside gateway6's prefix fd00:3::/64"),
    ({"gateway": "10.0.3.1/24", "gateway6": "fd00:3::1/64", "site_address6": "fd00:3::1"},
     "site_address6", "gateway's address"),
    ({"gateway": "10.0.3.1/24", "gateway6": "fd00:3::1/64", "site_address6": "10.0.3.2"},
     "site_address6", "outside"),
    ({"dns_domain": "bad domain"}, "dns_domain", "DNS domain"),
    ({"port_security": "strict"}, "port_security", "none or dhcp"),
])
def test_bad_values_name_option_and_file(raw, option, says):
    with pytest.raises(ConfigError) as caught:
        site(**raw)
    message = str(caught.value)
    assert message.startswith(f"{CONF}: [ipop] {option}:") and says in message
    assert "\n" not in message


@pytest.mark.parametrize("raw,says", [
    ({"dhcp_range": "10.0.3.10-10.0.3.70"}, "not inside this site's allowed_ips"),
    ({"dhcp_range": "10.0.3.2-10.0.3.9"}, ""),      # inside A's: accepted
    ({"site_address": "10.0.3.100"}, "outside this site's allowed_ips"),
    ({"gateway6": "fd00:3::1/64", "site_address6": "fd00:3::2"},
     "outside this site's allowed_ips"),      # A's allowed_ips hold no IPv6
])
def test_own_allowed_ips(peers_file, raw, says):
    def build():
        return site(gateway="10.0.3.1/24", peers_file=peers_file, **raw)
    if not says:
        assert build().dhcp_range is not None
        return
    with pytest.raises(ConfigError) as caught:
        build()
    assert says in str(caught.value) and peers_file in str(caught.value)


def test_a_pool_overlapping_another_site_is_refused(tmp_path):
    path = tmp_path / "peers.ini"
    path.write_text("[B]\nendpoint = 192.0.2.2:30000\nallowed_ips = 10.0.3.64/26, fd00::/64\n")
    with pytest.raises(ConfigError) as caught:
        site(gateway="10.0.3.1/24", peers_file=str(path), dhcp_range="10.0.3.10-10.0.3.64")
    message = str(caught.value)
    assert message.startswith(f"{CONF}: [ipop] dhcp_range: 10.0.3.10-10.0.3.64 overlaps [B]")
    assert "10.0.3.64/26" in message and str(path) in message
    # the slice just below B's is fine, and a peer without allowed_ips restricts nothing
    assert site(gateway="10.0.3.1/24", peers_file=str(path),
                dhcp_range="10.0.3.10-10.0.3.63").dhcp_range.end == "10.0.3.63"

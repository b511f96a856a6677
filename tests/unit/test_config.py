import pytest

from ipop_ryu.core.config import ConfigError, parse


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "icc.key"
    path.write_text("0123456789abcdef0123456789abcdef\n")
    return str(path)


def test_defaults_and_peers(key_file):
    options = parse({"node_id": "A", "peers": "B@192.0.2.2:30000, C@192.0.2.3:30001",
                     "icc_key_file": key_file})
    assert options.icc and options.icc_port == 30000 and options.arp_timeout == 300
    assert [(p.name, p.host, p.port) for p in options.peers] == [
        ("B", "192.0.2.2", 30000), ("C", "192.0.2.3", 30001)]
    assert options.icc_key == b"0123456789abcdef0123456789abcdef"
    assert options.is_overlay_port("ipop-B") and options.is_overlay_port("ipop")
    assert not options.is_overlay_port("h3")


def test_overlay_patterns(key_file):
    options = parse({"node_id": "A", "icc": "off", "overlay_ports": "vxlan*, tap0"})
    assert options.is_overlay_port("vxlan-7") and options.is_overlay_port("tap0")
    assert not options.is_overlay_port("tap01") and not options.is_overlay_port("ipop-B")


@pytest.mark.parametrize("raw,option", [
    ({}, "node_id"),
    ({"node_id": "A b"}, "node_id"),
    ({"node_id": "A", "icc": "maybe"}, "icc"),
    ({"node_id": "A", "icc_port": "70000"}, "icc_port"),
    ({"node_id": "A", "icc_port": "abc"}, "icc_port"),
    ({"node_id": "A", "peers": "B@192.0.2.2"}, "peers"),
    ({"node_id": "A", "peers": "B@host.example:30000"}, "peers"),
    ({"node_id": "A", "peers": "A@192.0.2.1:30000"}, "peers"),
    ({"node_id": "A", "peers": "B@192.0.2.2:1,B@192.0.2.3:1"}, "peers"),
    ({"node_id": "A", "arp_timeout": "0"}, "arp_timeout"),
    ({"node_id": "A", "overlay_ports": "ip*op"}, "overlay_ports"),
    ({"node_id": "A"}, "icc_key_file"),
    ({"node_id": "A", "icc_key_file": "/nonexistent/key"}, "icc_key_file"),
    ({"node_id": "A", "icc": "off", "switch_address": "ptcp:6654"}, "switch_address"),
    ({"node_id": "A", "icc": "off", "switch_address": "unix:relative.sock"}, "switch_address"),
    ({"node_id": "A", "icc": "off", "switch_address": "tcp:localhost:6654"}, "switch_address"),
    ({"node_id": "A", "icc": "off", "switch_address": "tcp:127.0.0.1:0"}, "switch_address"),
])
def test_errors_name_option_and_file(raw, option):
    with pytest.raises(ConfigError) as caught:
        parse(raw, source=lambda name: "/etc/ipop/site.conf")
    assert str(caught.value).startswith(f"/etc/ipop/site.conf: [ipop] {option}:")


def test_short_key_is_refused(tmp_path):
    path = tmp_path / "key"
    path.write_text("short")
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        parse({"node_id": "A", "icc_key_file": str(path)})


@pytest.mark.parametrize("text,kind,target", [
    ("unix:/var/run/openvswitch/br0.ipop", "unix", "/var/run/openvswitch/br0.ipop"),
    ("tcp:127.0.0.1:6654", "tcp", ("127.0.0.1", 6654)),
    ("tcp:[::1]:6654", "tcp", ("::1", 6654)),
])
def test_switch_address(text, kind, target):
    address = parse({"node_id": "A", "icc": "off", "switch_address": text}).switch_address
    assert (address.kind, address.target, str(address)) == (kind, target, text)


def test_no_switch_address_by_default():
    assert parse({"node_id": "A", "icc": "off"}).switch_address is None

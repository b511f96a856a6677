"""`ipop-ryu bridge setup --encrypt`: the plan read from a site's files, and its commands."""
import pytest

from ipop_ryu.cli import CommandError, main
from ipop_ryu.cli.bridge_wg import plan, removal_commands
from ipop_ryu.core.keys import generate_private_key, public_key_of
from ipop_ryu.overlay.wireguard import inner_mtu, set_argv

KEYS = {n: generate_private_key() for n in "ABC"}
PUB = {n: public_key_of(k) for n, k in KEYS.items()}


def site_files(tmp_path, sections=None):
    (tmp_path / "A.key").write_text(KEYS["A"] + "\n")
    sections = sections if sections is not None else {
        "A": "endpoint = 198.51.100.1:30000\nwireguard_endpoint = 192.0.2.1:51821\n",
        "B": "endpoint = 198.51.100.2:30000\nwireguard_endpoint = 192.0.2.2:51820\n",
        "C": "endpoint = [2001:db8::3]:30000\nwireguard_endpoint = [2001:db8:1::3]:51820\n"}
    (tmp_path / "peers.conf").write_text("".join(
        f"[{name}]\npublic_key = {PUB[name]}\n{body}\n" for name, body in sections.items()))
    conf = tmp_path / "A.conf"
    conf.write_text(f"[ipop]\nnode_id = A\nprivate_key_file = {tmp_path}/A.key\n"
                    f"peers_file = {tmp_path}/peers.conf\n")
    return str(conf)


def test_plan_from_the_site_files(tmp_path):
    site = plan(site_files(tmp_path), "wg-test")
    assert (site.address, site.listen_port) == ("198.51.100.1", 51821)
    assert site.tunnel_peers == [("ipop-B", "198.51.100.2"), ("ipop-C", "2001:db8::3")]
    commands = site.commands(existing_peers=[PUB["B"], "old-peer-key"], kernel=True)
    assert commands[0] == ["ip", "link", "add", "wg-test", "type", "wireguard"]
    assert commands[1] == set_argv("wg-test", f"{tmp_path}/A.key", 51821, site.wg_peers,
                                   ["old-peer-key"])
    assert commands[1][-3:] == ["peer", "old-peer-key", "remove"], "stale peers removed"
    assert " ".join(commands[1]).count("endpoint [2001:db8:1::3]:51820 allowed-ips "
                                       "2001:db8::3/128") == 1
    assert ["ip", "address", "replace", "198.51.100.1/32", "dev", "wg-test"] in commands
    assert ["ip", "route", "replace", "198.51.100.2/32", "dev", "wg-test"] in commands
    userspace = site.commands(kernel=False)[0]
    assert userspace[-2:] == ["wireguard-go", "wg-test"] and \
        "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1" in userspace
    assert site.commands(exists=True)[0][:2] == ["wg", "set"], "an existing link is kept"
    assert inner_mtu() == 1370 and inner_mtu(family=6) == 1350


@pytest.mark.parametrize("sections,expected", [
    ({"B": "endpoint = 198.51.100.2:30000\nwireguard_endpoint = 192.0.2.2:51820\n"},
     "no [A] section"),
    ({"A": "endpoint = 198.51.100.1:30000\n", "B": "endpoint = 198.51.100.2:30000\n"},
     "[B] needs public_key and wireguard_endpoint"),
])
def test_plan_names_what_is_missing(tmp_path, sections, expected):
    with pytest.raises(CommandError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        plan(site_files(tmp_path, sections))


def test_encrypt_argument_errors(tmp_path, capsys):
    assert main(["bridge", "setup", "br0", "--encrypt", "--dry-run"]) == 2
    assert "--encrypt needs --config" in capsys.readouterr().err
    conf = site_files(tmp_path)
    assert main(["bridge", "setup", "br0", "--encrypt", "--config", conf, "--peer",
                 "B=192.0.2.2", "--dry-run"]) == 2
    assert "drop --peer" in capsys.readouterr().err


def test_encrypt_dry_run_prints_wireguard_then_ovs(tmp_path, capsys):
    conf = site_files(tmp_path)
    assert main(["bridge", "setup", "br0", "--datapath-type", "netdev", "--encrypt",
                 "--config", conf, "--wg-interface", "wgnothere0", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("wg set wgnothere0 private-key")
    # the tunnels inside WireGuard: kernel VXLAN devices between the tunnel addresses
    assert [line for line in lines if " type vxlan " in line][0].split(" remote ")[1] == \
        "198.51.100.2 local 198.51.100.1 dstport 4789 nolearning"
    assert lines[-1].startswith("ovs-vsctl") and "type=system" in lines[-1]


def test_removal_commands(tmp_path):
    (tmp_path / "wg-user.sock").write_text("")
    assert removal_commands("wg-user", str(tmp_path)) == [
        ["rm", "-f", f"{tmp_path}/wg-user.sock"]], "wireguard-go: its socket"
    assert removal_commands("lo", str(tmp_path)) == [["ip", "link", "del", "lo"]], \
        "a kernel link (any link that is there without a socket)"
    assert removal_commands("wgnothere0", str(tmp_path)) == [], "gone already"


def test_teardown_encrypt_dry_run(capsys):
    assert main(["bridge", "teardown", "br0", "--encrypt", "--wg-interface", "lo",
                 "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines() == ["ovs-vsctl --timeout=20 del-br br0",
                                                    "ip link del lo"]
    assert main(["bridge", "teardown", "br0", "--encrypt", "--wg-interface", "bad name!",
                 "--dry-run"]) == 2
    assert "--wg-interface" in capsys.readouterr().err

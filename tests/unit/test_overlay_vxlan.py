"""The pure parts of the by-hand path: peer spelling, VXLAN device commands, the overlay MTU,
which tunnels bridge setup picks, and the ofport check's reading of OVS's answer."""
import json

import pytest

from ipop_ryu.cli import bridge_overlay as bo
from ipop_ryu.cli import main
from ipop_ryu.host import CommandError, ovsctl
from ipop_ryu.host.peers import PeerArg, parse_peer
from ipop_ryu.overlay import vxlan
from ipop_ryu.overlay.wireguard import inner_mtu


@pytest.mark.parametrize("text, peer", [
    ("B=192.0.2.2", PeerArg("B", "192.0.2.2")),
    ("B=192.0.2.2:30001", PeerArg("B", "192.0.2.2", 30001)),
    ("B@192.0.2.2:30001", PeerArg("B", "192.0.2.2", 30001)),
    ("site.c=2001:DB8::2", PeerArg("site.c", "2001:db8::2")),
    ("C=[2001:db8::2]:30000", PeerArg("C", "2001:db8::2", 30000)),
    ("C@[2001:db8::2]:30000", PeerArg("C", "2001:db8::2", 30000)),
])
def test_one_spelling_of_a_peer(text, peer):
    assert parse_peer(text) == peer


@pytest.mark.parametrize("text, words", [
    ("B", "no '=' after the name"), ("B@192.0.2.2", "NAME@HOST needs its :PORT"),
    ("B=192.0.2.2:0", "port '0' is not from 1 to 65535"), ("B=host:1", "'host' is not an IP"),
    ("-x=192.0.2.2", "name '-x'"), ("B=[::1", "not an IP"),
])
def test_bad_peers_name_the_option_and_the_forms(text, words):
    with pytest.raises(CommandError) as err:
        parse_peer(text, "--peer")
    assert words in str(err.value) and str(err.value).startswith(f"bad --peer {text!r}: ")
    assert "expected NAME=HOST[:PORT] (or NAME@HOST:PORT)" in str(err.value)


def test_a_peer_as_the_peers_option_spells_it():
    assert parse_peer("B=192.0.2.2").icc("30000") == "B@192.0.2.2:30000"
    assert parse_peer("B=[2001:db8::2]:4").icc("30000") == "B@[2001:db8::2]:4"


def test_init_and_bridge_setup_take_the_same_spelling(tmp_path, capsys):
    assert main(["init", "--node-id", "A", "--peer", "B=192.0.2.2", "--icc-address",
                 "192.0.2.1", "--switch-address", "", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "peers = B@192.0.2.2:30000" in (tmp_path / "A.conf").read_text()
    assert " --peer B=192.0.2.2 " in out, "the next step writes it the same way"


def test_overlay_mtu():
    assert vxlan.overlay_mtu(1500) == 1450 and vxlan.overlay_mtu(1500, family=6) == 1430
    assert vxlan.overlay_mtu(9000, "geneve") == 8950
    assert inner_mtu() == 1370, "WireGuard as before: 1500 - 80 - 50"


def test_pair_vni_is_the_same_from_both_ends_and_differs_per_pair():
    a, b, c = "192.0.2.1", "192.0.2.2", "192.0.2.3"
    assert vxlan.pair_vni(a, b) == vxlan.pair_vni(b, a)
    assert vxlan.pair_vni(a, b) != vxlan.pair_vni(a, c)
    assert vxlan.pair_vni("2001:DB8::1", "2001:db8::2") == vxlan.pair_vni("2001:db8::2",
                                                                          "2001:db8::1")
    assert all(1 <= vxlan.pair_vni(a, f"10.0.{i}.1") <= vxlan.MAX_VNI for i in range(50))


def test_device_commands():
    assert vxlan.add_argv("ipop-B", 7, "192.0.2.2", "192.0.2.1", ns="n1") == [
        "ip", "-n", "n1", "link", "add", "ipop-B", "type", "vxlan", "id", "7", "remote",
        "192.0.2.2", "local", "192.0.2.1", "dstport", "4789", "nolearning"]
    assert vxlan.up_argv("ipop-B", 1450) == ["ip", "link", "set", "ipop-B", "mtu", "1450",
                                             "alias", "ipop-ryu", "up"]
    assert vxlan.delete_argv("ipop-B") == ["ip", "link", "del", "ipop-B"]


def link(vni=7, remote="192.0.2.2", local="192.0.2.1", alias="ipop-ryu", kind="vxlan"):
    return {"ifalias": alias, "linkinfo": {"info_kind": kind, "info_data": {
        "id": vni, "remote": remote, "local": local, "port": 4789}}}


TUNNEL = bo.Tunnel("ipop-B", "192.0.2.2", "192.0.2.1", 7)


def test_kernel_commands_make_keep_or_remake_our_device():
    add = vxlan.add_argv("ipop-B", 7, "192.0.2.2", "192.0.2.1")
    up = vxlan.up_argv("ipop-B", 1450)
    assert bo.kernel_commands([TUNNEL], {}, 1450) == [add, up]
    assert bo.kernel_commands([TUNNEL], {"ipop-B": link()}, 1450) == [up], "as wanted"
    assert bo.kernel_commands([TUNNEL], {"ipop-B": link(remote="192.0.2.9")}, 1450) == [
        vxlan.delete_argv("ipop-B"), add, up]
    with pytest.raises(CommandError, match="ipop-B exists and was not made by ipop-ryu"):
        bo.kernel_commands([TUNNEL], {"ipop-B": link(alias=None)}, 1450)


def test_only_our_devices_of_removed_peers_are_deleted():
    links = {"ipop-Z": link(), "ipop-Y": link(alias=None)}
    assert bo.stale_device_commands(["ipop-Z", "ipop-Y", "ipop-X"], links) == [
        vxlan.delete_argv("ipop-Z")]


@pytest.mark.parametrize("datapath, tunnel, kernel, underlay, peers, key, picked", [
    ("system", "vxlan", True, None, 2, None, bo.OVS),
    ("system", "geneve", False, None, 1, 5, bo.OVS),
    ("netdev", "vxlan", True, None, 3, None, bo.KERNEL),
    ("netdev", "vxlan", True, None, 1, 5, bo.KERNEL),
    ("netdev", "vxlan", False, "eth0", 2, None, bo.OVS_UNDERLAY),
    ("netdev", "geneve", True, "eth0", 2, 5, bo.OVS_UNDERLAY),
    ("netdev", "vxlan", False, None, 1, None, "this kernel makes none"),
    ("netdev", "geneve", True, None, 1, None, "--tunnel geneve on the userspace datapath"),
    ("netdev", "vxlan", True, None, 2, 5, "--key with kernel VXLAN devices"),
    ("system", "vxlan", True, "eth0", 1, None, "--underlay is for --datapath-type netdev"),
])
def test_choose(datapath, tunnel, kernel, underlay, peers, key, picked):
    if picked in (bo.OVS, bo.KERNEL, bo.OVS_UNDERLAY):
        assert bo.choose(datapath, tunnel, kernel, underlay, peers, key) == picked
    else:
        with pytest.raises(CommandError, match=picked):
            bo.choose(datapath, tunnel, kernel, underlay, peers, key)


def test_overlay_mtu_of_tunnels_is_the_smallest():
    tunnels = [TUNNEL, bo.Tunnel("ipop-C", "2001:db8::3", "2001:db8::1", 8, underlay_mtu=1500),
               bo.Tunnel("ipop-D", "192.0.2.4", "192.0.2.1", 9, underlay_mtu=9000)]
    assert bo.overlay_mtu(tunnels) == 1430
    assert bo.overlay_mtu([]) is None
    assert bo.mtu_line(1450, [TUNNEL], "vxlan").startswith(
        "overlay MTU 1450 (underlay 1500 less vxlan's 50): ")


def test_failed_interfaces_reads_ofport_and_error():
    table = {"headings": ["name", "ofport", "error"], "data": [
        ["br0", 65534, ["set", []]], ["c1", 1, ["set", []]],
        ["bad0", -1, "could not open network device bad0 (No such device)"],
        ["brs", ["set", []], ["set", []]]]}
    text = json.dumps(table)
    assert bo.failed_interfaces(text, ["br0", "c1"]) == []
    assert bo.failed_interfaces(text, ["br0", "bad0", "brs", "gone"]) == [
        ("bad0", "could not open network device bad0 (No such device)"), ("brs", ""),
        ("gone", "")]


def test_underlay_moves():
    assert bo.underlay_moves("eth0", [], []) == [["ip", "link", "set", "br-phy", "up"]], \
        "moved before: nothing left to move"
    moves = bo.underlay_moves("eth0", ["192.0.2.1/24"], [("default", "192.0.2.254")])
    assert moves == [["ip", "address", "del", "192.0.2.1/24", "dev", "eth0"],
                     ["ip", "link", "set", "br-phy", "up"],
                     ["ip", "address", "replace", "192.0.2.1/24", "dev", "br-phy"],
                     ["ip", "route", "replace", "default", "via", "192.0.2.254", "dev",
                      "br-phy"]]


def test_rundirs_of_an_ovs_process():
    assert list(ovsctl._rundirs_of(["--pidfile=/run/x/ovs-vswitchd.pid"], {})) == ["/run/x"]
    assert list(ovsctl._rundirs_of(["conf.db", "--remote=punix:/s/db.sock"], {})) == ["/s"]
    assert list(ovsctl._rundirs_of(["--pidfile", "--detach"], {"OVS_RUNDIR": "/r"})) == ["/r"]
    assert list(ovsctl._rundirs_of(["--pidfile"], {})) == [ovsctl.DEFAULT_RUNDIR]


def test_ovs_elsewhere_is_named(monkeypatch):
    monkeypatch.delenv("OVS_RUNDIR", raising=False)
    monkeypatch.setattr(ovsctl, "running_rundirs", lambda: ["/var/run/ipop-ovs"])
    assert ovsctl.start_hint() == ("export OVS_RUNDIR=/var/run/ipop-ovs (where this host's "
                                   "Open vSwitch runs)")
    monkeypatch.setenv("OVS_RUNDIR", "/var/run/ipop-ovs")
    assert ovsctl.elsewhere() is None


def test_init_refuses_a_switch_address_where_ovs_does_not_run(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("OVS_RUNDIR", raising=False)
    monkeypatch.setattr(ovsctl, "running_rundirs", lambda: ["/var/run/ipop-ovs"])
    status = main(["init", "--node-keys", "--node-id", "A", "--icc-address", "192.0.2.1",
                   "--dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert "export OVS_RUNDIR=/var/run/ipop-ovs" in err and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []

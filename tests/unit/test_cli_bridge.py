"""`ipop-ryu bridge`: the ovs-vsctl command lines, argument checks and error paths (no OVS)."""
import json
import os
import re
import shlex
import subprocess

import pytest

from ipop_ryu.cli import CommandError, main
from ipop_ryu.cli import bridge, bridge_overlay
from ipop_ryu.host import ovsctl
from ipop_ryu.overlay import vxlan

HEAD = ["ovs-vsctl", "--timeout=20", "--", "--may-exist", "add-br", "br1",
        "--", "set", "bridge", "br1", "protocols=OpenFlow13", "fail-mode=secure",
        "other-config:disable-in-band=true"]


def tail(bridge_name, target, max_backoff=1000, inactivity_probe=5000):
    """The controller, then its reconnect and probe timers, in the same transaction."""
    return ["--", "set-controller", bridge_name, target, "--", "set", "controller",
            bridge_name, f"max_backoff={max_backoff}", f"inactivity_probe={inactivity_probe}"]


def test_setup_argv_minimal_is_one_transaction():
    assert bridge.setup_argv("br1", "tcp:127.0.0.1:6653") == HEAD + tail(
        "br1", "tcp:127.0.0.1:6653")


def test_setup_argv_controller_timers():
    argv = bridge.setup_argv("br1", "tcp:127.0.0.1:6653", max_backoff=2000,
                             inactivity_probe=0)
    assert argv == HEAD + tail("br1", "tcp:127.0.0.1:6653", 2000, 0)


def test_setup_argv_ports_tunnels_datapath():
    argv = bridge.setup_argv("br1", "tcp:10.0.0.1:6653", ports=["veth1"],
                             tunnels=[("ipop-B", "192.0.2.2", 5000),
                                      ("ipop-C", "2001:db8::3", 77)],
                             tunnel="geneve", datapath_type="netdev")
    assert argv == HEAD + ["datapath_type=netdev",
                           "--", "--may-exist", "add-port", "br1", "veth1",
                           "--", "--may-exist", "add-port", "br1", "ipop-B",
                           "--", "set", "interface", "ipop-B", "type=geneve",
                           'options={remote_ip="192.0.2.2",key="5000"}',
                           "--", "--may-exist", "add-port", "br1", "ipop-C",
                           "--", "set", "interface", "ipop-C", "type=geneve",
                           'options={remote_ip="2001:db8::3",key="77"}',
                           *tail("br1", "tcp:10.0.0.1:6653")]
    assert argv.count("ovs-vsctl") == 1


def test_setup_argv_kernel_devices_are_plain_ports_with_no_tunnel_options():
    argv = bridge.setup_argv("br1", "tcp:127.0.0.1:6653", tunnels=[("ipop-B", "192.0.2.2", 9)],
                             tunnel="system")
    assert argv[argv.index("ipop-B") + 1:argv.index("ipop-B") + 7] == [
        "--", "set", "interface", "ipop-B", "type=system", "options={}"]


def test_setup_argv_requests_the_overlay_mtu_on_local_ports():
    argv = bridge.setup_argv("br1", "tcp:127.0.0.1:6653", ports=["veth1", "veth2"], mtu=1450)
    assert shlex.join(argv).count("mtu_request=1450") == 2
    assert "-- --may-exist add-port br1 veth2 -- set interface veth2 mtu_request=1450" in \
        shlex.join(argv)


def test_setup_argv_underlay_bridge_first():
    argv = bridge.setup_argv("br1", "tcp:127.0.0.1:6653", underlay=("ul0", 1500))
    assert shlex.join(argv).startswith(
        "ovs-vsctl --timeout=20 -- --may-exist add-br br-phy -- set bridge br-phy "
        "datapath_type=netdev -- set interface br-phy mtu_request=1500 -- --may-exist "
        "add-port br-phy ul0 -- --may-exist add-br br1")


def test_teardown_argv():
    assert bridge.teardown_argv("br1") == ["ovs-vsctl", "--timeout=20", "del-br", "br1"]


@pytest.mark.parametrize("text, expected", [
    ("B=192.0.2.2", ("ipop-B", "192.0.2.2")),
    ("B=192.0.2.2:30000", ("ipop-B", "192.0.2.2")),
    ("B@192.0.2.2:30000", ("ipop-B", "192.0.2.2")),
    ("site-c=2001:DB8::1", ("ipop-site-c", "2001:db8::1")),
])
def test_parse_peer(text, expected):
    assert bridge.parse_peer(text) == expected


@pytest.mark.parametrize("text, words", [
    ("B", "NAME=HOST[:PORT]"), ("=192.0.2.2", "name ''"), ("B=", "not an IP"),
    ("B=192.0.2", "not an IP"), ("B=host.example", "not an IP"),
    ("sitenamelong=192.0.2.2", "longer than 15"), ("a/b=192.0.2.2", "name 'a/b'"),
])
def test_parse_peer_rejects(text, words):
    with pytest.raises(CommandError, match=re.escape(words)):
        bridge.parse_peer(text)


@pytest.mark.parametrize("target", ["tcp:127.0.0.1:6653", "ssl:ctl.example:6653",
                                    "tcp:[::1]:6653", "unix:/run/ryu.sock",
                                    "punix:/var/run/openvswitch/br0.ipop", "ptcp:6654",
                                    "ptcp:6654:127.0.0.1"])
def test_controller_targets(target):
    assert bridge.check_controller(target) == target


@pytest.mark.parametrize("target,dial", [
    ("punix:/var/run/openvswitch/br0.ipop", "unix:/var/run/openvswitch/br0.ipop"),
    ("ptcp:6654:127.0.0.1", "tcp:127.0.0.1:6654"), ("ptcp:6654", "tcp:127.0.0.1:6654"),
    ("tcp:127.0.0.1:6653", None)])
def test_switch_address_dials_a_passive_target(target, dial):
    assert ovsctl.switch_address_for(target) == dial


def test_default_controller_is_a_listener_in_the_ovs_rundir(monkeypatch):
    monkeypatch.delenv("OVS_RUNDIR", raising=False)
    assert ovsctl.default_controller("br0") == "punix:/var/run/openvswitch/br0.ipop"
    monkeypatch.setenv("OVS_RUNDIR", "/tmp/site-a")
    assert ovsctl.default_controller("br1") == "punix:/tmp/site-a/br1.ipop"


@pytest.mark.parametrize("target", ["127.0.0.1:6653", "tcp:127.0.0.1", "tcp:127.0.0.1:0",
                                    "tcp:127.0.0.1:70000", "ptcp:0", "udp:1.2.3.4:5",
                                    "tcp::6653", "unix:relative"])
def test_bad_controller_targets(target):
    with pytest.raises(CommandError, match="bad --controller"):
        bridge.check_controller(target)


@pytest.mark.parametrize("name", ["", "x" * 16, "br 1", "br/1", "tcp:1"])
def test_bad_names(name):
    with pytest.raises(CommandError, match="bad bridge name"):
        ovsctl.check_name("bridge", name)


def test_key_range():
    assert bridge.check_key(None) is None and bridge.check_key("0") == 0
    assert bridge.check_key("16777215") == (1 << 24) - 1
    for bad in ("16777216", "-1", "0x10", "flow", ""):
        with pytest.raises(CommandError, match="bad --key .*VNI"):
            bridge.check_key(bad)


# --- the command, with subprocess replaced -------------------------------------------------

class Calls(list):
    """Every argv run, in order; `replies` maps the first 3 words (or argv[0]) to a reply."""

    def __init__(self):
        super().__init__()
        self.replies = {}

    def __call__(self, argv, **kw):
        self.append(argv)
        for key in (" ".join(argv[:3]), argv[0]):
            if key in self.replies:
                return self.replies[key](argv)
        return subprocess.CompletedProcess(argv, 0, "", "")


def all_attached(log):
    """`list interface` as OVS answers once every bridge and port of the last write works."""
    def answer(argv):
        write = next(c for c in reversed(log) if "--timeout=20" in c)
        names = [write[i + 1] for i, w in enumerate(write) if w == "add-br"] + \
            [write[i + 2] for i, w in enumerate(write) if w == "add-port"]
        rows = [[n, i + 1, ["set", []]] for i, n in enumerate(names)]
        return subprocess.CompletedProcess(argv, 0, json.dumps({"data": rows}), "")
    return answer


@pytest.fixture
def calls(monkeypatch):
    """subprocess.run recorded; the OVS kernel module there, every port attached."""
    log = Calls()
    log.replies["ovs-vsctl --timeout=5 --format=json"] = all_attached(log)
    monkeypatch.setattr(ovsctl.subprocess, "run", log)
    monkeypatch.setattr(bridge, "ovs_module_loaded", lambda: True)
    return log


@pytest.fixture
def vswitchd_up(tmp_path, monkeypatch):
    (tmp_path / "ovs-vswitchd.pid").write_text(f"{os.getpid()}\n")
    monkeypatch.setenv("OVS_RUNDIR", str(tmp_path))


def reply(rc, stdout="", stderr=""):
    return lambda argv: subprocess.CompletedProcess(argv, rc, stdout, stderr)


def run_cli(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def underlay(calls):
    """Every peer routes through ul9 (MTU 1500) from 192.0.2.1."""
    calls.replies["ip -j route"] = lambda argv: subprocess.CompletedProcess(argv, 0, json.dumps(
        [{"dst": argv[-1], "dev": "ul9", "prefsrc": "192.0.2.1"}]), "")
    calls.replies["ip -j link"] = reply(0, json.dumps([{"ifname": "ul9", "mtu": 1500}]))
    return calls


WRITES = ("add", "set", "del", "replace")


def test_dry_run_prints_the_commands_and_only_reads(capsys, underlay):
    status, out, err = run_cli(capsys, "bridge", "setup", "br1", "--controller",
                               "tcp:127.0.0.1:6653", "--port", "lo", "--peer", "B=192.0.2.2",
                               "--key", "7", "--datapath-type", "netdev", "--dry-run")
    assert status == 0 and err == ""
    assert not [c for c in underlay if c[0] == "ip" and set(c) & set(WRITES)]
    assert not [c for c in underlay if "--timeout=20" in c], "no ovs-vsctl write"
    lines = out.splitlines()
    assert lines[:2] == [
        "ip link add ipop-B type vxlan id 7 remote 192.0.2.2 local 192.0.2.1 dstport 4789 "
        "nolearning", "ip link set ipop-B mtu 1450 alias ipop-ryu up"]
    assert shlex.split(lines[2]) == bridge.setup_argv(
        "br1", "tcp:127.0.0.1:6653", ["lo"], [("ipop-B", "192.0.2.2", 7)], "system",
        "netdev", mtu=1450)
    assert len(lines) == 3


def test_without_key_each_peer_gets_the_pair_vni(capsys, underlay):
    status, out, _ = run_cli(capsys, "bridge", "setup", "br1", "--datapath-type", "netdev",
                             "--peer", "B=192.0.2.2", "--peer", "C=192.0.2.3:30000",
                             "--dry-run")
    assert status == 0
    for peer in ("192.0.2.2", "192.0.2.3"):
        assert f"id {vxlan.pair_vni('192.0.2.1', peer)} remote {peer} " in out


def test_system_datapath_gets_ovs_tunnel_ports_with_the_pair_vni(capsys, underlay):
    status, out, _ = run_cli(capsys, "bridge", "setup", "br1", "--peer", "B=192.0.2.2",
                             "--tunnel", "geneve", "--dry-run")
    assert status == 0 and out.count("\n") == 1 and not out.startswith("ip ")
    assert f'type=geneve \'options={{remote_ip="192.0.2.2",key="' \
           f'{vxlan.pair_vni("192.0.2.1", "192.0.2.2")}"}}\'' in out


def test_underlay_moves_its_address_to_br_phy_after_the_transaction(capsys, underlay):
    underlay.replies["ip -j address"] = reply(0, json.dumps([{"addr_info": [
        {"local": "192.0.2.1", "prefixlen": 24, "scope": "global"},
        {"local": "fe80::1", "prefixlen": 64, "scope": "link"}]}]))
    underlay.replies["ip -j route"] = lambda argv: subprocess.CompletedProcess(
        argv, 0, json.dumps([{"dst": "198.51.100.0/24", "gateway": "192.0.2.254"}]
                            if "show" in argv else
                            [{"dst": argv[-1], "dev": "lo", "prefsrc": "192.0.2.1"}]), "")
    status, out, err = run_cli(capsys, "bridge", "setup", "br1", "--datapath-type", "netdev",
                               "--underlay", "lo", "--peer", "B=192.0.2.2", "--dry-run")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("ovs-vsctl --timeout=20 -- --may-exist add-br br-phy")
    assert "type=vxlan" in lines[0] and "mtu_request=1500" in lines[0]
    assert lines[1:] == ["ip address del 192.0.2.1/24 dev lo", "ip link set br-phy up",
                         "ip address replace 192.0.2.1/24 dev br-phy",
                         "ip route replace 198.51.100.0/24 via 192.0.2.254 dev br-phy"]


@pytest.mark.parametrize("extra, words", [
    (["--peer", "B=192.0.2.2"], "the OVS kernel module is not loaded"),
    (["--datapath-type", "netdev", "--tunnel", "geneve", "--peer", "B=192.0.2.2"],
     "--tunnel geneve on the userspace datapath needs --underlay IFACE"),
    (["--datapath-type", "netdev", "--key", "5", "--peer", "B=192.0.2.2", "--peer",
      "C=192.0.2.3"], "--key with kernel VXLAN devices and more than one peer"),
    (["--underlay", "lo", "--peer", "B=192.0.2.2"], "--underlay is for --datapath-type netdev"),
])
def test_what_cannot_work_here_is_refused_in_one_line(capsys, underlay, monkeypatch, extra,
                                                      words):
    monkeypatch.setattr(bridge, "ovs_module_loaded", lambda: "netdev" in extra or
                        "--underlay" in extra)
    status, out, err = run_cli(capsys, "bridge", "setup", "br1", *extra, "--dry-run")
    assert (status, out) == (2, "") and err.count("\n") == 1 and words in err, err


def test_no_route_to_a_peer_is_one_line(capsys, calls, vswitchd_up):
    calls.replies["ip -j route"] = reply(2, stderr="RTNETLINK answers: Network is unreachable")
    status, _, err = run_cli(capsys, "bridge", "setup", "br1", "--peer", "B=192.0.2.2")
    assert status == 2 and "no route to ipop-B's 192.0.2.2" in err and err.count("\n") == 1


def test_dry_run_with_controller_timers(capsys, calls):
    status, out, _ = run_cli(capsys, "bridge", "setup", "br1", "--controller",
                             "tcp:127.0.0.1:6653", "--max-backoff", "3000",
                             "--inactivity-probe", "0", "--dry-run")
    assert status == 0
    assert out.endswith(" -- set-controller br1 tcp:127.0.0.1:6653 -- set controller br1 "
                        "max_backoff=3000 inactivity_probe=0\n")


def test_teardown_dry_run(capsys, calls):
    assert run_cli(capsys, "bridge", "teardown", "br1", "--dry-run") == (
        0, "ovs-vsctl --timeout=20 del-br br1\n", "")
    assert [c[:3] for c in calls] == [["ovs-vsctl", "--timeout=5", "list-br"]], "only a read"


@pytest.mark.parametrize("extra, words", [
    (["--port", "no-such-if0"], "no such network interface: no-such-if0"),
    (["--peer", "B"], "bad --peer 'B'"),
    (["--peer", "B=192.0.2.2", "--peer", "B=192.0.2.3"], "given twice"),
    (["--port", "lo", "--port", "lo"], "given twice"),
    (["--key", "16777216"], "bad --key"),
    (["--key", "five"], "bad --key 'five'"),
    (["--max-backoff", "999"], "bad --max-backoff '999': a whole number of milliseconds, at "
                               "least 1000"),
    (["--max-backoff", "1s"], "bad --max-backoff '1s'"),
    (["--inactivity-probe", "-1"], "bad --inactivity-probe '-1'"),
    (["--inactivity-probe", "1000"], "at least 5000 (or 0: never)"),  # OVS would use 5 s
])
def test_operator_errors_are_one_line_and_touch_nothing(capsys, calls, extra, words):
    status, out, err = run_cli(capsys, "bridge", "setup", "br1", "--controller",
                               "tcp:127.0.0.1:6653", *extra)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("ipop-ryu: ") and words in err, err
    assert calls == []


def test_bad_controller_is_one_line(capsys, calls):
    status, _, err = run_cli(capsys, "bridge", "setup", "br1", "--controller", "6653")
    assert status == 2 and err.count("\n") == 1 and "bad --controller '6653'" in err


def test_setup_runs_the_transaction_after_checking_ovs(capsys, underlay, vswitchd_up):
    status, out, err = run_cli(capsys, "bridge", "setup", "br1", "--controller",
                               "tcp:127.0.0.1:6653", "--peer", "B=192.0.2.2")
    assert status == 0, err
    assert "br1: ports ipop-B; controller tcp:127.0.0.1:6653; peers by OVS tunnel ports" in out
    assert "overlay MTU 1450 (underlay 1500 less vxlan's 50)" in out
    assert underlay[0][0] == "ovs-vsctl" and "list-br" in underlay[0]
    writes = [c for c in underlay if "--timeout=20" in c]
    vni = vxlan.pair_vni("192.0.2.1", "192.0.2.2")
    assert writes == [bridge.setup_argv("br1", "tcp:127.0.0.1:6653",
                                        tunnels=[("ipop-B", "192.0.2.2", vni)])]
    assert "list" in underlay[-1], "then every port's ofport is read back"


def test_a_port_without_ofport_fails_the_command(capsys, calls, vswitchd_up):
    calls.replies["ovs-vsctl --timeout=5 --format=json"] = reply(0, json.dumps({"data": [
        ["br1", 65534, ["set", []]],
        ["lo", -1, "could not add network device lo to ofproto (File exists)"]]}))
    status, out, err = run_cli(capsys, "bridge", "setup", "br1", "--port", "lo")
    assert (status, out) == (2, "") and err == (
        "ipop-ryu: bridge br1 set up, but not all of it works: lo: could not add network device "
        "lo to ofproto (File exists)\n")


def test_a_bridge_without_ofport_names_the_missing_module(capsys, calls, vswitchd_up,
                                                          monkeypatch):
    calls.replies["ovs-vsctl --timeout=5 --format=json"] = reply(0, json.dumps({"data": [
        ["br1", ["set", []], ["set", []]]]}))
    monkeypatch.setattr(bridge_overlay, "ovs_module_loaded", lambda: False)
    status, _, err = run_cli(capsys, "bridge", "setup", "br1")
    assert status == 2 and "use --datapath-type netdev" in err and err.count("\n") == 1


def test_database_down(capsys, calls, vswitchd_up):
    calls.replies["ovs-vsctl"] = reply(
        1, stderr="ovs-vsctl: unix:/run/openvswitch/db.sock: database connection failed "
                  "(No such file or directory)\n")
    status, _, err = run_cli(capsys, "bridge", "setup", "br1", "--controller",
                             "tcp:127.0.0.1:6653")
    assert status == 2 and err.count("\n") == 1
    assert "Open vSwitch is not running in " in err and "(unix:/run/openvswitch/db.sock: " \
           "database connection failed" in err and "systemctl start openvswitch-switch" in err
    assert "export OVS_RUNDIR=" in err
    assert len(calls) == 1  # only the probe


def test_vswitchd_down_is_caught_before_any_change(capsys, calls, tmp_path, monkeypatch):
    monkeypatch.setenv("OVS_RUNDIR", str(tmp_path))  # no ovs-vswitchd.pid in it
    status, _, err = run_cli(capsys, "bridge", "setup", "br1", "--controller",
                             "tcp:127.0.0.1:6653")
    assert status == 2 and "ovs-vswitchd is not running" in err and str(tmp_path) in err
    assert len(calls) == 1


def test_stale_vswitchd_pidfile(capsys, calls, tmp_path, monkeypatch):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "ovs-vswitchd.pid").write_text(f"{dead.pid}\n")
    monkeypatch.setenv("OVS_RUNDIR", str(tmp_path))
    with pytest.raises(CommandError, match="ovs-vswitchd is not running"):
        ovsctl.ensure_ovs_running()


def test_ovs_vsctl_refusal_is_passed_on(capsys, calls, vswitchd_up):
    calls.replies["ovs-vsctl --timeout=20 --"] = reply(
        1, stderr='ovs-vsctl: "--may-exist add-port br1 lo" but lo is actually attached to '
                  "bridge br0\n")
    status, _, err = run_cli(capsys, "bridge", "setup", "br1", "--controller",
                             "tcp:127.0.0.1:6653", "--port", "lo")
    assert status == 2 and err.count("\n") == 1
    assert "bridge br1 not set up: ovs-vsctl:" in err and "attached to bridge br0" in err


def test_teardown_unknown_bridge(capsys, calls, vswitchd_up):
    calls.replies["ovs-vsctl"] = reply(0, stdout="br0\nbr2\n")
    status, _, err = run_cli(capsys, "bridge", "teardown", "br1")
    assert (status, err) == (2, "ipop-ryu: no bridge named br1 (bridges: br0, br2)\n")
    assert len(calls) == 1


def test_teardown(capsys, calls, vswitchd_up):
    calls.replies["ovs-vsctl --timeout=5 list-br"] = reply(0, stdout="br1\n")
    status, out, _ = run_cli(capsys, "bridge", "teardown", "br1")
    assert (status, out) == (0, "br1: removed\n")
    assert calls[-1] == bridge.teardown_argv("br1")


def test_missing_ovs_tools(capsys, monkeypatch, vswitchd_up):
    def missing(argv, **kw):
        raise FileNotFoundError(argv[0])
    monkeypatch.setattr(ovsctl.subprocess, "run", missing)
    status, _, err = run_cli(capsys, "bridge", "teardown", "br1")
    assert status == 2 and "ovs-vsctl not found" in err


def test_peers_no_longer_listed_are_removed_in_the_same_transaction(capsys, underlay,
                                                                     vswitchd_up, monkeypatch):
    monkeypatch.setattr(bridge, "_missing_interfaces", lambda names: [])
    underlay.replies["ovs-vsctl --timeout=5 list-br"] = reply(0, "br1\n")
    underlay.replies["ovs-vsctl --timeout=5 list-ports"] = reply(
        0, "lo\nipop-B\nipop-Z\nx-ipop-Y\nipop-own\n")
    status, out, err = run_cli(capsys, "bridge", "setup", "br1", "--controller",
                               "tcp:127.0.0.1:6653", "--port", "lo", "--port", "ipop-own",
                               "--peer", "B=192.0.2.2")
    assert status == 0, err
    assert "removed peers no longer listed: ipop-Z\n" in out
    write = next(c for c in underlay if "--timeout=20" in c)
    assert write == bridge.setup_argv(
        "br1", "tcp:127.0.0.1:6653", ["lo", "ipop-own"],
        [("ipop-B", "192.0.2.2", vxlan.pair_vni("192.0.2.1", "192.0.2.2"))],
        stale_peers=["ipop-Z"], mtu=1450)
    assert ["--", "--if-exists", "del-port", "br1", "ipop-Z"] == write[
        write.index("del-port") - 2:write.index("del-port") + 3]
    assert write.count("del-port") == 1, "a port asked for (ipop-own) is never removed"

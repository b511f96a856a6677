"""`ipop-ryu bridge`: the ovs-vsctl command lines, argument checks and error paths (no OVS)."""
import os
import shlex
import subprocess

import pytest

from ipop_ryu.cli import CommandError, main
from ipop_ryu.cli import bridge
from ipop_ryu.host import ovsctl

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


def test_setup_argv_ports_peers_key_datapath():
    argv = bridge.setup_argv("br1", "tcp:10.0.0.1:6653", ports=["veth1"],
                             peers=[("ipop-B", "192.0.2.2"), ("ipop-C", "2001:db8::3")],
                             tunnel="geneve", key=5000, datapath_type="netdev")
    assert argv == HEAD + ["datapath_type=netdev",
                           "--", "--may-exist", "add-port", "br1", "veth1",
                           "--", "--may-exist", "add-port", "br1", "ipop-B",
                           "--", "set", "interface", "ipop-B", "type=geneve",
                           'options={remote_ip="192.0.2.2",key="5000"}',
                           "--", "--may-exist", "add-port", "br1", "ipop-C",
                           "--", "set", "interface", "ipop-C", "type=geneve",
                           'options={remote_ip="2001:db8::3",key="5000"}',
                           *tail("br1", "tcp:10.0.0.1:6653")]
    assert argv.count("ovs-vsctl") == 1


def test_setup_argv_without_key_replaces_the_whole_options_map():
    argv = bridge.setup_argv("br1", "tcp:127.0.0.1:6653", peers=[("ipop-B", "192.0.2.2")])
    assert 'options={remote_ip="192.0.2.2"}' in argv and "type=vxlan" in argv


def test_teardown_argv():
    assert bridge.teardown_argv("br1") == ["ovs-vsctl", "--timeout=20", "del-br", "br1"]


@pytest.mark.parametrize("text, expected", [
    ("B=192.0.2.2", ("ipop-B", "192.0.2.2")),
    ("site-c=2001:DB8::1", ("ipop-site-c", "2001:db8::1")),
])
def test_parse_peer(text, expected):
    assert bridge.parse_peer(text) == expected


@pytest.mark.parametrize("text, words", [
    ("B", "NAME=REMOTE_IP"), ("=192.0.2.2", "NAME=REMOTE_IP"), ("B=", "not an IP"),
    ("B=192.0.2", "not an IP"), ("B=host.example", "not an IP"),
    ("sitenamelong=192.0.2.2", "longer than 15"), ("a/b=192.0.2.2", "bad peer name"),
])
def test_parse_peer_rejects(text, words):
    with pytest.raises(CommandError, match=words):
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


@pytest.fixture
def calls(monkeypatch):
    log = Calls()
    monkeypatch.setattr(ovsctl.subprocess, "run", log)
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


def test_dry_run_prints_the_command_and_only_reads(capsys, calls):
    status, out, err = run_cli(capsys, "bridge", "setup", "br1", "--controller",
                               "tcp:127.0.0.1:6653", "--port", "lo", "--peer", "B=192.0.2.2",
                               "--key", "7", "--datapath-type", "netdev", "--dry-run")
    assert status == 0 and err == ""
    assert [c[2] for c in calls] == ["list-ports"], "only the read of the bridge's ports"
    lines = out.splitlines()
    assert len(lines) == 1
    assert shlex.split(lines[0]) == bridge.setup_argv(
        "br1", "tcp:127.0.0.1:6653", ["lo"], [("ipop-B", "192.0.2.2")], "vxlan", 7, "netdev")


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
    assert calls == []


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


def test_setup_runs_the_transaction_after_checking_ovs(capsys, calls, vswitchd_up):
    status, out, _ = run_cli(capsys, "bridge", "setup", "br1", "--controller",
                             "tcp:127.0.0.1:6653", "--peer", "B=192.0.2.2")
    assert status == 0 and "br1: ports ipop-B" in out
    assert calls[0][0] == "ovs-vsctl" and "list-br" in calls[0]
    assert calls[1] == bridge.setup_argv("br1", "tcp:127.0.0.1:6653",
                                             peers=[("ipop-B", "192.0.2.2")])


def test_database_down(capsys, calls, vswitchd_up):
    calls.replies["ovs-vsctl"] = reply(
        1, stderr="ovs-vsctl: unix:/run/openvswitch/db.sock: database connection failed "
                  "(No such file or directory)\n")
    status, _, err = run_cli(capsys, "bridge", "setup", "br1", "--controller",
                             "tcp:127.0.0.1:6653")
    assert status == 2 and err.count("\n") == 1
    assert "Open vSwitch is not running (unix:/run/openvswitch/db.sock: database connection " \
           "failed" in err and "systemctl start openvswitch-switch" in err
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


def test_peers_no_longer_listed_are_removed_in_the_same_transaction(capsys, calls,
                                                                     vswitchd_up):
    calls.replies["ovs-vsctl --timeout=5 list-br"] = reply(0, "br1\n")
    calls.replies["ovs-vsctl --timeout=5 list-ports"] = reply(0, "lo\nipop-B\nipop-Z\nx-ipop-Y\n")
    status, out, err = run_cli(capsys, "bridge", "setup", "br1", "--controller",
                               "tcp:127.0.0.1:6653", "--port", "lo", "--peer", "B=192.0.2.2")
    assert status == 0, err
    assert "removed peers no longer listed: ipop-Z" in out
    write = calls[-1]
    assert write == bridge.setup_argv("br1", "tcp:127.0.0.1:6653", ["lo"],
                                      [("ipop-B", "192.0.2.2")], stale_peers=["ipop-Z"])
    assert ["--", "--if-exists", "del-port", "br1", "ipop-Z"] == write[
        write.index("del-port") - 2:write.index("del-port") + 3]
    assert "ipop-B" not in write[write.index("del-port"):write.index("del-port") + 3]

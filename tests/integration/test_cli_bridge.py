"""`ipop-ryu bridge` run as the installed console script against a lab site's own OVS."""
import os
import sys

from ipop_ryu.lab.topology import seed_two_sites

CLI = os.path.join(sys.prefix, "bin", "ipop-ryu")
CONTROLLER = "tcp:127.0.0.1:6654"
SETUP = ["bridge", "setup", "br1", "--controller", CONTROLLER, "--datapath-type", "netdev",
         "--port", "veth-x1", "--peer", "C=192.0.2.3", "--peer", "D=192.0.2.4", "--key", "5000"]


def cli(site, *args):
    return site.exec([CLI, *args], check=False)


def ok(proc):
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def one_line_error(proc, *words):
    assert proc.returncode == 2 and proc.stdout == "", (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("ipop-ryu: ") and proc.stderr.count("\n") == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    return proc.stderr


def vsctl(site, *args):
    return site.exec(["ovs-vsctl", *args]).stdout.strip()


def bridges(site):
    return vsctl(site, "list-br").split()


def state(site, bridge="br1"):
    """Everything setup promises, read back from the site's database (row uuids included)."""
    ports = vsctl(site, "list-ports", bridge).split()
    return {"bridge": vsctl(site, "get", "bridge", bridge, "_uuid", "protocols", "fail_mode",
                            "other_config", "datapath_type").splitlines(),
            "controller": [vsctl(site, "get-controller", bridge), *vsctl(
                site, "get", "controller", bridge, "max_backoff", "inactivity_probe").split()],
            "ports": {p: vsctl(site, "get", "interface", p, "_uuid", "type", "options", "error")
                      .splitlines() for p in ports}}


def new_site(lab_factory):
    site = lab_factory(seed_two_sites(controller="normal")).sites["A"]
    site.exec(["ip", "link", "add", "veth-x1", "type", "veth", "peer", "name", "veth-x1p"])
    return site


def test_setup_is_as_requested_idempotent_and_updates_a_peer(lab_factory):
    site = new_site(lab_factory)
    dry = ok(cli(site, *SETUP, "--dry-run"))
    assert dry.startswith("ovs-vsctl ") and dry.count("\n") == 1 and "add-br br1" in dry
    assert bridges(site) == ["br0"], "dry-run changed nothing"

    assert "br1: ports veth-x1, ipop-C, ipop-D" in ok(cli(site, *SETUP))
    first = state(site)
    assert first["bridge"][1:] == ['[OpenFlow13]', "secure", '{disable-in-band="true"}',
                                   "netdev"]
    assert first["controller"] == [CONTROLLER, "1000", "5000"]  # reconnects every second
    assert {p: v[1:] for p, v in first["ports"].items()} == {
        "veth-x1": ['""', "{}", "[]"],
        "ipop-C": ["vxlan", '{key="5000", remote_ip="192.0.2.3"}', "[]"],
        "ipop-D": ["vxlan", '{key="5000", remote_ip="192.0.2.4"}', "[]"]}
    # ovs-vsctl returns once ovs-vswitchd has applied it: the bridge answers OpenFlow
    assert "veth-x1" in site.ofctl("show", "br1")

    ok(cli(site, *SETUP))
    assert state(site) == first, "running twice leaves the same state"

    moved = [a if a != "C=192.0.2.3" else "C=192.0.2.33" for a in SETUP]
    ok(cli(site, *moved, "--dry-run"))
    assert state(site) == first, "dry-run changed nothing"
    ok(cli(site, *moved))
    second = state(site)
    assert second["ports"]["ipop-C"][2] == '{key="5000", remote_ip="192.0.2.33"}'
    assert second["ports"]["ipop-C"][0] == first["ports"]["ipop-C"][0], "same port, updated"
    assert {**second["ports"], "ipop-C": None} == {**first["ports"], "ipop-C": None}
    assert second["bridge"] == first["bridge"]

    # D leaves the overlay: its tunnel port goes, nothing else changes
    d = moved.index("D=192.0.2.4")
    without_d = moved[:d - 1] + moved[d + 1:]              # drop "--peer D=..."
    assert "del-port br1 ipop-D" in ok(cli(site, *without_d, "--dry-run"))
    assert state(site) == second, "dry-run changed nothing"
    assert "removed peers no longer listed: ipop-D" in ok(cli(site, *without_d))
    third = state(site)
    assert third["ports"] == {p: v for p, v in second["ports"].items() if p != "ipop-D"}
    assert third["bridge"] == second["bridge"]


def test_teardown_removes_the_bridge_and_its_ports(lab_factory):
    site = new_site(lab_factory)
    ok(cli(site, *SETUP))
    assert ok(cli(site, "bridge", "teardown", "br1", "--dry-run")) == \
        "ovs-vsctl --timeout=20 del-br br1\n"
    assert "br1" in bridges(site)
    assert ok(cli(site, "bridge", "teardown", "br1")) == "br1: removed\n"
    assert bridges(site) == ["br0"]
    assert vsctl(site, "--columns=name", "find", "interface", "name=ipop-C") == ""
    one_line_error(cli(site, "bridge", "teardown", "br1"), "no bridge named br1 (bridges: br0)")


def test_operator_errors_change_nothing(lab_factory):
    site = new_site(lab_factory)
    before = vsctl(site, "show")
    base = ["bridge", "setup", "br1", "--controller", CONTROLLER]
    one_line_error(cli(site, *base, "--port", "veth-x1", "--port", "nosuch0"),
                   "no such network interface: nosuch0")
    one_line_error(cli(site, *base, "--peer", "C:192.0.2.3"), "bad --peer", "NAME=REMOTE_IP")
    one_line_error(cli(site, *base[:-1], "127.0.0.1:6654"), "bad --controller")
    # refused by ovs-vsctl inside the one transaction: nothing of it is applied
    one_line_error(cli(site, *base, "--port", "veth-x1", "--port", "h3"),
                   "bridge br1 not set up", "h3 is actually attached to bridge br0")
    assert vsctl(site, "show") == before


def test_ovs_down_is_reported_before_anything_is_written(lab_factory):
    lab = lab_factory(seed_two_sites(controller="normal"))
    site = lab.sites["A"]
    lab.stop_ovs("A")  # ovs-vswitchd only: the database still answers
    one_line_error(cli(site, "bridge", "setup", "br1", "--controller", CONTROLLER),
                   "ovs-vswitchd is not running", "start it with")
    assert bridges(site) == ["br0"], "not committed to the database either"
    one_line_error(cli(site, "bridge", "teardown", "br0"), "ovs-vswitchd is not running")
    site.ovs.stop()
    one_line_error(cli(site, "bridge", "setup", "br1", "--controller", CONTROLLER),
                   "Open vSwitch is not running", "database connection failed")

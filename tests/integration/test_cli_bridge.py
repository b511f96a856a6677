"""`ipop-ryu bridge` run as the installed console script against a lab site's own OVS."""
import json
import os
import sys

from ipop_ryu.lab.topology import seed_two_sites
from ipop_ryu.overlay import vxlan

from .util import one_line_error

CLI = os.path.join(sys.prefix, "bin", "ipop-ryu")
CONTROLLER = "tcp:127.0.0.1:6654"
SETUP = ["bridge", "setup", "br1", "--controller", CONTROLLER, "--datapath-type", "netdev",
         "--port", "veth-x1", "--peer", "C=192.0.2.3", "--peer", "D=192.0.2.4"]


def cli(site, *args):
    return site.exec([CLI, *args], check=False)


def ok(proc):
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


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


def vxlan_of(site, port):
    """A kernel VXLAN device as `ip -d` shows it: id, remote, local, port, MTU, alias."""
    link = json.loads(site.exec(["ip", "-d", "-j", "link", "show", port]).stdout)[0]
    data = link["linkinfo"]["info_data"]
    return {k: data.get(k) for k in ("id", "remote", "local", "port")} | {
        "mtu": link["mtu"], "alias": link.get("ifalias")}


def test_setup_is_as_requested_idempotent_and_updates_a_peer(lab_factory):
    site = new_site(lab_factory)
    dry = ok(cli(site, *SETUP, "--dry-run"))
    lines = dry.splitlines()
    assert [line.split(" type ")[0] for line in lines[:4:2]] == [
        "ip link add ipop-C", "ip link add ipop-D"]
    assert lines[-1].startswith("ovs-vsctl ") and "add-br br1" in lines[-1]
    assert bridges(site) == ["br0"], "dry-run changed nothing"
    assert "ipop-C" not in site.exec(["ip", "-o", "link"]).stdout

    done = ok(cli(site, *SETUP))
    assert "br1: ports veth-x1, ipop-C, ipop-D" in done and "kernel VXLAN devices" in done
    assert "overlay MTU 1450 (underlay 1500 less vxlan's 50)" in done
    first = state(site)
    assert first["bridge"][1:] == ['[OpenFlow13]', "secure", '{disable-in-band="true"}',
                                   "netdev"]
    assert first["controller"] == [CONTROLLER, "1000", "5000"]  # reconnects every second
    assert {p: v[1:] for p, v in first["ports"].items()} == {
        "veth-x1": ['""', "{}", "[]"], "ipop-C": ["system", "{}", "[]"],
        "ipop-D": ["system", "{}", "[]"]}
    vni = vxlan.pair_vni("192.0.2.1", "192.0.2.3")
    assert vxlan_of(site, "ipop-C") == {"id": vni, "remote": "192.0.2.3", "local": "192.0.2.1",
                                        "port": 4789, "mtu": 1450, "alias": "ipop-ryu"}
    assert vsctl(site, "get", "interface", "veth-x1", "mtu_request") == "1450"
    # ovs-vsctl returns once ovs-vswitchd has applied it: the bridge answers OpenFlow
    assert "veth-x1" in site.ofctl("show", "br1")

    ok(cli(site, *SETUP))
    assert state(site) == first, "running twice leaves the same state"

    moved = [a if a != "C=192.0.2.3" else "C=192.0.2.33" for a in SETUP]
    ok(cli(site, *moved, "--dry-run"))
    assert state(site) == first, "dry-run changed nothing"
    ok(cli(site, *moved))
    second = state(site)
    assert vxlan_of(site, "ipop-C")["remote"] == "192.0.2.33", "the device made anew"
    assert vxlan_of(site, "ipop-C")["id"] == vxlan.pair_vni("192.0.2.1", "192.0.2.33")
    assert second["ports"]["ipop-C"][0] == first["ports"]["ipop-C"][0], "same port"
    assert second["bridge"] == first["bridge"]

    # D leaves the overlay: its port and its device go, nothing else changes
    d = moved.index("D=192.0.2.4")
    without_d = moved[:d - 1] + moved[d + 1:]              # drop "--peer D=..."
    dry = ok(cli(site, *without_d, "--dry-run"))
    assert "del-port br1 ipop-D" in dry and dry.endswith("ip link del ipop-D\n")
    assert state(site) == second, "dry-run changed nothing"
    assert "removed peers no longer listed: ipop-D" in ok(cli(site, *without_d))
    third = state(site)
    assert third["ports"] == {p: v for p, v in second["ports"].items() if p != "ipop-D"}
    assert third["bridge"] == second["bridge"]
    assert site.exec(["ip", "link", "show", "ipop-D"], check=False).returncode != 0


def test_a_device_not_ours_is_never_replaced(lab_factory):
    site = new_site(lab_factory)
    site.exec(["ip", "link", "add", "ipop-C", "type", "veth", "peer", "name", "ipop-Cp"])
    one_line_error(cli(site, *SETUP), "ipop-C exists and was not made by ipop-ryu")
    assert bridges(site) == ["br0"]


def test_teardown_removes_the_bridge_and_its_ports(lab_factory):
    site = new_site(lab_factory)
    ok(cli(site, *SETUP))
    assert ok(cli(site, "bridge", "teardown", "br1", "--dry-run")) == \
        "ovs-vsctl --timeout=20 del-br br1\nip link del ipop-C\nip link del ipop-D\n"
    assert "br1" in bridges(site)
    assert ok(cli(site, "bridge", "teardown", "br1")) == \
        "br1: removed (and the VXLAN devices ipop-C, ipop-D)\n"
    assert "ipop-C" not in site.exec(["ip", "-o", "link"]).stdout
    assert bridges(site) == ["br0"]
    assert vsctl(site, "--columns=name", "find", "interface", "name=ipop-C") == ""
    one_line_error(cli(site, "bridge", "teardown", "br1"), "no bridge named br1 (bridges: br0)")


def test_operator_errors_change_nothing(lab_factory):
    site = new_site(lab_factory)
    before = vsctl(site, "show")
    base = ["bridge", "setup", "br1", "--datapath-type", "netdev", "--controller", CONTROLLER]
    one_line_error(cli(site, *base, "--port", "veth-x1", "--port", "nosuch0"),
                   "no such network interface: nosuch0")
    one_line_error(cli(site, *base, "--peer", "C:192.0.2.3"), "bad --peer", "NAME=HOST[:PORT]")
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

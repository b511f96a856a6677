"""`ipop-ryu doctor` proves the data path on the real lab: each fault that leaves the control
plane healthy while frames are lost is made on purpose, named (exit 1) and undone; a healthy
site exits 0, with the underlay on an OVS bridge too (an OVS tunnel port on the userspace
datapath, as a site set up by hand without kernel VXLAN devices)."""
import json
import shutil

import pytest

from ipop_ryu.lab import arping, ping, seed_two_sites
from ipop_ryu.lab.topology import vni

from .test_site_service import CLI, FAST, doctor, problems_until, vsctl
from .util import wait_for

HEALTHY = ("doctor: site A is healthy (bridge br0 secure and connected, 1 peer(s) up, frames "
           "to 1 traced into the overlay)")


@pytest.fixture
def lab(lab_factory):
    return lab_factory(seed_two_sites(extra_options=FAST))


def healthy(lab):
    """Doctor at site A says it is healthy, once B's host is learned (a frame to trace)."""
    assert ping(lab.hosts["h3"], "10.0.3.7").ok
    seen = {}

    def ok():
        seen["out"] = doctor(lab)
        return seen["out"] == (0, [HEALTHY])
    wait_for(ok, 15, "a healthy site A", show=lambda: seen.get("out"))


def appctl(lab, site, *args):
    s = lab.sites[site]
    return s.ovs.appctl("ovs-vswitchd", *args).stdout


def test_each_data_path_fault_doctor_names(lab, request, tmp_path):
    a, h7 = lab.sites["A"], lab.hosts["h7"]
    healthy(lab)

    # a local port with a bigger MTU than VXLAN over the 1500-byte underlay carries
    request.addfinalizer(lambda: a.exec(["ip", "link", "set", "h5", "mtu", "1450"]))
    a.exec(["ip", "link", "set", "h5", "mtu", "1500"])
    assert problems_until(lab, "MTU") == [
        "local port h5 has MTU 1500, more than the overlay carries (1450: vxlan over ul0's "
        "1500), so larger frames from it are lost: set 1450 on it and on the container's "
        "interface behind it (ip link set dev h5 mtu 1450)"]
    a.exec(["ip", "link", "set", "h5", "mtu", "1450"])

    # an OVS tunnel port on the userspace bridge, the underlay address on a kernel NIC
    request.addfinalizer(lambda: vsctl(lab, "A", "--if-exists", "del-port", "br0", "ipop-Bx"))
    vsctl(lab, "A", "add-port", "br0", "ipop-Bx", "--", "set", "interface", "ipop-Bx",
          "type=vxlan", "options:remote_ip=192.0.2.2", "options:key=77")
    lines = problems_until(lab, "ipop-Bx")
    assert len(lines) == 1 and lines[0].startswith(
        "overlay port ipop-Bx (vxlan to 192.0.2.2) cannot send: OVS routes 192.0.2.2 via ul0, "
        "not an OVS bridge, so ovs-appctl tnl/neigh/show stays empty and every frame is lost: "
        "on a userspace (netdev) bridge OVS sends tunnels itself: put the underlay address on "
        "an OVS bridge (ovs-vsctl add-br br-phy"), lines
    assert appctl(lab, "A", "tnl/neigh/show").splitlines()[2:] == []
    vsctl(lab, "A", "del-port", "br0", "ipop-Bx")

    # frames for B's host sent to a port that is not there (a flow left behind)
    mac = h7.mac
    stale = f"table=3,priority=200,dl_dst={mac}"
    request.addfinalizer(lambda: a.ofctl("--strict", "del-flows", "br0", stale))
    a.ofctl("add-flow", "br0", f"{stale},actions=output:99")
    assert problems_until(lab, "does not exist") == [
        f"bridge br0 sends frames for peer B's host 10.0.3.7 ({mac}) to port 99, which does not "
        f"exist (a flow left from a removed port; ovs-appctl ofproto/trace br0 in_port=h3,"
        f"dl_src={lab.hosts['h3'].mac},dl_dst={mac},ip,nw_dst=10.0.3.7: Nonexistent output "
        f"port): delete it (ovs-ofctl -O OpenFlow13 del-flows br0 dl_dst={mac}; it is "
        f"learned again)"]
    a.ofctl("--strict", "del-flows", "br0", stale)
    wait_for(lambda: doctor(lab) == (0, [HEALTHY]), 10, "healthy again",
             show=lambda: doctor(lab))

    # OVS not at the default run directory and OVS_RUNDIR not exported: doctor names it
    env = {k: v for k, v in a.ovs.env.items() if k not in ("OVS_RUNDIR", "OVS_DBDIR")}
    status, lines = doctor(lab, env=env)
    assert status == 1 and lines[0].startswith(
        "Open vSwitch is not running in /var/run/openvswitch (") and lines[0].endswith(
        f"; export OVS_RUNDIR={a.ovs.env['OVS_RUNDIR']} (where this host's Open vSwitch "
        f"runs)"), lines


def test_claims_refused_by_allowed_ips_are_named(lab_factory):
    narrow = "10.0.3.128/25"
    lab = lab_factory(seed_two_sites(extra_options=FAST, allowed_ips={"B": narrow}))
    arping(lab.hosts["h7"], "10.0.3.3")          # B learns h7 and tells A, which refuses it
    lines = problems_until(lab, "claimed")
    peers_conf = lab.peers_path
    assert len(lines) == 1 and lines[0].startswith(
        f"peer B claimed 10.0.3.7 outside its allowed_ips {narrow} ("), lines
    assert lines[0].endswith(f"s ago): fix [B] allowed_ips in {peers_conf} at this site, or "
                             f"B's addresses"), lines


def test_a_site_directory_with_peers_conf(lab, tmp_path):
    """The site file and peers.conf side by side, as `init --node-keys` writes them: doctor's
    default finds the one site file."""
    etc = tmp_path / "etc"
    etc.mkdir()
    shutil.copy(lab.sites["A"].config_path, etc / "A.conf")
    shutil.copy(lab.peers_path, etc / "peers.conf")
    ping(lab.hosts["h3"], "10.0.3.7")
    argv = [CLI, "doctor", "--dir", str(etc)]

    def ok():
        proc = lab.exec("A", argv, check=False)
        return (proc.returncode, proc.stdout.splitlines()) == (0, [HEALTHY])
    wait_for(ok, 15, "doctor --dir to find A.conf healthy",
             show=lambda: lab.exec("A", argv, check=False).stdout)


def test_an_ovs_tunnel_with_the_underlay_on_an_ovs_bridge(lab, request):
    """Site A as by hand on the userspace datapath: ul0 in br-phy, the underlay address on
    br-phy, an OVS VXLAN port to B instead of the kernel device. Healthy, and frames cross;
    without a neighbour for B on br-phy doctor names it, and frames are lost indeed."""
    a, ul = lab.sites["A"], lab.sites["A"].underlay_ip
    b_ip = lab.sites["B"].underlay_ip
    mac = json.loads(a.exec(["ip", "-j", "link", "show", "ul0"]).stdout)[0]["address"]
    vsctl(lab, "A", "add-br", "br-phy", "--", "set", "bridge", "br-phy",
          "datapath_type=netdev", f"other-config:hwaddr={mac}",   # B's ARP cache holds it
          "--", "add-port", "br-phy", "ul0",
          "--", "del-port", "br0", "ipop-B")
    a.exec(["ip", "link", "del", "ipop-B"])
    a.exec(["ip", "addr", "flush", "dev", "ul0"])
    a.exec(["ip", "addr", "add", f"{ul}/24", "dev", "br-phy"])
    a.exec(["ip", "link", "set", "br-phy", "up"])
    vsctl(lab, "A", "add-port", "br0", "ipop-B", "--", "set", "interface", "ipop-B",
          "type=vxlan", f"options:remote_ip={b_ip}", f"options:key={vni(0, 1)}",
          "ofport_request=101")
    # B's veth leaves UDP checksums to offload, which OVS's tunnel pop then finds wrong
    # (coverage: datapath_drop_tunnel_pop_error): computed by the sender, as a NIC does
    lab.sites["B"].exec(["ethtool", "-K", "ul0", "tx", "off"])
    wait_for(lambda: ping(lab.hosts["h3"], "10.0.3.7", count=1).ok, 15,
             "h3 to reach h7 through the OVS tunnel")
    healthy(lab)

    # ARP replies no longer reach br-phy's local port: OVS's neighbour for B, once flushed,
    # is never learned again (the kernel's entry is pinned: ICC still goes out)
    neigh = a.exec(["ip", "-j", "neigh", "show", b_ip, "dev", "br-phy"]).stdout
    a.exec(["ip", "neigh", "replace", b_ip, "lladdr", json.loads(neigh)[0]["lladdr"],
            "nud", "permanent", "dev", "br-phy"])
    a.ofctl("add-flow", "br-phy", "priority=100,arp,actions=drop")
    appctl(lab, "A", "tnl/neigh/flush")
    assert not ping(lab.hosts["h3"], "10.0.3.7", count=2, timeout=2).ok
    lines = problems_until(lab, "neighbour")
    assert lines == [
        f"overlay port ipop-B (vxlan to {b_ip}) cannot send: OVS has no neighbour {b_ip} on "
        f"br-phy (ovs-appctl tnl/neigh/show), so frames into it are dropped: OVS learns it "
        f"from ARP replies reaching br-phy's local port: check that br-phy's flows pass them "
        f"(ovs-ofctl dump-flows br-phy: actions=NORMAL) and that {b_ip} answers (ping -c 1 "
        f"{b_ip})"]

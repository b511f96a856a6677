"""The lab harness itself, with controllers that need none of ipop_ryu: OVS NORMAL and
Ryu's simple_switch_13."""
import os

import pytest

from ipop_ryu.lab import Lab, cleanup_all, host_mac, mesh, seed_two_sites
from ipop_ryu.lab import netns
from ipop_ryu.lab.topology import vni
from ipop_ryu.lab.traffic import arping, flush_arp, is_arp, is_icmp, ping

from .util import needs_simple_switch_13


def _alive(pid):
    return netns.process_marker(pid) is not None


def test_normal_two_sites_ping(lab_factory):
    lab = lab_factory(seed_two_sites(controller="normal"))
    h3 = lab.hosts["h3"]
    for ip in ("10.0.3.7", "10.0.3.5"):
        result = ping(h3, ip)
        assert result.ok and result.dups == 0 and result.redirects == 0, result.output
    reply = arping(h3, "10.0.3.104")
    assert reply.ok and reply.mac == host_mac("10.0.3.104") == "02:00:0a:00:03:68", reply.output
    assert "10.0.3.7 " in h3.exec(["ip", "neigh", "show", "dev", "eth0"]).stdout
    flush_arp(h3)
    assert "10.0.3.7 " not in h3.exec(["ip", "neigh", "show", "dev", "eth0"]).stdout
    site = lab.sites["A"]
    assert site.controller_pid is None and site.overlay_ports == ["ipop-B"]
    assert "actions=NORMAL" in site.ofctl("dump-flows", "br0")
    assert site.vsctl("get", "interface", "ipop-B", "ofport").strip() == "101"


@needs_simple_switch_13
def test_simple_switch_two_sites_ping(lab_factory):
    lab = lab_factory(seed_two_sites(controller="simple_switch_13"))
    for site in lab.sites.values():
        assert _alive(site.controller_pid)
        assert "fail_mode: secure" in site.vsctl("show")
    result = ping(lab.hosts["h3"], "10.0.3.104")
    assert result.ok and result.dups == 0, result.output
    # simple_switch_13 installed a table-miss entry and learned unicast flows.
    flows = lab.sites["B"].ofctl("dump-flows", "br0")
    assert "actions=CONTROLLER" in flows and "dl_dst=02:00:0a:00:03:03" in flows


@needs_simple_switch_13
def test_restarts(lab_factory):
    lab = lab_factory(mesh(2, 1, controller="simple_switch_13"))  # h10 in A, h30 in B
    h10 = lab.hosts["h10"]
    old = lab.sites["A"].controller_pid
    lab.stop_controller("A")
    assert lab.sites["A"].controller_pid is None and not _alive(old)
    lab.start_controller("A")  # waits for the bridge to reconnect
    assert ping(h10, "10.0.3.30").ok
    lab.stop_ovs("B", hard=True)
    assert set(lab.sites["B"].ovs.pids) == {"ovsdb-server"}
    lab.start_ovs("B")
    assert ping(h10, "10.0.3.30").ok


@needs_simple_switch_13
def test_down_removes_everything(lab_factory):
    lab = lab_factory(seed_two_sites(controller="simple_switch_13"))
    assert len(lab.namespaces()) == 1 + 2 + 4
    pids = [p for s in lab.sites.values() for p in (s.controller_pid, *s.ovs.pids.values())]
    assert len(pids) == 6 and all(map(_alive, pids))
    lab.down()
    assert lab.namespaces() == [] and not any(map(_alive, pids))
    assert not os.path.exists(lab.workdir)
    lab.down()  # idempotent


def test_failed_build_is_torn_down(tmp_path):
    lab = Lab(seed_two_sites(controller="simple_switch_13"), ryu_manager="/bin/false",
              workdir_root=str(tmp_path))
    with pytest.raises(RuntimeError, match="controller of site A is not running"):
        with lab:
            pass
    assert lab.namespaces() == [] and not os.path.exists(lab.workdir)


def test_cleanup_all_after_a_crash(lab_factory, tmp_path):
    # A run that died without down(): cleanup_all finds it through pidfiles and names only.
    lab = lab_factory(mesh(2, 1, controller="normal"), workdir_root=str(tmp_path))
    pids = [p for s in lab.sites.values() for p in s.ovs.pids.values()]
    cleanup_all(str(tmp_path), suffix=lab.suffix)
    assert lab.namespaces() == [] and not any(map(_alive, pids))
    assert not os.path.exists(lab.workdir)


def test_capture_overlay_and_underlay(lab_factory):
    lab = lab_factory(seed_two_sites(controller="normal"))
    with lab.capture("A", "ipop-B", "icmp") as overlay, \
            lab.capture("A", "ul0", "udp port 4789") as underlay:
        assert ping(lab.hosts["h3"], "10.0.3.7", count=2).ok
    # On the VXLAN device frames are already decapsulated.
    request = lambda p: is_icmp(p, 8) and p["ip_src"] == "10.0.3.3" and p["ip_dst"] == "10.0.3.7"
    assert overlay.count(request) == 2 and overlay.count(lambda p: is_icmp(p, 0)) == 2
    assert overlay.count(lambda p: p["src"] == host_mac("10.0.3.3")) == 2
    # On the underlay: UDP 4789 between the site addresses, ICMP inside.
    encapsulated = [p for p in underlay.packets() if p.get("dport") == 4789]
    assert encapsulated and all(p["vni"] == vni(0, 1) for p in encapsulated)
    assert {(p["ip_src"], p["ip_dst"]) for p in encapsulated} == \
        {("192.0.2.1", "192.0.2.2"), ("192.0.2.2", "192.0.2.1")}
    assert sum(request(p["inner"]) for p in encapsulated) == 2


def test_three_site_normal_mesh_loops(lab_factory):
    """OVS NORMAL on a full mesh of tunnels has a loop and no STP: one broadcast circulates
    A->B->C->A (and the other way) forever. The lab still builds and tears down."""
    lab = lab_factory(mesh(3, 1, controller="normal"))  # h10 in A, h30 in B, h50 in C
    assert sorted(lab.sites["C"].overlay_ports) == ["ipop-A", "ipop-B"]
    broadcast = lambda p: is_arp(p.get("inner", {}), 1) and p["inner"]["spa"] == "10.0.3.10"
    with lab.capture("B", "ul0", "udp port 4789", max_packets=300) as cap:
        arping(lab.hosts["h10"], "10.0.3.50", count=1, timeout=1)
        storm = cap.wait(10)
    copies = cap.count(broadcast)  # read the pcap before down() removes the workdir
    lab.down()  # stop the storm at once
    # One ARP exchange put 300 frames on B's underlay link (in well under a second here):
    # the request circulates both ways round the triangle and, since h10's MAC is then
    # learned on tunnel ports, the unicast reply ping-pongs too. A loop-free overlay would
    # carry the request over each link once.
    assert storm, "expected a broadcast storm on the underlay"
    assert copies >= 10
    assert lab.namespaces() == []

"""Site services with real LXC busybox containers (issue 20): each site's bridge a drop-in for
lxc-net. Three sites (LabSpec(services=True)); containers configured as LXC's users configure
them (lxc.net.0.link = br0), their own init running udhcpc."""
import itertools
import os
import sys
import time

import pytest

from ipop_ryu.lab import lxc
from ipop_ryu.lab.services import dhcp_argv
from ipop_ryu.lab.topology import UPSTREAM_IP, mesh
from ipop_ryu.lab.traffic import is_icmp

from .conftest import module_lab
from .util import in_pool, wait_for

pytestmark = pytest.mark.skipif(lxc.available() is not None, reason=str(lxc.available()))


@pytest.fixture(scope="module")
def services_lab():
    """One 3-site services lab for the module."""
    yield from module_lab(mesh(3, 0, services=True))


def ping(where, ip, timeout=20):
    wait_for(lambda: where.exec(["ping", "-c", "1", "-W", "1", ip], check=False).returncode == 0,
             timeout, f"{getattr(where, 'name', where)} -> {ip}")


def test_containers_lease_from_their_own_site_and_reach_everything(services_lab, containers):
    lab = services_lab
    started = time.monotonic()
    boxes = [containers(name) for name in ("A", "A", "B", "C")]
    addresses = [box.wait_ipv4() for box in boxes]
    leased = time.monotonic() - started
    # distinct addresses, each from its own site's pool (never another site's server)
    assert len(set(addresses)) == len(addresses), addresses
    for box, ip in zip(boxes, addresses):
        assert in_pool(ip, box.site), f"{box.name} at {box.site.name} got {ip}"
        route = box.exec(["ip", "route"]).stdout
        assert "default via 10.0.3.1" in route, route
    ping(boxes[0], addresses[2])
    first_cross_site = time.monotonic() - started
    print(f"\n4 containers: leases {leased:.2f} s, first cross-site ping "
          f"{first_cross_site:.2f} s after lxc-start")
    for (a, ip_a), (b, ip_b) in itertools.permutations(zip(boxes, addresses), 2):
        ping(a, ip_b)
    # egress through the container's own site: the upstream sees that site's uplink address
    up = lab.upstream_ns
    with lab.capture(up, "up0", "icmp") as cap:
        for box in boxes:
            ping(box, UPSTREAM_IP)
    sources = {p["ip_src"] for p in cap.packets() if is_icmp(p, 8)}
    assert sources == {box.site.uplink_ip for box in boxes}, sources
    assert not any(p["ip_src"].startswith("10.0.3.") for p in cap.packets())
    # the site host reaches a container at another site from its own site address
    a, c_box = lab.sites["A"], boxes[3]
    with lab.capture(c_box.site.ns, c_box.port, "icmp") as cap:
        ping(a, addresses[3])
    assert {p["ip_src"] for p in cap.packets() if is_icmp(p, 8)} == {a.site_address}


def doctor(lab, site):
    site = lab.sites[site]
    return site.exec([os.path.join(sys.prefix, "bin", "ipop-ryu"), "doctor", "--config-file",
                      site.config_path], check=False)


FAULTS = [
    # (what breaks, how, how it is put back, what doctor names)
    ("gateway address", ["ip", "address", "del", "10.0.3.1/24", "dev", "br0"], None,
     "does not hold the gateway 10.0.3.1/24"),
    # (vswitchd keeps the port's MAC at hwaddr: without it, the bridge takes a port's)
    ("gateway MAC", ["ovs-vsctl", "remove", "bridge", "br0", "other-config", "hwaddr"], None,
     "not gateway_mac 02:49:50:4f:50:01"),
    ("forwarding", ["sysctl", "-w", "net.ipv4.ip_forward=0"], None,
     "net.ipv4.ip_forward is off"),
    ("redirects", ["sysctl", "-w", "net.ipv4.conf.all.send_redirects=1"],
     ["sysctl", "-w", "net.ipv4.conf.all.send_redirects=0"],
     "net.ipv4.conf.all.send_redirects is on"),
    ("ARP from the ports' veths", ["sysctl", "-w", "net.ipv4.conf.all.arp_ignore=0"], None,
     "net.ipv4.conf.all.arp_ignore is 0"),
    ("NAT", ["nft", "delete", "table", "inet", "ipop_br0"], None, "no NAT for 10.0.3.0/24"),
    ("site address", ["ip", "address", "flush", "dev", "site0"], None,
     "site0 does not hold site_address"),
]


def test_doctor_healthy_then_names_each_services_fault(services_lab):
    lab = services_lab
    site = lab.sites["B"]
    healthy = doctor(lab, "B")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    setup = [os.path.join(sys.prefix, "bin", "ipop-ryu"), "services", "setup", "br0",
             "--config-file", site.config_path, "--uplink", "ul0"]
    for what, breaks, repair, named in FAULTS:
        site.exec(breaks)
        found = doctor(lab, "B")
        assert found.returncode == 1 and named in found.stdout, (what, found.stdout)
        site.exec(repair or setup)      # setup again puts everything back
        again = doctor(lab, "B")
        assert again.returncode == 0, (what, again.stdout)
    # dnsmasq gone (the lab owns it: stopped by pid, started again the same way)
    lab.stop_dhcp(site)
    found = doctor(lab, "B")
    assert found.returncode == 1 and "no DHCP server on br0" in found.stdout, found.stdout
    lab.start_dhcp(site)
    assert doctor(lab, "B").returncode == 0


def test_dhcp_refuses_a_taken_port_in_one_line(services_lab):
    """A second server for the same bridge (lxc-net's, say) is refused before dnsmasq runs."""
    site = services_lab.sites["C"]
    second = site.exec(dhcp_argv(services_lab, site), check=False, timeout=10)
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot bind DHCP (UDP 67) on br0" in lines[0], second.stderr

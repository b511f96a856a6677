"""Names across sites and port security, with real LXC busybox containers on a 3-site services
lab (issue 20, items 4 and 5). Every site runs `port_security = dhcp`; the containers' udhcpc
sends their names (option 12)."""
import itertools
import subprocess
import sys

import pytest

from ipop_ryu.lab import lxc
from ipop_ryu.lab.topology import UPSTREAM_IP, mesh

from .conftest import module_lab
from .util import arp_table, stats, wait_for

pytestmark = pytest.mark.skipif(lxc.available() is not None, reason=str(lxc.available()))


@pytest.fixture(scope="module")
def secured_lab():
    yield from module_lab(mesh(3, 0, services=True, extra_options={"port_security": "dhcp"}))


@pytest.fixture
def containers(lxc_base, secured_lab):
    made = []

    def start(site):
        container = lxc.Container(lxc_base, secured_lab, secured_lab.sites[site],
                                  lxc_base.new_name(f"n{secured_lab.suffix}"),
                                  send_hostname=True)
        made.append(container)
        return container.start()

    yield start
    for container in made:
        container.destroy()


def reaches(box, where, timeout=20):
    wait_for(lambda: box.exec(["ping", "-c", "1", "-W", "1", where],
                              check=False).returncode == 0,
             timeout, f"{box.name} -> {where}")


def mac_of(box):
    return box.exec(["cat", "/sys/class/net/eth0/address"]).stdout.strip()


def gratuitous_arp(box, ip, times=3):
    """box's eth0 sends `times` gratuitous ARP requests claiming ip at its own MAC (a packet
    socket in its network namespace: nothing in the container stops it)."""
    code = ("import socket,sys\nfrom ipop_ryu.core import arp\n"
            "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind(('eth0',0))\n"
            f"f=arp.build(arp.request('{ip}','{mac_of(box)}','{ip}'))\n"
            f"[s.send(f) for _ in range({times})]\n")
    subprocess.run(["nsenter", "-t", str(box.pid), "-n", sys.executable, "-c", code],
                   check=True, capture_output=True, timeout=30)


def test_every_pair_of_containers_pings_by_name_across_sites(secured_lab, containers):
    boxes = [containers(site) for site in ("A", "B", "C")]
    addresses = {box.name: box.wait_ipv4() for box in boxes}
    for a, b in itertools.permutations(boxes, 2):
        reaches(a, b.name)
        reaches(a, f"{b.name}.lxc")
    # the hosts file a site writes holds the others, by the address each leased
    a = secured_lab.sites["A"]
    with open(f"{a.rundir}/hosts/overlay") as f:
        lines = set(f.read().splitlines()[1:])
    assert lines == {f"{addresses[b.name]} {b.name} {b.name}.lxc" for b in boxes[1:]}


def test_a_container_claiming_a_neighbours_address_is_dropped_and_counted(secured_lab,
                                                                          containers):
    lab = secured_lab
    victim, thief, far_b, far_c = (containers(site) for site in ("A", "A", "B", "C"))
    ips = {box.name: box.wait_ipv4() for box in (victim, thief, far_b, far_c)}
    for box in (far_b, far_c, thief):
        reaches(box, ips[victim.name])
    victim_mac = mac_of(victim)
    a = lab.sites["A"]
    before = stats(a)["port_security"]["dropped_by_port"].get(thief.port, 0)
    gratuitous_arp(thief, ips[victim.name])
    gratuitous_arp(thief, ips[far_c.name])         # an address at another site, too
    wait_for(lambda: stats(a)["port_security"]["dropped_by_port"].get(thief.port, 0)
             >= before + 6, 10, "the thief's ARP counted as dropped at A")
    # nothing moved: every site still has the victim (and C's host) where they are
    for site in lab.sites.values():
        table = arp_table(site)
        assert table[ips[victim.name]]["mac"] == victim_mac, (site.name, table)
        assert table[ips[far_c.name]]["node"] == "C", (site.name, table)
    for box in (far_b, far_c, thief):
        reaches(box, ips[victim.name], timeout=5)
    reaches(victim, ips[far_c.name], timeout=5)
    reaches(victim, UPSTREAM_IP, timeout=5)       # back through the NAT: by the site port
    assert stats(a)["port_security"]["refused"] == 0, "the datapath dropped them all"


def test_after_a_controller_restart_leased_containers_speak_before_they_renew(secured_lab,
                                                                             containers):
    """The restarted controller reads dnsmasq's lease file: once the stale flows of its old
    run are gone (the graceful restart over), a container that did not renew still resolves
    and reaches a host at another site."""
    lab = secured_lab
    here, there = containers("A"), containers("B")
    ips = {box.name: box.wait_ipv4() for box in (here, there)}
    reaches(here, ips[there.name])
    lab.stop_controller("A")
    lab.start_controller("A")
    a = lab.sites["A"]
    wait_for(lambda: not stats(a)["graceful_restart"]["active"], 60, "A's graceful restart")
    assert stats(a)["port_security"]["restored"] >= 1
    here.exec(["ip", "neigh", "flush", "dev", "eth0"])
    reaches(here, ips[there.name], timeout=10)
    assert ips[here.name] in arp_table(lab.sites["B"]), "learned again from its own ARP"

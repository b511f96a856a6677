"""A real DHCP exchange on the lab (issue 20): dnsmasq on site A's bridge port (the anycast
gateway, as lxc-net serves lxcbr0), busybox udhcpc in a container. The lease is known at the
other site from its ACK (a responder there), and no DHCP frame crosses the overlay."""
import os
import re
import shutil
import signal
import time

import pytest

from ipop_ryu.core import dhcp
from ipop_ryu.lab import netns
from ipop_ryu.lab.topology import seed_two_sites
from ipop_ryu.lab.traffic import ping

from .util import arp_table, flows, stats, wait_for

GATEWAY, GATEWAY_MAC = "10.0.3.1", "02:49:50:4f:50:01"
POOL = ("10.0.3.10", "10.0.3.49")
DHCP_FILTER = "udp port 67 or udp port 68"
# the client's script: take the address (udhcpc -s; busybox has no default script here)
CLIENT_SCRIPT = """#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface" ;;
  bound|renew) ip addr add "$ip/${mask:-24}" dev "$interface" 2>/dev/null || true ;;
esac
exit 0
"""

pytestmark = pytest.mark.skipif(not (shutil.which("dnsmasq") and shutil.which("busybox")),
                                reason="needs dnsmasq (dnsmasq-base) and busybox")


def serve_dhcp(lab, site, request, gateway6=None):
    """The gateway on the bridge's own port and dnsmasq bound to it, as the site's host
    side sets them up (with gateway6: router advertisements too); stopped by pid when the
    test ends."""
    bridge = site.bridge
    site.vsctl("set", "bridge", bridge, f"other-config:hwaddr={GATEWAY_MAC}")
    lab.exec(site.ns, ["ip", "addr", "add", f"{GATEWAY}/24", "dev", bridge])
    ra = []
    if gateway6:
        # on the bridge's port alone: the site's VXLAN ports would send RSs of their own
        lab.exec(site.ns, ["sysctl", "-qw", f"net.ipv6.conf.{bridge}.disable_ipv6=0"])
        lab.exec(site.ns, ["ip", "addr", "add", gateway6, "dev", bridge, "nodad"])
        ra = ["--enable-ra", f"--dhcp-range=::,constructor:{bridge},ra-stateless"]
    lab.exec(site.ns, ["ip", "link", "set", bridge, "up"])
    # the userspace datapath forwards partial checksums as they are (see Lab): the kernel
    # must fill in dnsmasq's, or udhcpc drops the replies
    lab.exec(site.ns, ["ethtool", "-K", bridge, "tx", "off"])
    wait_for(lambda: GATEWAY_MAC in lab.exec(site.ns, ["ip", "link", "show", bridge]).stdout,
             5, "the gateway MAC on the bridge's port")
    rundir = site.rundir
    proc = netns.spawn(site.ns, [
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--bind-interfaces",
        f"--interface={bridge}", "--except-interface=lo", "--port=0",
        f"--dhcp-range={POOL[0]},{POOL[1]},255.255.255.0,2m",
        f"--dhcp-leasefile={os.path.join(rundir, 'dnsmasq.leases')}",
        f"--pid-file={os.path.join(rundir, 'dnsmasq.pid')}", "--log-dhcp",
        "--log-facility=-", *ra],
        os.path.join(rundir, "dnsmasq.log"), lab._env_for(site.ns))
    request.addfinalizer(lambda: netns.terminate(proc))
    wait_for(lambda: os.path.exists(os.path.join(rundir, "dnsmasq.pid")), 10, "dnsmasq up")
    return proc


def start_client(lab, host, request):
    script = os.path.join(lab.workdir, "udhcpc.sh")
    with open(script, "w") as f:
        f.write(CLIENT_SCRIPT)
    os.chmod(script, 0o755)
    host.exec(["ip", "-4", "addr", "flush", "dev", "eth0"])    # from now on: DHCP only
    log = os.path.join(lab.workdir, f"udhcpc-{host.name}.log")
    proc = netns.spawn(host.ns, ["busybox", "udhcpc", "-f", "-i", "eth0", "-s", script,
                                 "-x", f"hostname:{host.name}"], log, lab._env_for(host.ns))
    request.addfinalizer(lambda: netns.terminate(proc))

    def obtained():
        with open(log, errors="replace") as f:
            found = re.search(r"lease of ([\d.]+) obtained", f.read())
        return found and found.group(1)
    return proc, wait_for(obtained, 30, "a lease", show=lambda: open(log).read())


def responder_installed_at(site, ip):
    """Wall-clock time the responder for ip went into the site's bridge (now - duration),
    or None."""
    lines = flows(site, "proxy_arp", ip)
    found = re.search(r"duration=([\d.]+)s", lines[0]) if lines else None
    return found and time.time() - float(found.group(1))


def ack_time(capture, ip):
    for packet in capture.packets():
        try:
            frame = dhcp.parse(packet["raw"])
        except dhcp.Malformed:
            continue
        if frame and frame.message_type == dhcp.ACK and frame.yiaddr == ip:
            return packet["time"]
    return None


def test_a_lease_is_answered_at_the_other_site_and_dhcp_never_crosses(lab_factory, request):
    lab = lab_factory(seed_two_sites(extra_options={"gateway": f"{GATEWAY}/24"}))
    a, b, h3, h7 = lab.sites["A"], lab.sites["B"], lab.hosts["h3"], lab.hosts["h7"]
    serve_dhcp(lab, a, request)
    overlay = {site: lab.capture(site, f"ipop-{other}", DHCP_FILTER)
               for site, other in (("A", "B"), ("B", "A"))}
    live = lab.capture("A", "ipop-B", "icmp")          # the overlay capture sees traffic
    at_client = lab.capture("h3", "eth0", DHCP_FILTER)
    with overlay["A"], overlay["B"], live, at_client:
        client, leased = start_client(lab, h3, request)
        assert POOL[0] <= leased <= POOL[1] and len(leased) == len(POOL[0])
        installed = wait_for(lambda: responder_installed_at(b, leased), 5,
                             f"B's responder for {leased}")
        assert ping(h7, leased).ok, "B's host reaches the leased address"
        assert ping(lab.hosts["h5"], "10.0.3.7").ok
    acked = ack_time(at_client, leased)
    assert acked is not None, "the client saw its ACK"
    print(f"ACK to B's responder: {(installed - acked) * 1000:.0f} ms")
    assert overlay["A"].count() == 0 and overlay["B"].count() == 0, "DHCP crossed the overlay"
    assert live.count() > 0, "the overlay capture was live"
    row = arp_table(a)[leased]
    assert row["node"] == "A" and row["mac"] == h3.mac
    assert GATEWAY not in arp_table(a) and GATEWAY not in arp_table(b)
    services = stats(a)["services"]
    assert services["new"] == 1 and services["leases"] == 1 and services["dhcp_malformed"] == 0

    client.send_signal(signal.SIGUSR2)                 # udhcpc: release the lease
    wait_for(lambda: not flows(b, "proxy_arp", leased), 5, f"{leased} withdrawn at B")
    assert leased not in arp_table(b)


def default_route6(host):
    return host.exec(["ip", "-6", "route", "show", "default"]).stdout


def test_router_advertisements_stay_in_their_site(lab_factory, request):
    """RAs for gateway6 from site A's gateway: A's container forms its SLAAC address and
    routes via the link-local every site shares; B's, with no server of its own, hears
    none (nor does either overlay port carry an RS or RA)."""
    spec = seed_two_sites(extra_options={"gateway": f"{GATEWAY}/24",
                                         "gateway6": "fd00:3::1/64"})
    spec.ipv6 = True
    lab = lab_factory(spec)
    h3, h7 = lab.hosts["h3"], lab.hosts["h7"]
    router_filter = "icmp6 and (ip6[40] == 133 or ip6[40] == 134)"
    overlay = [lab.capture("A", "ipop-B", router_filter), lab.capture("B", "ipop-A",
                                                                      router_filter)]
    at_b = lab.capture("h7", "eth0", router_filter)
    with overlay[0], overlay[1], at_b:
        serve_dhcp(lab, lab.sites["A"], request, gateway6="fd00:3::1/64")
        h7.exec(["ip", "link", "set", "eth0", "down"])       # each sends its RS anew
        h7.exec(["ip", "link", "set", "eth0", "up"])
        h3.exec(["ip", "link", "set", "eth0", "down"])
        h3.exec(["ip", "link", "set", "eth0", "up"])
        route = wait_for(lambda: "fe80::49:50ff:fe4f:5001" in default_route6(h3)
                         and default_route6(h3), 20, "h3's default route from the RA")
        assert "dev eth0" in route
        assert "fd00:3::" in h3.exec(["ip", "-6", "addr", "show", "dev", "eth0",
                                      "mngtmpaddr"]).stdout, "a SLAAC address"
        # B's host asks (its RS after the link came up) and is not answered from A
        wait_for(lambda: at_b.proc.poll() is None and os.path.getsize(at_b.path) > 24, 10,
                 "h7's router solicitation")
    assert default_route6(h7) == "", "no route from another site's RA"
    assert all(p.get("raw", b"")[54:55] != b"\x86" for p in at_b.packets()), \
        "h7 heard no RA"
    assert overlay[0].count() == 0 and overlay[1].count() == 0, "RS/RA crossed the overlay"

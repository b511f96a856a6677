"""IPv6 Neighbor Discovery across sites, with real kernel IPv6 in the containers: resolution
relayed, learned and answered in the datapath (global and link-local), duplicate address
detection across sites, unicast NS to the real host, a host that moves."""
import json
import os
import re
import sys

import pytest

from ipop_ryu.core import nd
from ipop_ryu.lab.topology import mesh, seed_two_sites
from ipop_ryu.lab.traffic import ping

from .util import add_host, arp_table, flows, n_packets, ping_until_ok, stats, wait_for

NS_FILTER = "icmp6 and ip6[40] == 135"           # neighbour solicitations (no ext. headers)
MULTICAST_NS = NS_FILTER + " and ether[0] & 1 = 1"   # resolution, not unreachability probes


def ipv6_lab(lab_factory, spec=None, **kw):
    spec = spec or seed_two_sites(**kw)
    spec.ipv6 = True
    return lab_factory(spec)


def link_local(host):
    out = host.exec(["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"]).stdout
    return re.search(r"inet6 (fe80::[0-9a-f:]+)/64", out).group(1)


def ping6(host, ip, count=3):
    return ping(host, f"{ip}%eth0" if ip.startswith("fe80:") else ip, count=count)


def flush6(host):
    host.exec(["ip", "-6", "neigh", "flush", "dev", "eth0"])


def neighbour_mac(host, ip):
    out = host.exec(["ip", "-6", "neigh", "show", ip, "dev", "eth0"]).stdout
    found = re.search(r"lladdr ([0-9a-f:]{17})", out)
    return found and found.group(1)


def address_state(host, ip):
    """'dadfailed', 'tentative', 'ok' or None (no such address)."""
    out = host.exec(["ip", "-6", "-o", "addr", "show", "dev", "eth0"]).stdout
    line = next((l for l in out.splitlines() if f" {ip}/" in l), None)
    if line is None:
        return None
    return "dadfailed" if "dadfailed" in line else "tentative" if "tentative" in line else "ok"


def inject(host, frame):
    """Send one raw Ethernet frame out of a container's eth0."""
    code = ("import socket,sys;s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW);"
            "s.bind(('eth0',0));s.send(bytes.fromhex(sys.argv[1]))")
    host.exec([sys.executable, "-c", code, frame.hex()])


def nd_sent(site, kind):
    return stats(site)["icc"]["sent"][kind]


def test_ping6_across_two_sites_global_and_link_local(lab_factory):
    lab = ipv6_lab(lab_factory)
    a, h5, h7 = lab.sites["A"], lab.hosts["h5"], lab.hosts["h7"]
    ll7 = link_local(h7)
    for ip in (h7.ip6, ll7):
        assert ping6(h5, ip).ok, f"h5 -> {ip}"
        assert neighbour_mac(h5, ip) == h7.mac
    table = arp_table(a)
    assert table[h7.ip6]["node"] == "B" and table[h7.ip6]["proxy_flow"]
    assert table[ll7]["node"] == "B" and table[ll7]["family"] == "ipv6"
    responders = flows(a, "proxy_nd")
    assert any(f"nd_target={h7.ip6}" in line for line in responders), responders
    assert flows(a, "proxy_nd", h7.ip6), "cookie=<proxy_nd|crc32(address)>/-1 finds it"
    summary = a.exec([os.path.join(sys.prefix, "bin", "ipop-ryu"), "flows"]).stdout
    assert f"proxy-ND {h7.ip6} -> {h7.mac}" in summary, summary

    # learned: the datapath answers, no NS crosses the overlay and no ICC is sent for it
    before = n_packets(responders), nd_sent(a, "nd_request")
    with lab.capture("A", "ipop-B", MULTICAST_NS) as cap:
        for ip in (h7.ip6, ll7):
            flush6(h5)
            assert ping6(h5, ip, count=1).ok
            assert neighbour_mac(h5, ip) == h7.mac
    assert cap.count() == 0, "no neighbour solicitation crossed the overlay"
    assert nd_sent(a, "nd_request") == before[1]
    assert n_packets(flows(a, "proxy_nd")) >= before[0] + 2, "answered by the flows"


def test_three_sites_resolve_each_other_over_ipv6(lab_factory):
    lab = ipv6_lab(lab_factory, mesh(3, 1))
    hosts = list(lab.hosts.values())
    for src in hosts:
        for dst in hosts:
            if src is not dst:
                assert ping6(src, dst.ip6, count=1).ok, f"{src.name} -> {dst.ip6}"
                assert ping6(src, link_local(dst), count=1).ok, f"{src.name} -> {dst.name} LL"


@pytest.mark.parametrize("announce", [True, False])
def test_dad_fails_for_an_address_owned_at_another_site(lab_factory, announce):
    lab = ipv6_lab(lab_factory, extra_options={"announce": announce})
    a, b, h5, h7 = lab.sites["A"], lab.sites["B"], lab.hosts["h5"], lab.hosts["h7"]
    ndping(h7, "ff02::1")    # h7 speaks (B learns it); not a host's address: never relayed
    wait_for(lambda: h7.ip6 in arp_table(b), 5, "B learns h7")
    if announce:
        wait_for(lambda: h7.ip6 in arp_table(a), 5, "A learns h7 from B's announcement")
    else:
        assert h7.ip6 not in arp_table(a), "pull mode: A has not heard of h7"
    h5.exec(["ip", "-6", "addr", "add", f"{h7.ip6}/64", "dev", "eth0"])
    wait_for(lambda: address_state(h5, h7.ip6) == "dadfailed", 3,
             "h5's duplicate of h7's address fails DAD", show=lambda: address_state(h5, h7.ip6))
    assert stats(a)["nd"]["dad_defended"] >= 1 and stats(a)["table"]["conflicts"] >= 1
    assert ping6(lab.hosts["h3"], h7.ip6, count=1).ok, "h7 keeps its address"
    # a free address passes (RetransTimer 1 s, one probe)
    h5.exec(["ip", "-6", "addr", "add", "fd00:3::99/64", "dev", "eth0"])
    wait_for(lambda: address_state(h5, "fd00:3::99") == "ok", 4, "a free address passes DAD",
             show=lambda: address_state(h5, "fd00:3::99"))


def test_unicast_ns_reaches_the_real_host(lab_factory):
    lab = ipv6_lab(lab_factory)
    a, h5, h7 = lab.sites["A"], lab.hosts["h5"], lab.hosts["h7"]
    assert ping6(h5, h7.ip6).ok                          # learned: A's responder is in
    before = n_packets(flows(a, "proxy_nd"))
    nud = nd.NdFrame(h5.mac, h7.mac, h5.ip6, h7.ip6, nd.NS, h7.ip6, h5.mac)
    with lab.capture("h7", "eth0", f"{NS_FILTER} and ether src {h5.mac}") as at_h7, \
            lab.capture("h5", "eth0", f"icmp6 and ip6[40] == 136 and ether src {h7.mac}") \
            as at_h5:
        inject(h5, nd.build(nud))
        wait_for(lambda: _count_now(at_h5) >= 1, 3, "h7 itself answers the unicast NS")
    assert at_h7.count() == 1, "the unicast NS reached h7"
    assert n_packets(flows(a, "proxy_nd")) == before, "never answered by the responder"


def _count_now(capture):
    capture._packets = None      # re-read the pcap (tcpdump -U writes each packet at once)
    return capture.count()


def test_an_ipv6_host_moves_to_another_site(lab_factory):
    lab = ipv6_lab(lab_factory)
    a, b, h5, h7 = lab.sites["A"], lab.sites["B"], lab.hosts["h5"], lab.hosts["h7"]
    assert ping6(h5, h7.ip6).ok
    ip6, mac = h7.ip6, h7.mac
    lab.sites["B"].vsctl("del-port", "br0", h7.port)
    moved = add_host(lab, "A", "h7m", h7.ip, mac, ip6=ip6)
    ping_until_ok(moved, h5.ip6, timeout=10)             # it speaks at its new site
    wait_for(lambda: arp_table(a).get(ip6, {}).get("node") == "A" and
             arp_table(b).get(ip6, {}).get("node") == "A", 5, "both sites see the move",
             show=lambda: (arp_table(a).get(ip6), arp_table(b).get(ip6)))
    assert not flows(a, "proxy_nd", ip6), "a local host answers for itself"
    flush6(lab.hosts["h104"])
    assert ping6(lab.hosts["h104"], ip6).ok, "B's hosts reach it at A"


def ndping(host, target, count=1, gap_ms=20):
    """RTTs (ms, None if unanswered) of whole ND resolutions from host (see lab/ndping.py)."""
    out = host.exec([sys.executable, "-m", "ipop_ryu.lab.ndping", "eth0", host.ip6, target,
                     count, gap_ms], timeout=count * 2 + 10).stdout
    return json.loads(out)


def median(values):
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def test_nd_latency_and_ns_across_the_overlay(lab_factory, record_property):
    """The bench's ND rows, measured as its ARP ones are (whole resolutions, no cache):
    same-site, warm remote (learned: the proxy-ND flow), cold remote (pull mode: relayed),
    against OVS NORMAL's same-site; and the NS frames that cross the overlay (target 0)."""
    normal = ipv6_lab(lab_factory, controller="normal")
    base = median(ndping(normal.hosts["h5"], normal.hosts["h3"].ip6, 30))
    normal.down()
    lab = ipv6_lab(lab_factory, extra_options={"announce": False})
    h5, h3 = lab.hosts["h5"], lab.hosts["h3"]
    aliases = [f"fd00:3::7:{n:x}" for n in range(1, 11)]     # cold targets: never asked
    for alias in aliases:
        lab.hosts["h7"].exec(["ip", "-6", "addr", "add", f"{alias}/64", "dev", "eth0", "nodad"])
    with lab.capture("A", "ipop-B", MULTICAST_NS) as cap:
        cold = [ndping(h5, ip)[0] for ip in aliases]
        same = ndping(h5, h3.ip6, 30)
        warm = ndping(h5, lab.hosts["h7"].ip6, 30)
    rows = {"nd_same_site_ms": median(same), "nd_warm_remote_ms": median(warm),
            "nd_cold_remote_ms": median(cold), "normal_same_site_ms": base,
            "multicast_ns_across_overlay": cap.count()}
    for name, value in rows.items():
        record_property(name, value)
    print("ND rows:", json.dumps(rows))
    assert None not in cold and all(same) and all(warm), rows
    assert cap.count() == 0, "no multicast NS crossed the overlay (unicast NUD probes may)"

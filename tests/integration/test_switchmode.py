"""Switch mode end to end on the real lab: OVS per site, VXLAN overlay, ryu-manager per site."""
import time

from ipop_ryu.core import icc
from ipop_ryu.lab.topology import mesh, seed_two_sites
from ipop_ryu.lab.traffic import arping, flush_arp, is_arp, ping

from .util import (arp_table, controller_alive, flows, n_packets, ping_until_ok, send_udp,
                   stats, wait_for)

BCAST = "ff:ff:ff:ff:ff:ff"


def is_icc(p):
    """An ICC datagram about ARP (hellos are the peers' heartbeat, not about resolution)."""
    return p.get("proto") == 17 and icc.NODE_MAGIC in p["raw"] \
        and b'"hello"' not in p["raw"] and (p.get("dport") == 30000 or p.get("sport") == 30000)


def test_seed_pings_across_and_within_sites(lab_factory, record_property):
    lab = lab_factory(seed_two_sites())
    h5, h3, h104 = lab.hosts["h5"], lab.hosts["h3"], lab.hosts["h104"]
    record_property("first_ping_s", ping_until_ok(h5, "10.0.3.7"))
    for host, ip in [(h5, "10.0.3.7"), (h3, "10.0.3.5"), (h3, "10.0.3.104"),
                     (h104, "10.0.3.5"), (lab.hosts["h7"], "10.0.3.104")]:
        result = ping(host, ip, count=5)
        assert result.ok and result.received == 5, result.output
        assert result.dups == 0 and not result.redirects, result.output
    # the requester got the owner's real MAC
    neigh = h5.exec(["ip", "neigh", "show", "10.0.3.7"]).stdout
    assert lab.hosts["h7"].mac in neigh, neigh


def test_first_resolution_crosses_as_icc_not_broadcast_arp(lab_factory):
    lab = lab_factory(seed_two_sites())
    with lab.capture("A", "ipop-B", "arp") as overlay_a, \
            lab.capture("B", "ipop-A", "arp") as overlay_b, \
            lab.capture("A", "ul0", "udp port 30000") as underlay:
        result = arping(lab.hosts["h5"], "10.0.3.7", count=1, timeout=5)
        assert result.ok and result.mac == lab.hosts["h7"].mac, result.output
        wait_for(lambda: underlay.count(is_icc) >= 2, 5, "request and reply on the underlay")
    for cap in (overlay_a, overlay_b):
        assert cap.count(lambda p: is_arp(p) and p["dst"] == BCAST) == 0, cap.packets()
    kinds = [p["raw"] for p in underlay.packets() if is_icc(p)]
    assert any(b'"arp_request"' in raw for raw in kinds)
    assert any(b'"arp_reply"' in raw for raw in kinds)


def test_learned_address_is_answered_inside_the_site_by_a_flow(lab_factory):
    lab = lab_factory(seed_two_sites())
    site_a = lab.sites["A"]
    assert arping(lab.hosts["h5"], "10.0.3.7").ok                     # first: via B
    responder = wait_for(lambda: flows(site_a, "proxy_arp", "10.0.3.7"), 5, "responder flow")
    assert "arp_tpa=10.0.3.7" in responder[0] and "IN_PORT" in responder[0], responder
    before = n_packets(responder)
    with lab.capture("A", "ul0", "udp port 30000") as underlay, \
            lab.capture("A", "ipop-B", "arp") as overlay:
        result = arping(lab.hosts["h3"], "10.0.3.7", count=3, timeout=5)
    assert result.ok and result.mac == lab.hosts["h7"].mac, result.output
    relays = underlay.count(lambda p: is_icc(p) and b'"arp_request"' in p["raw"])
    assert relays == 0, "no ICC request for a learned address (h3 itself is announced)"
    assert overlay.count() == 0, "no ARP frame leaves the site"
    assert n_packets(flows(site_a, "proxy_arp", "10.0.3.7")) >= before + 3, \
        "answered by the datapath"


def test_three_sites_full_mesh(lab_factory):
    lab = lab_factory(mesh(3, 2))
    hosts = list(lab.hosts.values())
    with lab.capture("A", "ul0", "udp port 4789") as underlay:
        for src in hosts:
            for dst in hosts:
                if src is not dst:
                    result = ping(src, dst.ip, count=2, interval=0.2)
                    assert result.ok and result.dups == 0, (src.name, dst.ip, result.output)
    # no storm: every frame on A's underlay is accounted for by the pings
    pairs = len(hosts) * (len(hosts) - 1)
    inner = [p.get("inner", {}) for p in underlay.packets()]
    assert sum(1 for p in inner if is_arp(p) and p.get("dst") == BCAST) == 0
    assert len(inner) < pairs * 2 * 2 * 3, f"{len(inner)} frames on A's underlay"


def test_host_that_leaves_expires_and_is_not_answered(lab_factory):
    lab = lab_factory(seed_two_sites(arp_timeout=4))
    site_a, h7 = lab.sites["A"], lab.hosts["h7"]
    assert arping(lab.hosts["h5"], "10.0.3.7").ok
    wait_for(lambda: flows(site_a, "proxy_arp", "10.0.3.7"), 5, "responder flow")
    # the host falls silent, its port up (a port whose link goes down is withdrawn at once:
    # test_port_flows)
    h7.exec(["ip", "link", "set", "eth0", "arp", "off"])
    wait_for(lambda: not flows(site_a, "proxy_arp", "10.0.3.7"), 10, "responder removed")
    # the flow's hard timeout is the entry's remaining life in whole seconds, rounded down:
    # it goes up to a second before the entry, which the controller answers from till then
    wait_for(lambda: "10.0.3.7" not in arp_table(site_a), 10, "entry expired")
    flush_arp(lab.hosts["h3"])
    result = arping(lab.hosts["h3"], "10.0.3.7", count=2, timeout=3)
    assert not result.ok, result.output


def test_junk_and_forged_icc_change_nothing(lab_factory):
    lab = lab_factory(seed_two_sites(keys="shared"))   # the shared key's format
    site_a = lab.sites["A"]
    assert ping(lab.hosts["h5"], "10.0.3.7").ok
    proxies = flows(site_a, "proxy_arp")
    good = icc.Codec(b"0" * 32)   # not the lab's key
    forged = [good.encode("arp_reply", "B", n, time.time(), ip="10.0.3.66",
                          mac="02:00:00:00:00:66") for n in range(50)]
    unsigned = [icc.MAGIC + bytes(32) + f[36:] for f in forged]
    junk = [b"", b"x", b"IPOP", b"\xff" * 2000, b"IPOP" + bytes(40), b"{" * 500]
    send_udp(lab, "B", (site_a.underlay_ip, 30000), junk + forged + unsigned)
    log = lambda: open(site_a.log_path, errors="replace").read()
    wait_for(lambda: "bad_signature" in log(), 5, "drop logged")
    assert "Traceback" not in log()
    dropped = wait_for(lambda: (lambda d: d if sum(d.values()) >= len(junk) + 100 else None)(
        stats(site_a)["icc"]["dropped"]), 5, "drops counted")
    assert dropped["bad_signature"] == 101, str(dropped)
    assert dropped["truncated"] >= 3 and dropped["oversized"] == 1, dropped
    assert controller_alive(lab, "A")
    assert flows(site_a, "proxy_arp", "10.0.3.66") == []
    assert sorted(l.split(" actions")[0].split("priority")[1] for l in flows(site_a, "proxy_arp")) \
        == sorted(l.split(" actions")[0].split("priority")[1] for l in proxies)
    assert ping(lab.hosts["h3"], "10.0.3.104").ok


def test_unicast_arp_reaches_the_real_host_never_the_proxy(lab_factory):
    lab = lab_factory(seed_two_sites())
    h5, h7 = lab.hosts["h5"], lab.hosts["h7"]
    assert arping(h5, "10.0.3.7").ok
    unicast = ["arping", "-c", "2", "-C", "1", "-w", "3", "-t", h7.mac, "-i", "eth0", "10.0.3.7"]
    out = h5.exec(unicast, check=False).stdout          # a kernel-style liveness probe
    assert f"from {h7.mac}" in out.lower(), out         # ... answered by h7 across the overlay
    # h5's requests were just replayed at B, so B's catch flow for h5 took h7's reply: B's
    # controller forwarded it (it answers no relay), as the datapath would have
    assert stats(lab.sites["B"])["arp"]["caught_forwarded"] >= 1
    h7.exec(["ip", "link", "set", "eth0", "arp", "off"])      # silent, still learned
    out = h5.exec(unicast, check=False).stdout
    assert "from" not in out.lower(), "the proxy never answers a unicast probe: " + out
    assert arping(h5, "10.0.3.7").ok, "a broadcast request is still answered while it lives"

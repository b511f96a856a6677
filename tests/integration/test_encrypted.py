"""The encrypted lab: sites joined by WireGuard, each keyed with its controller's own key."""
import re

from ipop_ryu.lab import wireguard
from ipop_ryu.lab.lab import ENCRYPTED_MTU
from ipop_ryu.lab.topology import seed_two_sites
from ipop_ryu.lab.traffic import arping, flush_arp, ping

from .util import flows, n_packets, stats, wait_for

ICMP, UDP = 1, 17


def test_only_wireguard_crosses_the_underlay_while_arp_suppression_works(lab_factory):
    lab = lab_factory(seed_two_sites(encrypt=True))
    a, h3, h5 = lab.sites["A"], lab.hosts["h3"], lab.hosts["h5"]
    with lab.capture("A", "ul0", "") as cap:
        assert ping(h3, "10.0.3.7").ok and arping(h5, "10.0.3.104").ok
        wait_for(lambda: flows(a, "proxy_arp", "10.0.3.7"), 5, "a responder for h7")
        answered = n_packets(flows(a, "proxy_arp", "10.0.3.7"))
        before = stats(a)["icc"]["sent"]["arp_request"]
        flush_arp(h3)
        assert arping(h3, "10.0.3.7").ok and ping(h3, "10.0.3.7").ok
        assert n_packets(flows(a, "proxy_arp", "10.0.3.7")) > answered, "answered by the flow"
        assert stats(a)["icc"]["sent"]["arp_request"] == before, "no relay once learned"
    packets = cap.packets()
    assert packets, "the traffic crossed the underlay"
    clear = [p for p in packets if not (p.get("proto") == UDP and
                                        wireguard.PORT in (p.get("sport"), p.get("dport")))]
    assert clear == [], f"{len(clear)} frames not WireGuard, e.g. {clear[:3]}"
    raw = b"".join(p["raw"] for p in packets)
    for plain in (b"IPON", b"IPOP", b'"arp_reply"', bytes.fromhex("0a000307")):
        assert plain not in raw, f"{plain!r} in clear on the underlay"


def test_full_size_packets_cross_and_one_more_byte_is_refused_locally(lab_factory):
    lab = lab_factory(seed_two_sites(encrypt=True))
    h3 = lab.hosts["h3"]
    assert lab.mtu == ENCRYPTED_MTU == 1370
    biggest = ENCRYPTED_MTU - 28          # IPv4 and ICMP headers
    ok = h3.exec(["ping", "-n", "-c", "2", "-M", "do", "-s", str(biggest), "10.0.3.7"],
                 check=False)
    assert ok.returncode == 0 and " 0% packet loss" in ok.stdout, ok.stdout + ok.stderr
    over = h3.exec(["ping", "-n", "-c", "1", "-M", "do", "-s", str(biggest + 1), "10.0.3.7"],
                   check=False)
    assert over.returncode != 0 and "message too long" in over.stdout + over.stderr
    # a TCP transfer at full segment size completes (no black hole)
    lab.hosts["h7"].exec(["iperf3", "-s", "-1", "-D", "-B", "10.0.3.7"])
    result = wait_for(lambda: (lambda r: r if r.returncode == 0 else None)(
        h3.exec(["iperf3", "-c", "10.0.3.7", "-n", "8M", "-f", "m"], check=False)), 15,
        "iperf3 to connect")
    assert re.search(r"receiver", result.stdout), result.stdout

"""REST status, Prometheus metrics and `ipop-ryu arp|peers|stats` against running controllers."""
import json
import os
import sys

from ipop_ryu.lab.topology import seed_two_sites
from ipop_ryu.lab.traffic import arping

from .util import rest, wait_for

IPOP_RYU = os.path.join(os.path.dirname(sys.executable), "ipop-ryu")


def cli(site, *args):
    return site.exec([IPOP_RYU, *args], check=False)


def test_rest_metrics_and_cli_after_a_resolution(lab_factory):
    lab = lab_factory(seed_two_sites())
    a = lab.sites["A"]
    url = f"http://{a.underlay_ip}:8080"
    assert arping(lab.hosts["h5"], "10.0.3.7").ok                       # via B
    assert arping(lab.hosts["h3"], "10.0.3.7", count=3).ok              # by the flow

    entries = {e["ip"]: e for e in rest(a, "/ipop/v1/arp")}
    remote = entries["10.0.3.7"]
    assert (remote["mac"], remote["node"], remote["local"], remote["proxy_flow"]) == (
        lab.hosts["h7"].mac, "B", False, True)
    assert 0 < remote["expires_in"] <= 300
    assert entries["10.0.3.5"]["local"] and entries["10.0.3.5"]["port"] == "h5"

    peers = rest(a, "/ipop/v1/peers")
    assert [(p["name"], p["state"]) for p in peers] == [("B", "up")]

    stats = wait_for(lambda: (lambda s: s if s["arp"]["answered_by_flow"] >= 3 else None)(
        rest(a, "/ipop/v1/stats")), 10, "flow counters polled")
    assert stats["arp"]["answered_via_peers"] >= 1 and stats["packet_in"] >= 1
    assert stats["icc"]["sent"]["arp_request"] >= 1 and stats["icc"]["received"]["arp_reply"] >= 1

    metrics = rest(a, "/metrics")
    assert 'ipop_peer_up{node="A",peer="B"} 1.0' in metrics
    assert 'ipop_arp_answered_total{by="flow",node="A"}' in metrics
    assert 'ipop_icc_dropped_total{node="A",reason="bad_signature"} 0.0' in metrics

    shown = cli(a, "arp", "--controller", url)
    assert shown.returncode == 0, shown.stderr
    line = next(l for l in shown.stdout.splitlines() if l.startswith("10.0.3.7 "))
    assert lab.hosts["h7"].mac in line and "remote" in line and "yes (" in line
    shown = cli(a, "peers", "--controller", url)
    assert shown.returncode == 0 and "B " in shown.stdout and " up " in shown.stdout
    shown = cli(a, "stats", "--controller", url, "--json")
    assert json.loads(shown.stdout)["node_id"] == "A"


def test_cli_reports_an_unreachable_controller(lab_factory):
    lab = lab_factory(seed_two_sites(controller="normal"))
    shown = cli(lab.sites["A"], "stats", "--controller", "http://127.0.0.1:8080")
    assert shown.returncode == 2
    assert shown.stderr.startswith("ipop-ryu: cannot reach the controller at "), shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1

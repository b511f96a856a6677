"""REST status, Prometheus metrics and `ipop-ryu arp|peers|stats` against running controllers."""
import json
import os
import sys

from ipop_ryu.core.addr import ipv4_int
from ipop_ryu.lab.topology import seed_two_sites
from ipop_ryu.lab.traffic import arping

from .util import arp_table, rest, wait_for

IPOP_RYU = os.path.join(os.path.dirname(sys.executable), "ipop-ryu")


def cli(site, *args):
    return site.exec([IPOP_RYU, *args], check=False)


def http_error(site, path):
    """(status, body) of a GET that the controller refuses."""
    code = ("import sys,urllib.request,urllib.error\ntry: urllib.request.urlopen(sys.argv[1],"
            "timeout=5)\nexcept urllib.error.HTTPError as e: print(e.code); "
            "sys.stdout.write(e.read().decode())")
    out = site.exec([sys.executable, "-c", code, f"http://{site.underlay_ip}:8080{path}"]).stdout
    status, body = out.split("\n", 1)
    return int(status), body


def test_rest_metrics_and_cli_after_a_resolution(lab_factory):
    lab = lab_factory(seed_two_sites())
    a = lab.sites["A"]
    url = f"http://{a.underlay_ip}:8080"
    assert arping(lab.hosts["h5"], "10.0.3.7").ok                       # via B
    assert arping(lab.hosts["h3"], "10.0.3.7", count=3).ok              # by the flow

    entries = arp_table(a)
    remote = entries["10.0.3.7"]
    assert (remote["mac"], remote["node"], remote["local"], remote["proxy_flow"],
            remote["answered_by_flow"]) == (lab.hosts["h7"].mac, "B", False, True, None)
    assert 0 < remote["expires_in"] <= 300
    assert entries["10.0.3.5"]["local"] and entries["10.0.3.5"]["port"] == "h5"
    ordered = sorted(entries, key=ipv4_int)
    first = rest(a, "/ipop/v1/arp?limit=1")
    assert ([e["ip"] for e in first["entries"]], first["next"], first["total"]) == (
        ordered[:1], ordered[0], len(ordered))
    assert [e["ip"] for e in rest(a, "/ipop/v1/arp?after=10.0.3.5")["entries"]] == [
        ip for ip in ordered if ipv4_int(ip) > ipv4_int("10.0.3.5")]
    status, body = http_error(a, "/ipop/v1/arp?limit=0")
    assert status == 400 and body.count("\n") == 1 and json.loads(body)["parameter"] == "limit"

    peers = rest(a, "/ipop/v1/peers")
    assert [(p["name"], p["state"]) for p in peers] == [("B", "up")]

    stats = wait_for(lambda: (lambda s: s if s["arp"]["answered_by_flow"] >= 3 else None)(
        rest(a, "/ipop/v1/stats")), 10, "flow counters polled")
    assert stats["arp"]["answered_via_peers"] >= 1 and stats["packet_in"] >= 1
    assert stats["icc"]["sent"]["arp_request"] >= 1 and stats["icc"]["received"]["arp_reply"] >= 1
    assert stats["flows"]["audits"] >= 1 and stats["table"]["entries"] == len(ordered)
    assert {"sync", "graceful_restart"} <= set(stats) and stats["icc"]["bindings_invalid"] == 0

    metrics = rest(a, "/metrics")
    assert 'ipop_peer_up{node="A",peer="B"} 1.0' in metrics
    assert 'ipop_arp_answered_total{by="flow",node="A"}' in metrics
    assert 'ipop_icc_dropped_total{node="A",reason="bad_signature"} 0.0' in metrics
    assert 'ipop_flows_audits_total{node="A"}' in metrics

    shown = cli(a, "arp", "--controller", url, "--limit", "1")          # a page a row
    assert shown.returncode == 0, shown.stderr
    assert [l.split()[0] for l in shown.stdout.splitlines()[1:]] == ordered
    line = next(l for l in shown.stdout.splitlines() if l.startswith("10.0.3.7 "))
    assert lab.hosts["h7"].mac in line and "remote" in line and line.endswith(" yes")
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

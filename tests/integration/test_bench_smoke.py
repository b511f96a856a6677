"""`ipop-ryu bench --quick`: a tiny bench run, checked for the shape of what it writes."""
import json
import math
import os

from ipop_bench.metrics import METRICS
from ipop_ryu.cli import main
from ipop_ryu.lab import netns

from .util import needs_simple_switch_13

pytestmark = needs_simple_switch_13   # the bench's baseline

SYSTEMS = ("normal", "simple_switch_13", "ipop")
# measured for every system, with a ratio to NORMAL
EVERY_SYSTEM = ("arp_local_ms", "arp_cold_remote_ms", "arp_warm_remote_ms", "ping_rtt_ms",
                "first_ping_s", "xsite_arp_per_cold_resolution", "xsite_arp_per_min",
                "iperf3_mbps", "nd_local_ms", "nd_cold_remote_ms", "nd_warm_remote_ms",
                "xsite_ns_per_cold_resolution", "xsite_ns_per_warm_resolution",
                "xsite_ns_per_min")
STATUSES = ("ok", "n/a", "loops", "failed")


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_quick_bench_writes_results(tmp_path, capsys):
    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 0
    runs = os.listdir(tmp_path)
    assert len(runs) == 1, runs
    run_dir = tmp_path / runs[0]
    doc = json.loads((run_dir / "results.json").read_text())

    assert doc["schema"] == 1 and doc["config"]["quick"] is True
    assert doc["systems"] == list(SYSTEMS)
    assert set(doc["metrics"]) == set(METRICS)
    for system in SYSTEMS:
        cells = doc["results"][system]
        assert set(cells) == set(METRICS), (system, set(METRICS) ^ set(cells))
        for metric, cell in cells.items():
            where = f"{system}/{metric}: {cell}"
            assert cell["status"] in STATUSES, where
            assert {"median", "p95", "n", "ratio", "baseline", "unit", "extra"} <= set(cell)
            if cell["status"] == "ok":
                assert _number(cell["median"]) and _number(cell["p95"]), where
                assert cell["p95"] >= cell["median"] >= 0 and cell["n"] >= 1, where
                assert cell["ratio"] is None or _number(cell["ratio"]), where
        for metric in EVERY_SYSTEM:
            cell = cells[metric]
            assert cell["status"] == "ok", f"{system}/{metric}: {cell}"
            assert cell["baseline"] == "normal"
            if metric.startswith("xsite") and system == "ipop":
                continue         # ratios of counts: 0 / NORMAL's, numeric as well
            assert _number(cell["ratio"]), f"{system}/{metric}: {cell}"
        if system == "normal":
            assert all(cells[m]["ratio"] == 1.0 for m in EVERY_SYSTEM)
    results = doc["results"]
    assert results["normal"]["pktin_capacity_pps"]["status"] == "n/a"
    assert results["simple_switch_13"]["pktin_capacity_pps"]["status"] == "ok"
    assert results["ipop"]["pktin_capacity_pps"]["status"] == "ok"
    assert _number(results["ipop"]["pktin_capacity_pps"]["ratio"])
    assert results["ipop"]["icc_capacity_mps"]["status"] == "ok"
    assert results["normal"]["icc_capacity_mps"]["status"] == "n/a"
    # the datapath-first rows: measured for ipop, n/a where they cannot apply
    for metric in ("arp_local_headless_pct", "arp_announced_remote_ms", "bridge_reconnect_s",
                   "icc_per_host_min"):
        assert results["ipop"][metric]["status"] == "ok", results["ipop"][metric]
        assert results["normal"][metric]["status"] == "n/a", results["normal"][metric]
    assert results["ipop"]["arp_local_headless_pct"]["median"] == 100.0
    assert results["simple_switch_13"]["arp_local_headless_pct"]["median"] < 100.0
    # the ND rows: NORMAL floods every multicast NS to the other site, ipop none
    for system in SYSTEMS:
        mcast = results[system]["xsite_ns_per_warm_resolution"]["extra"]["multicast_mean"]
        assert (mcast == 0) if system == "ipop" else mcast >= 1, (system, mcast)
    # what the targets say, evaluated (not asserted: a quick run is not a benchmark)
    assert len(doc["targets"]) == 6 + 10 + 2 + 6
    identity = [t for t in doc["targets"] if "ICC capacity, per-node" in t["name"]
                or "WireGuard vs plain" in t["name"]]
    # a quick run's single WireGuard samples may miss; the ICC comparison is always there
    assert len(identity) == 5 and identity[0]["value"] is not None, identity
    assert results["ipop"]["icc_capacity_shared_mps"]["status"] == "ok"
    assert results["ipop"]["iperf3_wg_mbps"]["status"] == "ok"
    assert results["normal"]["iperf3_wg_mbps"]["status"] == "n/a"
    nd_targets = [t for t in doc["targets"] if "ND" in t["name"] or "NS" in t["name"]]
    assert len(nd_targets) == 2 and all(t["met"] is not None for t in nd_targets), nd_targets
    assert all(t["met"] in (True, False, None) for t in doc["targets"])
    assert [p["sites"] for p in doc["scale"]["sites"]] == [2]
    assert set(doc["scale"]["sites"][0]["results"]) == set(SYSTEMS)

    md = (run_dir / "results.md").read_text()
    assert "| metric | unit | OVS NORMAL | Ryu simple_switch_13 | ipop-ryu |" in md
    for meta in doc["metrics"].values():
        assert f"| {meta['label']} | {meta['unit']} |" in md
    assert "summary.png" in doc["plots"]
    for name in doc["plots"]:
        data = (run_dir / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
    assert "| ARP remote, warm |" in capsys.readouterr().out    # the table is printed

    # every lab is gone
    ours = set(doc["labs"])
    assert len(ours) >= 3
    left = [ns for ns in netns.list_namespaces("ipr-") if ns.split("-")[1] in ours]
    procs = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
             if netns.process_marker(pid) in ours]
    assert not left and not procs, f"left over: namespaces {left}, processes {procs}"

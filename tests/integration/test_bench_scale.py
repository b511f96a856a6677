"""`ipop-ryu bench --scale --quick`: the scale bench at N = 2,000 with short windows (about
30 s), checked for the shape of what it writes and for every entry learned and kept."""
import json
import math
import os

from ipop_ryu.cli import main

N = 2000


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_quick_scale_bench_learns_every_entry(tmp_path, capsys):
    assert main(["bench", "--scale", "--quick", "--scale-n", str(N), "--out", str(tmp_path)]) == 0
    runs = os.listdir(tmp_path)
    assert len(runs) == 1, runs
    run_dir = tmp_path / runs[0]
    assert {"scale.json", "scale.md", "scale_cost.png"} <= set(os.listdir(run_dir))
    doc = json.loads((run_dir / "scale.json").read_text())
    assert doc["kind"] == "scale" and doc["plots"] == ["scale_cost.png"]
    [point] = doc["points"]
    assert point["n"] == N and point["errors"] == {}, point["errors"]

    learn = point["learn"]
    assert learn["learned"] == N and learn["responders"] == N, learn
    assert _number(learn["table_s"]) and _number(learn["rate"]) and _number(learn["flows_s"])
    assert learn["socket_drops"] == 0 and learn["controller"]["icc_dropped"] == {}
    assert all(_number(v) for v in point["idle"]["cpu_s_per_min"].values())
    assert _number(point["memory"]["kb_per_entry"])
    arp = point["arp"]
    assert arp["lost"] == 0 and arp["wrong_mac"] == 0 and _number(arp["median"]), arp
    assert arp["relayed"] == 0, "a learned entry is answered at the site, never relayed"
    rest = point["rest"]
    assert set(rest) == {"arp_first_page", "arp_middle_page", "stats", "metrics"}
    assert all(_number(r["median"]) for r in rest.values()), rest
    # the table also holds h3 (learned locally when it asked): the total is N + 1
    assert rest["arp_first_page"]["rows"] == 1000 and rest["arp_first_page"]["total"] >= N
    assert rest["arp_middle_page"]["rows"] == N - N // 2 - 1      # the entries after N/2
    assert rest["arp_middle_page"]["next"] is None
    restart = point["restart"]
    assert restart["lost"] == 0 and restart["learned_after"] == N, restart
    assert restart["syncs_answered"] >= 1 and _number(restart["table_back_s"])
    assert point["peers"] == {**point["peers"], "state": "up", "went_down": 0}
    assert point["feeder"]["bindings_sent"] >= 2 * N        # the feed and the restart's sync

    assert len(doc["targets"]) == 8
    assert all(t["met"] in (True, False, None) for t in doc["targets"])
    out = capsys.readouterr().out
    assert "learn rate (entries/s)" in out and "scale.json" in out

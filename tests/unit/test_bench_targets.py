"""The datapath-first targets, judged on synthetic bench results."""
from ipop_bench import metrics as M


def ok(metric, median, **extra):
    return M.cell(metric, [median], **extra)


def results(**ipop):
    base = {"normal": {"arp_local_ms": ok("arp_local_ms", 0.3),
                       "first_ping_s": ok("first_ping_s", 0.2)},
            "simple_switch_13": {"first_ping_s": ok("first_ping_s", 1.3)},
            "ipop": {"arp_local_ms": ok("arp_local_ms", 0.33),
                     "arp_local_headless_pct": ok("arp_local_headless_pct", 100.0),
                     "arp_announced_remote_ms": ok("arp_announced_remote_ms", 0.3),
                     "arp_cold_remote_ms": ok("arp_cold_remote_ms", 2.4),
                     "first_ping_s": ok("first_ping_s", 1.5),
                     "bridge_reconnect_s": ok("bridge_reconnect_s", 0.8),
                     "icc_per_host_min": ok("icc_per_host_min", 0.2, bound_per_host_min=0.6)}}
    base["ipop"].update(ipop)
    return base


def grid(axis, values, metric="arp_cold_remote_ms"):
    return {axis: [{"sites": n if axis == "sites" else 2, "hosts": n if axis == "hosts" else 2,
                    "results": {"ipop": {metric: ok(metric, v)}}} for n, v in values]}


def judged(res, scale=None):
    return {t["name"]: t for t in M.check_targets(res, scale=scale)}


def test_all_met_and_each_can_fail():
    got = judged(results())
    names = [n for n in got if n.startswith(("same-site", "first resolution", "cold remote ARP "
                                             "<= 2.5", "cold start to", "bridge", "ICC per"))]
    assert len(names) == 7 and all(got[n]["met"] for n in names), got
    bad = judged(results(arp_local_ms=ok("arp_local_ms", 0.4),
                         arp_local_headless_pct=ok("arp_local_headless_pct", 90.0),
                         arp_announced_remote_ms=ok("arp_announced_remote_ms", 1.0),
                         arp_cold_remote_ms=ok("arp_cold_remote_ms", 3.0),
                         first_ping_s=ok("first_ping_s", 1.7),
                         bridge_reconnect_s=ok("bridge_reconnect_s", 1.2),
                         icc_per_host_min=ok("icc_per_host_min", 0.7, bound_per_host_min=0.6)))
    assert not any(bad[n]["met"] for n in names)


def test_growth_comes_from_the_scale_grid_or_is_not_measured():
    got = judged(results())
    assert got["cold remote ARP growth over sites <= 1.3x"]["met"] is None
    scale = {**grid("sites", [(2, 2.0), (4, 2.2), (6, 2.5)]),
             **grid("hosts", [(2, 2.0), (50, 3.0)])}
    got = judged(results(), scale)
    assert got["cold remote ARP growth over sites <= 1.3x"]["met"] is True
    assert got["cold remote ARP growth over sites <= 1.3x"]["value"] == 1.25
    assert got["cold remote ARP growth over hosts <= 1.3x"]["met"] is False
    flat = judged(results(), grid("sites", [(2, 1.5), (6, 2.1)], "first_ping_s"))
    assert flat["cold start flat from 2 to 6 sites (<= 1.3x)"]["met"] is False


def test_a_missing_measurement_is_not_judged():
    res = results()
    res["ipop"]["arp_local_headless_pct"] = M.failed("arp_local_headless_pct", "boom")
    assert judged(res)["same-site resolution with the controller stopped: 100%"]["met"] is None


def test_nd_targets():
    def nd(warm, warm_mcast, steady_mcast):
        res = results(nd_warm_remote_ms=ok("nd_warm_remote_ms", warm),
                      xsite_ns_per_warm_resolution=ok("xsite_ns_per_warm_resolution",
                                                      warm_mcast, multicast_mean=warm_mcast),
                      xsite_ns_per_min=ok("xsite_ns_per_min", steady_mcast + 6.0,
                                          multicast_per_min=steady_mcast,
                                          unicast_per_min=6.0))
        res["normal"]["nd_local_ms"] = ok("nd_local_ms", 0.5)
        got = judged(res)
        return (got["ND warm remote <= 1.2x NORMAL same-site ND"],
                got["multicast NS across sites after learning: 0"])
    latency, frames = nd(0.55, 0.0, 0.0)
    assert latency["met"] and latency["value"] == 1.1 and frames["met"] and frames["value"] == 0
    latency, frames = nd(0.65, 0.0, 12.0)
    assert latency["met"] is False and frames["met"] is False and frames["value"] == 12.0
    unmeasured = judged(results())
    assert unmeasured["ND warm remote <= 1.2x NORMAL same-site ND"]["met"] is None
    assert unmeasured["multicast NS across sites after learning: 0"]["met"] is None

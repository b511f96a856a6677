"""What the bench reports: metric definitions, statistics, ratios to the baseline, targets.

Every (system, metric) cell of results.json is a `cell()`:

    {"status": "ok" | "n/a" | "loops" | "failed", "median": float|None, "p95": float|None,
     "n": samples, "unit": ..., "ratio": median / the baseline system's median (or None),
     "baseline": system name, "samples": [...], "extra": {...}, "note": str}

"n/a" means the metric does not apply to the system (NORMAL has no controller), "loops" that
the system cannot run the topology (a switch without loop prevention on a full mesh).
"""
import math

OK, NA, LOOPS, FAILED = "ok", "n/a", "loops", "failed"

# key -> (unit, short label, description, baseline system for the ratio, better: "lower"/"higher")
METRICS = {
    "arp_local_ms": ("ms", "ARP same site", "ARP resolution latency, target on the requester's "
                     "site (the local reference)", "normal", "lower"),
    "arp_cold_remote_ms": ("ms", "ARP remote, cold", "ARP resolution latency, remote target "
                           "never resolved before in this lab", "normal", "lower"),
    "arp_warm_remote_ms": ("ms", "ARP remote, warm", "ARP resolution latency, remote target "
                           "already learned (ipop: answered by a proxy-ARP flow)", "normal",
                           "lower"),
    "ping_rtt_ms": ("ms", "ping RTT across sites", "ICMP echo RTT between sites, ARP resolved",
                    "normal", "lower"),
    "first_ping_s": ("s", "cold start to first ping", "restart of every site's ovs-vswitchd and "
                     "controller to the first ping answered across sites", "normal", "lower"),
    "xsite_arp_per_local_resolution": ("frames", "ARP frames across sites / same-site "
                                       "resolution", "ARP frames on the overlay per same-site "
                                       "resolution", "normal", "lower"),
    "xsite_arp_per_cold_resolution": ("frames", "ARP frames across sites / cold resolution",
                                      "ARP frames on the overlay per cold remote resolution",
                                      "normal", "lower"),
    "xsite_icc_per_cold_resolution": ("datagrams", "ICC datagrams / cold resolution",
                                      "ICC datagrams (no hellos) per cold remote resolution",
                                      "normal", "lower"),
    "xsite_arp_per_warm_resolution": ("frames", "ARP frames across sites / warm resolution",
                                      "ARP frames on the overlay per warm remote resolution",
                                      "normal", "lower"),
    "xsite_icc_per_warm_resolution": ("datagrams", "ICC datagrams / warm resolution",
                                      "ICC datagrams (no hellos) per warm remote resolution",
                                      "normal", "lower"),
    "xsite_arp_per_min": ("frames/min", "ARP frames across sites / min (steady)",
                          "ARP frames on the overlay per minute, every host pinging every "
                          "other host and refreshing its ARP cache", "normal", "lower"),
    "xsite_icc_per_min": ("datagrams/min", "ICC datagrams / min (steady)",
                          "ICC datagrams (no hellos) per minute in the same steady state",
                          "normal", "lower"),
    "nd_local_ms": ("ms", "ND same site", "IPv6 neighbour resolution latency (multicast NS to "
                    "its NA), target on the requester's site", "normal", "lower"),
    "nd_cold_remote_ms": ("ms", "ND remote, cold", "IPv6 neighbour resolution latency, remote "
                          "target never resolved before in this lab", "normal", "lower"),
    "nd_warm_remote_ms": ("ms", "ND remote, warm", "IPv6 neighbour resolution latency, remote "
                          "target already learned (ipop: answered by a proxy-ND flow)",
                          "normal", "lower"),
    "xsite_ns_per_cold_resolution": ("frames", "NS frames across sites / cold resolution",
                                     "neighbour solicitations on the overlay per cold remote "
                                     "ND resolution", "normal", "lower"),
    "xsite_ns_per_warm_resolution": ("frames", "NS frames across sites / warm resolution",
                                     "neighbour solicitations on the overlay per warm remote "
                                     "ND resolution", "normal", "lower"),
    "xsite_ns_per_min": ("frames/min", "NS frames across sites / min (steady)",
                         "neighbour solicitations on the overlay per minute, every host "
                         "pinging every other host over IPv6 and refreshing its neighbour "
                         "cache", "normal", "lower"),
    "arp_local_headless_pct": ("%", "same-site ARP answered, controller stopped",
                               "same-site resolutions answered while site A's controller is "
                               "stopped (SIGSTOP)", None, "higher"),
    "arp_announced_remote_ms": ("ms", "ARP remote, announced host, first time",
                                "first resolution of a remote host that spoke at its own site "
                                "(and was announced) but that nobody asked for before",
                                "normal", "lower"),
    "bridge_reconnect_s": ("s", "bridge back after a controller restart",
                           "controller away 4 s, then started: from listening to its bridge "
                           "connected (0 if it dialed the bridge first)", "simple_switch_13",
                           "lower"),
    "icc_per_host_min": ("datagrams/min", "ICC datagrams / host / min (steady)",
                         "ICC datagrams (no hellos) per minute and host in the steady state "
                         "(announcements and their refreshes)", None, "lower"),
    "pktin_capacity_pps": ("packet-ins/s", "ARP packet-ins/s per controller",
                           "broadcast ARP requests for unknown targets handled per second by "
                           "one controller (flooded back out), under overload",
                           "simple_switch_13", "higher"),
    "icc_capacity_mps": ("messages/s", "ICC messages/s per controller",
                         "signed ICC arp_request messages processed per second by one "
                         "controller (replayed on its ports), under overload", None, "higher"),
    "iperf3_mbps": ("Mbit/s", "iperf3 across sites", "TCP throughput between sites (iperf3)",
                    "normal", "higher"),
    # identity and encryption (issue 12): the main lab uses per-node keys
    "icc_capacity_shared_mps": ("messages/s", "ICC messages/s, shared key",
                                "the same ICC probe on a lab with one shared icc_key_file (the "
                                "main lab, icc_capacity_mps, has per-node keys)", None,
                                "higher"),
    **{f"{key}_wg{unit_suffix}": (unit, f"{label}, WireGuard", f"{text} (sites joined by "
                                  f"WireGuard: lab up --encrypt)", None, better)
       for key, unit_suffix, unit, label, text, better in (
           ("arp_cold_remote", "_ms", "ms", "ARP remote, cold", "ARP resolution latency, "
            "remote target never resolved before", "lower"),
           ("arp_warm_remote", "_ms", "ms", "ARP remote, warm", "ARP resolution latency, "
            "remote target learned", "lower"),
           ("ping_rtt", "_ms", "ms", "ping RTT across sites", "ICMP echo RTT between sites",
            "lower"),
           ("iperf3", "_mbps", "Mbit/s", "iperf3 across sites", "TCP throughput between "
            "sites", "higher"))},
}
# encrypted-lab metric -> the plain lab's, measured the same way
ENCRYPTED_OF = {"arp_cold_remote_wg_ms": "arp_cold_remote_ms",
                "arp_warm_remote_wg_ms": "arp_warm_remote_ms",
                "ping_rtt_wg_ms": "ping_rtt_ms", "iperf3_wg_mbps": "iperf3_mbps"}

# the subset measured at every point of the scale grid
SCALE_METRICS = ("arp_local_ms", "arp_cold_remote_ms", "arp_warm_remote_ms", "first_ping_s",
                 "xsite_arp_per_cold_resolution", "xsite_icc_per_cold_resolution",
                 "xsite_arp_per_warm_resolution")


def percentile(values, q):
    """Linear-interpolated percentile (numpy's default) of a non-empty list; q in 0..100."""
    data = sorted(values)
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def _round(value, digits=4):
    if value is None:
        return None
    return float(f"{value:.{digits}g}") if value else 0.0


def cell(metric, samples=None, status=OK, note="", **extra):
    """A result cell from raw samples (None entries = lost measurements, counted in extra)."""
    unit = METRICS[metric][0]
    values = [float(v) for v in (samples or []) if v is not None]
    lost = sum(1 for v in (samples or []) if v is None)
    if lost:
        extra["lost"] = lost
    if status == OK and not values:
        status, note = FAILED, note or "no successful measurement"
    return {"status": status, "unit": unit,
            "median": _round(percentile(values, 50)) if status == OK else None,
            "p95": _round(percentile(values, 95)) if status == OK else None,
            "n": len(values), "ratio": None, "baseline": METRICS[metric][3],
            "samples": [_round(v, 6) for v in values], "note": note, "extra": extra}


def na(metric, note):
    return cell(metric, status=NA, note=note)


def failed(metric, note):
    return cell(metric, status=FAILED, note=note)


def add_ratios(results):
    """results: {system: {metric: cell}}; sets each ok cell's ratio to its median over the
    baseline system's median for the same metric (None when either is missing or 0)."""
    for system, cells in results.items():
        for metric, c in cells.items():
            base_name = METRICS.get(metric, (None,) * 4)[3]
            c["baseline"] = base_name
            c["ratio"] = None
            if c["status"] != OK:
                continue
            if base_name is None:
                c["ratio_note"] = "no baseline system measures this"
                continue
            base = results.get(base_name, {}).get(metric)
            if not base or base["status"] != OK:
                c["ratio_note"] = f"{base_name} not measured"
            elif not base["median"]:
                c["ratio_note"] = f"{base_name} median is 0"
            else:
                c["ratio"] = _round(c["median"] / base["median"])
    return results


# --- targets (from the issue), checked on the bench output ---------------------------------

def _get(results, system, metric, field="median"):
    c = results.get(system, {}).get(metric)
    if not c or c["status"] != OK:
        return None
    return c["extra"].get(field) if field not in ("median", "p95") else c[field]


def _target_adder(out):
    def target(name, value, threshold, met, detail):
        out.append({"name": name, "value": _round(value) if isinstance(value, float) else value,
                    "threshold": threshold, "met": None if value is None else bool(met),
                    "detail": detail})
    return target


def check_targets(results, system="ipop", scale=None):
    """[{name, value, threshold, met (True/False/None when not measured), detail}].
    scale: the run's scale grid ({"sites": [points], "hosts": [points]}), for growth."""
    out = []
    target = _target_adder(out)

    warm = _get(results, system, "arp_warm_remote_ms")
    local_own = _get(results, system, "arp_local_ms")
    local_normal = _get(results, "normal", "arp_local_ms")
    ref = local_normal if local_normal is not None else local_own
    target("warm remote ARP <= 1.2x same-site ARP",
           None if warm is None or not ref else warm / ref, 1.2,
           warm is not None and ref and warm <= 1.2 * ref,
           f"warm median {warm} ms vs same-site median {ref} ms "
           f"({'NORMAL' if local_normal is not None else system}); vs {system}'s own "
           f"same-site ARP {local_own} ms")
    cold = _get(results, system, "arp_cold_remote_ms")
    target("cold remote ARP <= 5 ms median", cold, 5.0, cold is not None and cold <= 5.0,
           f"median {cold} ms")
    warm_frames = _get(results, system, "xsite_arp_per_warm_resolution")
    steady = results.get(system, {}).get("xsite_arp_per_min")
    steady_bcast = steady["extra"].get("broadcast_per_min") \
        if steady and steady["status"] == OK else None
    values = [v for v in (warm_frames, steady_bcast) if v is not None]
    target("zero ARP frames across sites after learning",
           max(values) if values else None, 0, values and max(values) == 0,
           f"per warm resolution {warm_frames}, broadcast ARP per minute in the steady state "
           f"{steady_bcast} (unicast kernel probes, forwarded to the owner by design: "
           f"{steady['extra'].get('unicast_per_min') if steady and steady['status'] == OK else None}"
           f"/min)")
    out += _nd_targets(results, system)
    pin = results.get(system, {}).get("pktin_capacity_pps")
    pin_value = pin["extra"].get("no_loss_pps") if pin and pin["status"] == OK else None
    target(">= 5,000 ARP packet-ins/s per controller", pin_value, 5000,
           pin_value is not None and pin_value >= 5000,
           f"highest offered rate handled without loss {pin_value}/s; sustained under overload "
           f"median {pin['median'] if pin else None}/s" + (
               f" ({pin['extra'].get('config')})" if pin and pin["extra"].get("config") else ""))
    icc = results.get(system, {}).get("icc_capacity_mps")
    icc_value = icc["extra"].get("no_loss_pps") if icc and icc["status"] == OK else None
    target(">= 20,000 ICC messages/s per controller", icc_value, 20000,
           icc_value is not None and icc_value >= 20000,
           f"highest offered rate processed without loss {icc_value}/s; sustained under "
           f"overload median {icc['median'] if icc else None}/s")
    out += _datapath_first_targets(results, system, scale or {})
    out += _identity_targets(results, system)
    ip = _get(results, system, "iperf3_mbps")
    base = _get(results, "normal", "iperf3_mbps")
    cell_ip = results.get(system, {}).get("iperf3_mbps") or {"extra": {}}
    paired = cell_ip["extra"].get("paired_ratio")
    ratio = paired if paired is not None else (None if ip is None or not base else ip / base)
    target("iperf3 >= 0.95x NORMAL", ratio, 0.95, ratio is not None and ratio >= 0.95,
           f"paired runs on the same lab (NORMAL by a table-0 override flow, alternating): "
           f"{ip} vs {(cell_ip['extra'].get('paired_normal') or {}).get('median')} Mbit/s; "
           f"against the NORMAL system's own lab: {ip} vs {base} Mbit/s")
    return out


def _identity_targets(results, system):
    """Issue 12: ICC capacity with per-node keys against the shared key (same run), and the
    encrypted lab beside the plain one (reported, no threshold in the issue)."""
    out = []
    target = _target_adder(out)
    node = results.get(system, {}).get("icc_capacity_mps")
    shared = results.get(system, {}).get("icc_capacity_shared_mps")
    if not shared:
        return out
    value = lambda c, f: (c["extra"].get(f) if f != "median" else c["median"]) \
        if c and c["status"] == OK else None                                   # noqa: E731
    ratio = None if value(node, "median") is None or not value(shared, "median") else \
        value(node, "median") / value(shared, "median")
    target("ICC capacity, per-node keys >= 0.9x the shared key", ratio, 0.9,
           ratio is not None and ratio >= 0.9,
           f"sustained median {value(node, 'median')} vs {value(shared, 'median')} msgs/s; "
           f"without loss {value(node, 'no_loss_pps')} vs {value(shared, 'no_loss_pps')}/s")
    no_loss = value(node, "no_loss_pps")
    target(">= 22,500 ICC messages/s with per-node keys (90% of 25,000)", no_loss, 22500,
           no_loss is not None and no_loss >= 22500,
           f"highest offered rate processed without loss {no_loss}/s")
    for wg, plain in ENCRYPTED_OF.items():
        a, b = _get(results, system, wg), _get(results, system, plain)
        out.append({"name": f"{METRICS[wg][1]} vs plain", "value": _round(a / b) if a and b
                    else None, "threshold": None, "met": None,
                    "detail": f"{a} vs {b} {METRICS[wg][0]} (ratio, reported)"})
    return out


def _growth(scale, axis, system, metric):
    """(last / first median along a scale axis, first point, last point), or Nones."""
    points = [(p["sites"] if axis == "sites" else p["hosts"],
               _get(p["results"], system, metric)) for p in scale.get(axis, [])]
    points = [(n, v) for n, v in points if v is not None]
    if len(points) < 2 or not points[0][1]:
        return None, None, None
    return points[-1][1] / points[0][1], points[0], points[-1]


def _datapath_first_targets(results, system, scale):
    """The targets of issue 10 (datapath first), against NORMAL in the same run."""
    out = []
    target = _target_adder(out)
    local = _get(results, system, "arp_local_ms")
    normal_local = _get(results, "normal", "arp_local_ms")
    ratio = None if local is None or not normal_local else local / normal_local
    target("same-site ARP <= 1.2x NORMAL", ratio, 1.2, ratio is not None and ratio <= 1.2,
           f"{local} ms vs NORMAL {normal_local} ms")
    headless = _get(results, system, "arp_local_headless_pct")
    target("same-site resolution with the controller stopped: 100%", headless, 100,
           headless is not None and headless >= 100, f"{headless}% answered")
    announced = _get(results, system, "arp_announced_remote_ms")
    ratio = None if announced is None or not normal_local else announced / normal_local
    target("first resolution of an announced host <= 1.2x NORMAL same-site ARP", ratio, 1.2,
           ratio is not None and ratio <= 1.2, f"{announced} ms vs NORMAL same-site "
           f"{normal_local} ms")
    cold = _get(results, system, "arp_cold_remote_ms")
    target("cold remote ARP <= 2.5 ms median (2 sites)", cold, 2.5,
           cold is not None and cold <= 2.5, f"median {cold} ms (fresh addresses that never "
           f"spoke: relayed as with announce = false)")
    for axis in ("sites", "hosts"):
        growth, first, last = _growth(scale, axis, system, "arp_cold_remote_ms")
        target(f"cold remote ARP growth over {axis} <= 1.3x", growth, 1.3,
               growth is not None and growth <= 1.3,
               f"{first} -> {last} ({axis}, median ms)" if first else "scale grid not run")
    first_ping = _get(results, system, "first_ping_s")
    ss13 = _get(results, "simple_switch_13", "first_ping_s")
    excess = None if first_ping is None or ss13 is None else first_ping - ss13
    target("cold start to first ping <= simple_switch_13 + 0.3 s", excess, 0.3,
           excess is not None and excess <= 0.3, f"{first_ping} s vs {ss13} s")
    growth, first, last = _growth(scale, "sites", system, "first_ping_s")
    target("cold start flat from 2 to 6 sites (<= 1.3x)", growth, 1.3,
           growth is not None and growth <= 1.3,
           f"{first} -> {last} (sites, median s)" if first else "scale grid not run")
    back = _get(results, system, "bridge_reconnect_s")
    target("bridge back <= 1 s after the controller listens", back, 1.0,
           back is not None and back <= 1.0, f"median {back} s, p95 "
           f"{_get(results, system, 'bridge_reconnect_s', 'p95')} s")
    per_host = _get(results, system, "icc_per_host_min")
    bound = _get(results, system, "icc_per_host_min", "bound_per_host_min")
    target("ICC per host and minute (steady) <= one refresh per arp_timeout/3 to each peer",
           per_host, bound, per_host is not None and bound is not None and per_host <= bound,
           f"{per_host} datagrams/min/host, bound {bound}")
    return out


def _nd_targets(results, system):
    """The bench targets of issue 11 (IPv6 neighbour discovery)."""
    out = []
    target = _target_adder(out)
    warm = _get(results, system, "nd_warm_remote_ms")
    ref = _get(results, "normal", "nd_local_ms")
    ratio = None if warm is None or not ref else warm / ref
    target("ND warm remote <= 1.2x NORMAL same-site ND", ratio, 1.2,
           ratio is not None and ratio <= 1.2,
           f"warm median {warm} ms vs NORMAL same-site {ref} ms; vs {system}'s own same-site "
           f"ND {_get(results, system, 'nd_local_ms')} ms")
    warm_mcast = _get(results, system, "xsite_ns_per_warm_resolution", "multicast_mean")
    steady_mcast = _get(results, system, "xsite_ns_per_min", "multicast_per_min")
    values = [v for v in (warm_mcast, steady_mcast) if v is not None]
    target("multicast NS across sites after learning: 0", max(values) if values else None, 0,
           values and max(values) == 0,
           f"per warm resolution {warm_mcast}, per minute in the steady state {steady_mcast} "
           f"(unicast NS, neighbour unreachability probes forwarded to the owner by design: "
           f"{_get(results, system, 'xsite_ns_per_min', 'unicast_per_min')}/min)")
    return out

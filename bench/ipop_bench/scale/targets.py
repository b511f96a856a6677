"""The issue's targets, judged on the scale bench's points (never asserted: evaluated in
scale.md and scale.json)."""

# thresholds of the targets (check_targets says at which N each is judged)
TARGETS = {"idle_50k": 1.2, "idle_100k": 2.4, "learn_rate": 10000, "restart_lost": 0,
           "restart_back_s": 15.0, "rest_page_ms": 50.0, "rss_kb_per_entry": 1.0,
           "peer_down": 0}


def value_at(point, *path):
    """point[path[0]][path[1]]..., or None where a level is missing."""
    value = point
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def check_targets(points):
    """[{name, value, threshold, met (None: not measured), detail}] as in the main bench."""
    by_n = {p["n"]: p for p in points}
    out = []

    def target(name, value, threshold, met, detail):
        out.append({"name": name, "value": value, "threshold": threshold,
                    "met": None if value is None else bool(met), "detail": detail})

    def per_n(*path):
        return ", ".join(f"{n:,}: {value_at(p, *path)}" for n, p in sorted(by_n.items()))

    for n, key in ((50000, "idle_50k"), (100000, "idle_100k")):
        value = value_at(by_n.get(n, {}), "idle", "cpu_s_per_min", "controller")
        target(f"idle controller <= {TARGETS[key]} CPU-s/min at {n // 1000}k", value,
               TARGETS[key], value is not None and value <= TARGETS[key],
               f"CPU-s/min by N: {per_n('idle', 'cpu_s_per_min', 'controller')}")
    big = [p for p in points if p["n"] >= 10000] or points
    rates = [value_at(p, "learn", "rate") for p in big]
    value = None if not rates or None in rates else min(rates)
    target(f"learn >= {TARGETS['learn_rate']:,} entries/s", value, TARGETS["learn_rate"],
           value is not None and value >= TARGETS["learn_rate"],
           f"entries/s by N: {per_n('learn', 'rate')} (judged from N = 10,000 up)")
    at50 = by_n.get(50000, {})
    lost = value_at(at50, "restart", "lost")
    target("restart at 50k: 0 responders lost", lost, 0, lost == 0,
           f"responders lost by N: {per_n('restart', 'lost')}")
    back = value_at(at50, "restart", "table_back_s")
    target(f"restart at 50k: all back <= {TARGETS['restart_back_s']:.0f} s", back,
           TARGETS["restart_back_s"], back is not None and back <= TARGETS["restart_back_s"],
           f"seconds from the start to a full table by N: {per_n('restart', 'table_back_s')}")
    pages = [value_at(p, "rest", page, "median") for p in points
             for page in ("arp_first_page", "arp_middle_page")]
    value = None if not pages or None in pages else max(pages)
    target(f"REST page <= {TARGETS['rest_page_ms']:.0f} ms", value, TARGETS["rest_page_ms"],
           value is not None and value <= TARGETS["rest_page_ms"],
           f"median ms of the first / middle page by N: " + ", ".join(
               f"{p['n']:,}: {value_at(p, 'rest', 'arp_first_page', 'median')} / "
               f"{value_at(p, 'rest', 'arp_middle_page', 'median')}" for p in points))
    kbs = [value_at(p, "memory", "kb_per_entry") for p in big]
    value = None if not kbs or None in kbs else max(kbs)
    target(f"RSS <= {TARGETS['rss_kb_per_entry']:.0f} KB/entry", value,
           TARGETS["rss_kb_per_entry"], value is not None and value <= TARGETS["rss_kb_per_entry"],
           f"KB/entry by N: {per_n('memory', 'kb_per_entry')} (judged from N = 10,000 up)")
    downs = [value_at(p, "peers", "went_down") for p in points]
    value = None if not downs or None in downs else sum(downs)
    states = {p["n"]: value_at(p, "peers", "state") for p in points}
    target("the peer is never marked down", value, 0,
           value == 0 and all(s == "up" for s in states.values()),
           f"went_down by N: {per_n('peers', 'went_down')}; state at the end: "
           + ", ".join(f"{n:,}: {s}" for n, s in states.items()))
    return out


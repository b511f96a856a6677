"""scale.md and the console table of a scale.json document."""
from ..report import num, sections, targets_table
from .targets import value_at


def _num(value):
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else num(value)


ROWS = [  # (label, function of a point -> text, target text)
    ("learn: table holds all N (s)", lambda p: _num(value_at(p, "learn", "table_s")), ""),
    ("learn rate (entries/s)", lambda p: _num(value_at(p, "learn", "rate")), ">= 10,000"),
    ("responders in OVS (s)", lambda p: _num(value_at(p, "learn", "flows_s")), ""),
    ("responder rate (entries/s)", lambda p: _num(value_at(p, "learn", "flows_rate")), ""),
    ("learned / responders", lambda p: f"{_num(value_at(p, 'learn', 'learned'))} / "
                                       f"{_num(value_at(p, 'learn', 'responders'))}", "N / N"),
    ("A's ICC socket drops / ICC dropped", lambda p: f"{_num(value_at(p, 'learn', 'socket_drops'))}"
     f" / {sum((value_at(p, 'learn', 'controller', 'icc_dropped') or {}).values())}", "0 / 0"),
    ("idle CPU controller (CPU-s/min; 0 entries)",
     lambda p: f"{_num(value_at(p, 'idle', 'cpu_s_per_min', 'controller'))} "
               f"({_num(value_at(p, 'baseline', 'cpu_s_per_min', 'controller'))})",
     "<= 1.2 at 50k, <= 2.4 at 100k"),
    ("idle CPU ovs-vswitchd (CPU-s/min; 0 entries)",
     lambda p: f"{_num(value_at(p, 'idle', 'cpu_s_per_min', 'vswitchd'))} "
               f"({_num(value_at(p, 'baseline', 'cpu_s_per_min', 'vswitchd'))})", ""),
    ("audits / flow-mods in the idle window",
     lambda p: f"{_num(value_at(p, 'idle', 'controller', 'flows', 'audits'))} / "
               f"{_num(value_at(p, 'idle', 'controller', 'flows', 'flow_mods'))}", ""),
    ("controller RSS before / after (MB)",
     lambda p: f"{_num(_mb(value_at(p, 'memory', 'rss_before_kb')))} / "
               f"{_num(_mb(value_at(p, 'memory', 'rss_after_kb')))}", ""),
    ("RSS per entry (KB)", lambda p: _num(value_at(p, "memory", "kb_per_entry")), "<= 1"),
    ("ARP, learned entry (ms, median / p95)",
     lambda p: f"{_num(value_at(p, 'arp', 'median'))} / {_num(value_at(p, 'arp', 'p95'))}", ""),
    ("REST arp first page (ms)", lambda p: _num(value_at(p, "rest", "arp_first_page", "median")),
     "<= 50"),
    ("REST arp middle page (ms)", lambda p: _num(value_at(p, "rest", "arp_middle_page", "median")),
     "<= 50"),
    ("REST stats (ms)", lambda p: _num(value_at(p, "rest", "stats", "median")), ""),
    ("REST /metrics (ms)", lambda p: _num(value_at(p, "rest", "metrics", "median")), ""),
    ("restart: fewest responders (lost)",
     lambda p: f"{_num(value_at(p, 'restart', 'min_responders'))} "
               f"({_num(value_at(p, 'restart', 'lost'))})", "0 lost at 50k"),
    ("restart: table full again (s after start)",
     lambda p: _num(value_at(p, "restart", "table_back_s")), "<= 15 at 50k"),
    ("restart: graceful restart over (s after start)",
     lambda p: _num(value_at(p, "restart", "graceful_s")), ""),
    ("peer marked down", lambda p: _num(value_at(p, "peers", "went_down")), "0"),
]


def _mb(kb):
    return None if kb is None else kb / 1024


def table(doc):
    points = doc["points"]
    rows = ["| metric | " + " | ".join(f"N = {p['n']:,}" for p in points) + " | target |",
            "|---|" + "---|" * (len(points) + 1)]
    for label, fn, goal in ROWS:
        rows.append(f"| {label} | " + " | ".join(fn(p) for p in points) + f" | {goal} |")
    return "\n".join(rows)


def notes(doc):
    out = []
    for p in doc["points"]:
        for phase, reason in (p.get("errors") or {}).items():
            out.append(f"- N = {p['n']:,}, {phase}: FAILED: {reason}")
        feeder = p.get("feeder") or {}
        if feeder:
            out.append(f"- N = {p['n']:,}, feeder: {feeder.get('bindings_sent', 0):,} bindings "
                       f"in {feeder.get('bindings_datagrams_sent', 0):,} datagrams, "
                       f"{feeder.get('syncs_answered', 0)} syncs answered "
                       f"({feeder.get('sync_requests', 0)} sync_requests, "
                       f"{feeder.get('peer_restarts', 0)} peer restarts), waited "
                       f"{feeder.get('throttled_ms', 0) / 1000:.1f}s for A's socket queue, "
                       f"{feeder.get('send_errors', 0)} send errors")
        controller = value_at(p, "learn", "controller") or {}
        if controller.get("icc_dropped") or controller.get("errors"):
            out.append(f"- N = {p['n']:,}, controller while learning: ICC dropped "
                       f"{controller.get('icc_dropped')}, internal errors "
                       f"{controller.get('errors')}")
        restart = p.get("restart") or {}
        if restart.get("icc_dropped") or restart.get("errors"):
            out.append(f"- N = {p['n']:,}, restarted controller: ICC dropped "
                       f"{restart.get('icc_dropped')}, internal errors {restart.get('errors')}")
    return "\n".join(out)


def markdown(doc):
    m = doc["machine"]
    parts = [f"# ipop-ryu scale bench, {doc['started']}", "",
             f"{m['cpus']} CPUs ({m['cpu']}), kernel {m['kernel']}, Python {m['python']}, "
             f"commit {(m.get('commit') or '?')[:10]} (plus any uncommitted changes); load "
             f"average at the end {m.get('load_at_end')}; wall time {doc['wall_s']} s. One "
             f"site (A) fed N entries by a fake peer (B); idle window "
             f"{doc['config']['idle_window']} s; how each figure is measured: "
             f"bench/README.md, section Scale.", "", table(doc), ""]
    parts += sections(("Targets", targets_table(doc)), ("Notes", notes(doc)),
                      ("Plots", "\n".join(f"![{name}]({name})"
                                          for name in doc.get("plots") or ())))
    return "\n".join(parts)


def console(doc):
    return table(doc) + "\n\n" + targets_table(doc)


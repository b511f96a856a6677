"""results.md from results.json, the console table, and publishing into bench/README.md."""
import os
import re
import shutil

from . import BENCH_DIR
from . import metrics as M

README = os.path.join(BENCH_DIR, "README.md")
LATEST = os.path.join(BENCH_DIR, "latest")
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


def num(value):
    if value is None:
        return "-"
    if value == 0:
        return "0"
    a = abs(value)
    if a >= 1000:
        return f"{value:,.0f}"
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_cell(c, with_ratio=True):
    if c is None:
        return "-"
    if c["status"] != M.OK:
        return c["status"]
    text = f"{num(c['median'])} / {num(c['p95'])}"
    if with_ratio and c.get("ratio") is not None:
        text += f" (×{num(c['ratio'])})"
    return text


def main_table(doc):
    systems = doc["systems"]
    labels = doc.get("labels", {})
    head = "| metric | unit | " + " | ".join(labels.get(s, s) for s in systems) + " |"
    rows = [head, "|" + "---|" * (len(systems) + 2)]
    for key, meta in doc["metrics"].items():
        cells = [doc["results"][s].get(key) for s in systems]
        if all(c is None for c in cells):
            continue
        rows.append(f"| {meta['label']} | {meta['unit']} | " +
                    " | ".join(fmt_cell(c) for c in cells) + " |")
    return "\n".join(rows)


def targets_table(doc):
    if not doc.get("targets"):
        return ""
    rows = ["| target (ipop-ryu) | value | met | detail |", "|---|---|---|---|"]
    for t in doc["targets"]:
        met = {True: "**met**", False: "**missed**", None: "not measured"}[t["met"]] \
            if t["threshold"] is not None or t["value"] is None else "reported"
        value = t["value"] if not isinstance(t["value"], float) else num(t["value"])
        rows.append(f"| {t['name']} | {value} | {met} | {t['detail']} |")
    return "\n".join(rows)


def scale_table(doc, axis):
    points = doc["scale"].get(axis) or []
    if not points:
        return ""
    systems = doc["systems"]
    labels = doc.get("labels", {})
    keys = [("arp_cold_remote_ms", "cold ARP ms"), ("arp_warm_remote_ms", "warm ARP ms"),
            ("first_ping_s", "first ping s"),
            ("xsite_arp_per_cold_resolution", "ARP frames/cold res.")]
    head = f"| {axis} | hosts/site | " if axis == "sites" else "| hosts/site | sites | "
    head += " | ".join(f"{labels.get(s, s)}: {label}" for s in systems for _, label in keys)
    rows = [head + " |", "|" + "---|" * (2 + len(systems) * len(keys))]
    for point in points:
        first = (point["sites"], point["hosts"]) if axis == "sites" else \
            (point["hosts"], point["sites"])
        cells = []
        for s in systems:
            for key, _ in keys:
                c = point["results"].get(s, {}).get(key)
                cells.append(fmt_cell(c, with_ratio=False) if c and c["status"] != M.OK
                             else (num(c["median"]) if c else "-"))
        rows.append(f"| {first[0]} | {first[1]} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def capacity_lines(doc):
    out = []
    for s in doc["systems"]:
        for key in ("pktin_capacity_pps", "icc_capacity_mps"):
            c = doc["results"][s].get(key)
            if not c or c["status"] != M.OK:
                continue
            ramp = ", ".join(f"{e['offered']}→{e['median_rate']}" for e in c["extra"]["ramp"])
            line = (f"- {doc['labels'].get(s, s)}, {doc['metrics'][key]['label']}: without loss "
                    f"up to {c['extra']['no_loss_pps']}/s offered; sustained {num(c['median'])}"
                    f"/s median under overload. Ramp offered→handled/s: {ramp}")
            if c["extra"].get("cpu_us_per_msg"):
                line += (f"; controller CPU {num(c['extra']['cpu_us_per_msg'])} µs per message "
                         f"(one core: ≤ {num(c['extra'].get('one_core_bound_pps'))}/s)")
            if c["extra"].get("config"):
                line += f" [{c['extra']['config']}]"
            default = c["extra"].get("default_config")
            if default:
                line += (f". With the default configuration (punt meter on): "
                         f"{num(default['median'])}/s median, no loss up to "
                         f"{default['no_loss_pps']}/s")
            out.append(line)
    return "\n".join(out)


def notes(doc):
    out = []
    for s in doc["systems"]:
        parts = []
        for key, name in (("xsite_arp_per_local_resolution", "same-site"),
                          ("xsite_arp_per_cold_resolution", "cold"),
                          ("xsite_arp_per_warm_resolution", "warm")):
            c = doc["results"][s].get(key)
            if c and c["status"] == M.OK and c["extra"].get("mean"):
                parts.append(f"{name}: {num(c['extra'].get('broadcast_mean'))} broadcast + "
                             f"{num(c['extra'].get('unicast_mean'))} unicast")
        c = doc["results"][s].get("xsite_arp_per_min")
        if c and c["status"] == M.OK and c["median"]:
            parts.append(f"steady state: {num(c['extra'].get('broadcast_per_min'))} broadcast + "
                         f"{num(c['extra'].get('unicast_per_min'))} unicast per minute")
        if parts:
            out.append(f"- {doc['labels'].get(s, s)}, ARP frames across sites (mean per "
                       f"resolution): " + "; ".join(parts))
    for s in doc["systems"]:
        parts = []
        for key, name in (("xsite_ns_per_cold_resolution", "cold"),
                          ("xsite_ns_per_warm_resolution", "warm")):
            c = doc["results"][s].get(key)
            if c and c["status"] == M.OK:
                parts.append(f"{name}: {num(c['extra'].get('multicast_mean'))} multicast + "
                             f"{num(c['extra'].get('unicast_mean'))} unicast NS, "
                             f"{num(c['extra'].get('icc_mean'))} ICC")
        c = doc["results"][s].get("xsite_ns_per_min")
        if c and c["status"] == M.OK:
            parts.append(f"steady state: {num(c['extra'].get('multicast_per_min'))} multicast + "
                         f"{num(c['extra'].get('unicast_per_min'))} unicast NS, "
                         f"{num(c['extra'].get('icc_per_min'))} ICC per minute")
        if parts:
            out.append(f"- {doc['labels'].get(s, s)}, ND across sites (mean per resolution): "
                       + "; ".join(parts))
    for s in doc["systems"]:
        for key, c in doc["results"][s].items():
            if c["status"] != M.OK and c.get("note"):
                out.append(f"- {doc['labels'].get(s, s)} / {key}: {c['status']}: {c['note']}")
    for check in doc.get("loop_checks", []):
        out.append(f"- loop check, {check['system']} on a {check['sites']}-site mesh: "
                   f"{'loops' if check['loops'] else 'no loop'} ({check['frames']} ARP frames "
                   f"across sites for one request)")
    return "\n".join(out)


def markdown(doc, image_dir=""):
    m = doc["machine"]
    parts = [
        f"# ipop-ryu bench, {doc['started']}",
        "",
        f"{'Quick run (smoke test configuration). ' if doc['config']['quick'] else ''}"
        f"{m['cpus']} CPUs ({m['cpu']}), kernel {m['kernel']}, Python {m['python']}, "
        f"commit {(m.get('commit') or '?')[:10]} (plus any uncommitted changes); load average "
        f"at the end {m.get('load_at_end')}; "
        f"wall time {doc['wall_s']} s. Main topology: {doc['config']['main_sites']} sites × "
        f"{doc['config']['main_hosts']} hosts, {doc['config']['reps']} repetitions per "
        f"latency metric. Cells: median / p95 (× the same metric's median for the baseline "
        f"system of this run: OVS NORMAL, or simple_switch_13 for packet-in capacity).",
        "",
        main_table(doc),
        "",
    ]
    scale = [(axis, scale_table(doc, axis)) for axis in ("sites", "hosts")]
    parts += sections(("Targets", targets_table(doc)),
                      ("Controller capacity", capacity_lines(doc)),
                      *((f"Scale: {axis}", table and f"Medians.\n\n{table}")
                        for axis, table in scale),
                      ("Site services (issue 20)", services_section(doc)),
                      ("Notes", notes(doc)),
                      ("Plots", "\n".join(f"![{name}]({os.path.join(image_dir, name)})"
                                          for name in doc.get("plots") or ())))
    return "\n".join(parts)


def services_section(doc):
    section = doc.get("services")
    if not section:
        return ""
    if "failed" in section:
        return f"FAILED: {section['failed']}"
    return "\n".join(services_body(section)).rstrip()


def sections(*titled):
    """Markdown lines: a `## title` section for each (title, body) whose body is not empty."""
    out = []
    for title, body in titled:
        if body:
            out += [f"## {title}", "", body, ""]
    return out


def console(doc):
    lines = [main_table(doc)]
    targets = targets_table(doc)
    if targets:
        lines += ["", targets]
    if doc.get("services") and "failed" not in doc["services"]:
        lines += ["", targets_table(doc["services"])]
    return "\n".join(lines)


def publish(doc, run_dir, log=print):
    """Copy the plots to bench/latest/ and put the tables into bench/README.md between the
    markers (appended when the markers are missing)."""
    os.makedirs(LATEST, exist_ok=True)
    for name in doc.get("plots", []):
        shutil.copy(os.path.join(run_dir, name), os.path.join(LATEST, name))
    body = markdown(doc, image_dir="latest").split("\n", 1)[1]
    block = f"{START}\nLatest full run ({doc['started']}, `bench/results/" \
            f"{os.path.basename(run_dir)}/`):\n{body.rstrip()}\n{END}"
    try:
        with open(README) as f:
            text = f.read()
    except OSError:
        text = "# Benchmarks\n"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text,
                      flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    with open(README, "w") as f:
        f.write(text)
    log(f"published: {README}, {LATEST}/")


# --- the site services section (issue 20; bench/ipop_bench/services.py) ----------------------

SERVICES_ROWS = [   # (figure, label, unit, target text)
    ("first_ping_s", "container start to first cross-site ping (DHCP included)", "s",
     "<= 1.2x plain"),
    ("start_to_ack_s", "  of which: start to the DHCP ACK", "s", ""),
    ("ack_to_first_ping_s", "  of which: ACK to the first echo reply", "s", ""),
    ("lxc_start_s", "lxc-start returns", "s", ""),
    ("lease_to_responders_s", "lease (ACK) to a responder at every peer", "s",
     "<= 1, before the first ARP"),
    ("ack_to_first_arp_s", "ACK to the container's first ARP", "s", ""),
    ("kill_withdrawn_s", "killed container (lxc-stop -k) to withdrawn everywhere", "s", "<= 1"),
    ("lxc_stop_s", "lxc-stop -k returns", "s", ""),
    ("move_gap_s", "host moved B<->C, 20/s ping: longest gap per try", "s", "<= 1 every try"),
    ("egress_mbps", "egress through the NAT (iperf3 to the upstream)", "Mbit/s",
     ">= 0.95x plain"),
]


def _stat_cell(s):
    if not s or s.get("n", 0) == 0:
        return "-"
    return f"{num(s['median'])} / {num(s['p95'])} / {num(s['max'])} (n={s['n']})"


def services_table(section):
    figures = section["figures"]
    rows = ["| metric | unit | ipop-ryu site | plain lxc-net host | target |",
            "|---|---|---|---|---|"]
    for key, label, unit, goal in SERVICES_ROWS:
        f = figures.get(key, {})
        rows.append(f"| {label} | {unit} | {_stat_cell(f.get('ipop'))} | "
                    f"{_stat_cell(f.get('plain')) if 'plain' in f else 'n/a'} | {goal} |")
    frames = section.get("frames") or {}
    starts = len([r for r in section["rounds"] if r["system"] == "ipop"])
    rows.append(f"| frames across the overlay in {starts} starts | frames | "
                + ", ".join(f"{k} {v}" for k, v in frames.items()) + " | n/a | 0 but other |")
    return "\n".join(rows)


def services_body(section):
    """The section's table, targets and notes (markdown lines, no title)."""
    notes = [f"- {name}: FAILED: {reason}" for name, reason in section["errors"].items()]
    drops = {k: v for k, v in (section.get("capture_drops") or {}).items() if v}
    if drops:
        notes.append(f"- frames dropped by the kernel before tcpdump read them: {drops}")
    if section.get("other_frames"):
        notes.append("- other frames across the overlay during the starts (not the target's): "
                     + ", ".join(f"{k}: {v}" for k, v in sorted(section["other_frames"].items())))
    notes += [f"- round {i + 1} ({r['system']}): no {what} seen" for i, r in
              enumerate(section["rounds"]) for what in ("ack", "first_reply")
              if r.get(what) is None]
    return ["Cells: median / p95 / max (n). Lab " + section["lab"] + f", {section['wall_s']} s.",
            "", services_table(section), "", targets_table(section), "",
            *([("\n".join(notes)), ""] if notes else [])]


def services_markdown(doc):
    m = doc["machine"]
    section = doc["services"]
    parts = [f"# ipop-ryu bench: site services (issue 20), {doc['started']}", "",
             f"{'Quick run (smoke test configuration). ' if section['config']['quick'] else ''}"
             f"{m['cpus']} CPUs ({m['cpu']}), kernel {m['kernel']}, Python {m['python']}, "
             f"commit {(m.get('commit') or '?')[:10]} (plus any uncommitted changes); load "
             f"average at the end {m.get('load_at_end')}; wall time {doc['wall_s']} s. "
             f"{section['config']['rounds']} container starts per system, "
             f"{section['config']['moves']} moves, {section['config']['iperf_reps']} iperf3 "
             f"runs per system; how each figure is measured: bench/README.md, section Site "
             f"services.", ""]
    return "\n".join(parts + services_body(section))


def services_console(doc):
    section = doc["services"]
    return services_table(section) + "\n\n" + targets_table(section)

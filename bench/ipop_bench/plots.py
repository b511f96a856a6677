"""PNG plots of a results.json document (matplotlib, Agg backend)."""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from . import metrics as M  # noqa: E402

COLORS = {"normal": "#4c72b0", "simple_switch_13": "#dd8452", "ipop": "#55a868"}
SHORT = {"arp_local_ms": "ARP\nsame site", "arp_cold_remote_ms": "ARP\nremote cold",
         "arp_warm_remote_ms": "ARP\nremote warm", "ping_rtt_ms": "ping RTT\nacross sites",
         "first_ping_s": "cold start\nto first ping", "iperf3_mbps": "iperf3",
         "xsite_arp_per_local_resolution": "ARP frames\nsame site",
         "xsite_arp_per_cold_resolution": "ARP frames\ncold", "xsite_icc_per_cold_resolution":
         "ICC datagrams\ncold", "xsite_arp_per_warm_resolution": "ARP frames\nwarm",
         "xsite_icc_per_warm_resolution": "ICC datagrams\nwarm",
         "xsite_arp_per_min": "ARP frames", "xsite_icc_per_min": "ICC datagrams\n(no hellos)"}


def _fmt(v):
    return f"{v:.3g}" if v < 1000 else f"{v:,.0f}"


def _ok(c):
    return c is not None and c["status"] == M.OK


def _bars(ax, doc, keys, title, ylabel, log=False):
    systems = doc["systems"]
    width = 0.8 / max(1, len(systems))
    for i, s in enumerate(systems):
        xs, meds, errs = [], [], []
        for j, key in enumerate(keys):
            c = doc["results"][s].get(key)
            if _ok(c):
                xs.append(j + i * width)
                meds.append(c["median"])
                errs.append(max(0.0, c["p95"] - c["median"]))
        if xs:
            ax.bar(xs, meds, width, yerr=[[0] * len(errs), errs], capsize=3,
                   label=doc["labels"].get(s, s), color=COLORS.get(s))
            for x, m in zip(xs, meds):
                ax.annotate(_fmt(m), (x, m), ha="center", va="bottom", fontsize=6,
                            xytext=(0, 1), textcoords="offset points")
        for j, key in enumerate(keys):
            c = doc["results"][s].get(key)
            if c is not None and c["status"] != M.OK:
                ax.text(j + i * width, 0, c["status"], rotation=90, ha="center", va="bottom",
                        fontsize=7)
    ax.set_xticks([j + width * (len(systems) - 1) / 2 for j in range(len(keys))])
    ax.set_xticklabels([SHORT.get(k, k) for k in keys], fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", alpha=0.3)


def summary(doc, path):
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    _bars(axes[0][0], doc, ["arp_local_ms", "arp_cold_remote_ms", "arp_warm_remote_ms",
                            "ping_rtt_ms"], "ARP resolution and ping (median, whisker p95)",
          "ms", log=True)
    _bars(axes[0][1], doc, ["first_ping_s"], "cold start to first ping", "s")
    _bars(axes[0][2], doc, ["iperf3_mbps"], "iperf3 between sites", "Mbit/s")
    _bars(axes[1][0], doc, ["xsite_arp_per_local_resolution",
                            "xsite_arp_per_cold_resolution", "xsite_icc_per_cold_resolution",
                            "xsite_arp_per_warm_resolution", "xsite_icc_per_warm_resolution"],
          "frames crossing between sites per resolution", "frames / datagrams")
    _bars(axes[1][1], doc, ["xsite_arp_per_min", "xsite_icc_per_min"],
          "crossing between sites per minute (steady state)", "per minute")
    ax = axes[1][2]
    for s in doc["systems"]:
        for key, style in (("pktin_capacity_pps", "-o"), ("icc_capacity_mps", "--s")):
            c = doc["results"][s].get(key)
            if not _ok(c):
                continue
            ramp = c["extra"]["ramp"]
            ax.plot([e["offered"] for e in ramp], [e["median_rate"] or 0 for e in ramp], style,
                    color=COLORS.get(s), label=f"{doc['labels'].get(s, s)}: "
                    f"{'packet-in' if key.startswith('pktin') else 'ICC'}")
            default = c["extra"].get("default_config")
            if default and default.get("median") is not None:
                ax.axhline(default["median"], color=COLORS.get(s), linestyle=":",
                           label=f"{doc['labels'].get(s, s)}: packet-in, default meter")
    lim = [1, 1]
    for line in ax.get_lines():
        lim[0] = max(lim[0], max(line.get_xdata(), default=1))
    ax.plot([0, lim[0]], [0, lim[0]], color="grey", linewidth=0.5, label="handled = offered")
    ax.set_title("controller capacity (median handled rate per step)", fontsize=9)
    ax.set_xlabel("offered per second", fontsize=8)
    ax.set_ylabel("handled per second", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"ipop-ryu bench {doc['started']} ({doc['config']['main_sites']} sites x "
                 f"{doc['config']['main_hosts']} hosts)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def scale(doc, path):
    keys = [("arp_cold_remote_ms", "cold remote ARP (ms)", True),
            ("arp_warm_remote_ms", "warm remote ARP (ms)", True),
            ("first_ping_s", "cold start to first ping (s)", False),
            ("xsite_arp_per_cold_resolution", "across sites per cold resolution:\n"
             "ARP frames (solid), ICC datagrams (dashed)", False)]
    axes_names = [("sites", "sites (hosts per site fixed)"),
                  ("hosts", "hosts per site (sites fixed)")]
    fig, axes = plt.subplots(2, len(keys), figsize=(4 * len(keys), 7))
    for row, (axis, xlabel) in enumerate(axes_names):
        points = doc["scale"].get(axis) or []
        for col, (key, title, log) in enumerate(keys):
            ax = axes[row][col]
            for s in doc["systems"]:
                xs, meds, p95s, bad = [], [], [], []
                for p in points:
                    x = p["sites"] if axis == "sites" else p["hosts"]
                    c = p["results"].get(s, {}).get(key)
                    if _ok(c):
                        xs.append(x)
                        meds.append(c["median"])
                        p95s.append(c["p95"])
                    elif c is not None:
                        bad.append((x, c["status"]))
                if xs:
                    ax.plot(xs, meds, "-o", color=COLORS.get(s), label=doc["labels"].get(s, s))
                    ax.fill_between(xs, meds, p95s, color=COLORS.get(s), alpha=0.15)
                if key == "xsite_arp_per_cold_resolution":
                    icc = [(p["sites"] if axis == "sites" else p["hosts"],
                            p["results"].get(s, {}).get("xsite_icc_per_cold_resolution"))
                           for p in points]
                    icc = [(x, c["median"]) for x, c in icc if _ok(c) and c["median"]]
                    if icc:
                        ax.plot([x for x, _ in icc], [v for _, v in icc], "--s",
                                color=COLORS.get(s))
                if bad:
                    ax.annotate(f"{doc['labels'].get(s, s)}: {bad[0][1]} at "
                                f"{', '.join(str(x) for x, _ in bad)}",
                                (0.02, 0.97 - 0.07 * doc["systems"].index(s)),
                                xycoords="axes fraction", fontsize=6, va="top",
                                color=COLORS.get(s))
            ticks = sorted({p["sites"] if axis == "sites" else p["hosts"] for p in points})
            if ticks:
                ax.set_xticks(ticks)
            if log:
                ax.set_yscale("log")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel(xlabel, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if row == 0 and col == 0:
                ax.legend(fontsize=7)
    rstp = any("RSTP" in (c.get("note") or "") for p in doc["scale"].get("sites") or []
               for c in p["results"].get("normal", {}).values())
    fig.suptitle("scale (median, band up to p95)" + (
        "; OVS NORMAL runs with RSTP from 3 sites (a plain NORMAL mesh loops)" if rstp else ""),
        fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_all(doc, run_dir, log=print):
    written = []
    for name, fn in (("summary.png", summary), ("scale.png", scale)):
        try:
            fn(doc, os.path.join(run_dir, name))
            written.append(name)
        except Exception as exc:  # a plot must not lose the numbers
            log(f"plot {name} failed: {type(exc).__name__}: {exc}")
    return written


def scale_cost(doc, path):
    """The scale bench (scale.json): what N learned remote entries cost one site, against N,
    with the targets as dotted lines or crosses."""
    points = [p for p in doc["points"] if p.get("learn")]

    def series(*keys):
        xs, ys = [], []
        for p in points:
            value = p
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                xs.append(p["n"])
                ys.append(value)
        return xs, ys

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    panels = [
        (axes[0][0], "idle CPU (no traffic but hellos)", "CPU-s per minute",
         [(("idle", "cpu_s_per_min", "controller"), "controller (ryu-manager)", "-o"),
          (("idle", "cpu_s_per_min", "vswitchd"), "ovs-vswitchd", "-s"),
          (("baseline", "cpu_s_per_min", "controller"), "controller, 0 entries", ":"),
          (("baseline", "cpu_s_per_min", "vswitchd"), "ovs-vswitchd, 0 entries", ":")]),
        (axes[0][1], "controller memory", "RSS KB per entry",
         [(("memory", "kb_per_entry"), "(RSS after - before) / N", "-o")]),
        (axes[0][2], "learning from the first binding sent", "entries per second",
         [(("learn", "rate"), "table (REST)", "-o"),
          (("learn", "flows_rate"), "responder flows (OVS)", "-s")]),
        (axes[1][0], "controller restart", "seconds after the start",
         [(("restart", "table_back_s"), "table full again", "-o"),
          (("restart", "graceful_s"), "graceful restart over", "-s")]),
        (axes[1][1], "REST latency (median, fresh connection)", "ms",
         [(("rest", "arp_first_page", "median"), "arp?limit=1000", "-o"),
          (("rest", "arp_middle_page", "median"), "arp?limit=1000&after=", "-s"),
          (("rest", "stats", "median"), "stats", "-^"),
          (("rest", "metrics", "median"), "/metrics", "-v")]),
        (axes[1][2], "ARP for a learned entry (responder flow)", "ms",
         [(("arp", "median"), "median", "-o"), (("arp", "p95"), "p95", "--")]),
    ]
    color = COLORS["ipop"]
    for ax, title, ylabel, lines in panels:
        for i, (keys, label, style) in enumerate(lines):
            xs, ys = series(*keys)
            if xs:
                ax.plot(xs, ys, style, label=label, color=color if i == 0 else None)
                for x, y in zip(xs, ys):
                    ax.annotate(_fmt(y), (x, y), fontsize=6, xytext=(2, 3),
                                textcoords="offset points")
        ax.set_xscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("N learned remote entries", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    targets = {"idle": [(50000, 1.2), (100000, 2.4)], "restart": [(50000, 15.0)]}
    for ax, key, label in ((axes[0][0], "idle", "target (controller)"),
                           (axes[1][0], "restart", "target (table full)")):
        xs, ys = zip(*targets[key])
        ax.plot(xs, ys, "x", color="red", markersize=9, label=label)
    for ax, value in ((axes[0][1], 1.0), (axes[0][2], 10000), (axes[1][1], 50.0)):
        ax.axhline(value, color="red", linestyle=":", linewidth=1, label="target")
    ns = {p["n"] for p in points}
    for row in axes:
        for ax in row:
            ticks = sorted(ns | {x for line in ax.get_lines() for x in line.get_xdata()
                                 if line.get_marker() == "x"})
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{n / 1000:g}k" if n >= 1000 else str(n) for n in ticks])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=6)
    fig.suptitle(f"ipop-ryu scale bench {doc['started']}: one site fed N entries by a peer",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

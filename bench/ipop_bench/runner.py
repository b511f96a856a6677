"""Run the bench: every system in turn on the same topology, then the scale grid; write
results.json, results.md and the plots under OUT/<UTC timestamp>/ and print the table."""
import json
import os
import platform
import shutil
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from ipop_ryu.lab import Lab
from ipop_ryu.lab.lab import REPO_ROOT     # the controller's checkout: the commit a run records

from . import BENCH_DIR
from . import metrics as M
from . import systems as S
from . import probes_datapath as PD
from .probes import Probes

SCHEMA = 1
DEFAULT_OUT = os.path.join(BENCH_DIR, "results")
TOOLS = ("ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ip", "tcpdump", "iperf3",
         "ethtool", "sysctl")
# which measurement yields which metrics (a failing measurement fails exactly these)
MEASUREMENT_METRICS = {
    "arp": ("arp_local_ms", "arp_cold_remote_ms", "arp_warm_remote_ms",
            "xsite_arp_per_local_resolution",
            "xsite_arp_per_cold_resolution", "xsite_icc_per_cold_resolution",
            "xsite_arp_per_warm_resolution", "xsite_icc_per_warm_resolution"),
    "ping": ("ping_rtt_ms",),
    "iperf": ("iperf3_mbps",),
    "first_ping": ("first_ping_s",),
    "steady": ("xsite_arp_per_min", "xsite_icc_per_min"),
    "nd": ("nd_local_ms", "nd_cold_remote_ms", "nd_warm_remote_ms",
           "xsite_ns_per_cold_resolution", "xsite_ns_per_warm_resolution"),
    "nd_steady": ("xsite_ns_per_min",),
    "headless": ("arp_local_headless_pct",),
    "announced": ("arp_announced_remote_ms",),
    "reconnect": ("bridge_reconnect_s",),
    "icc_host": ("icc_per_host_min",),
    "pktin": ("pktin_capacity_pps",),
    "icc": ("icc_capacity_mps",),
    "icc_shared": ("icc_capacity_shared_mps",),
    "wg_arp": ("arp_cold_remote_wg_ms", "arp_warm_remote_wg_ms"),
    "wg_ping": ("ping_rtt_wg_ms",),
    "wg_iperf": ("iperf3_wg_mbps",),
}
IDENTITY_METRICS = sum((MEASUREMENT_METRICS[k] for k in ("icc_shared", "wg_arp", "wg_ping",
                                                        "wg_iperf")), ())


@dataclass
class Config:
    quick: bool = False
    out: str = DEFAULT_OUT
    systems: tuple = S.SYSTEMS
    sites: tuple = (2, 3, 4, 6)          # scale grid: sites (hosts_per_site = main_hosts)
    hosts: tuple = (2, 10, 25, 50)       # scale grid: hosts per site (sites = main_sites)
    reps: int = 30                       # ARP probes / ping echoes per phase
    main_sites: int = 2
    main_hosts: int = 2
    first_ping_reps: int = 5
    reconnect_reps: int = 5
    steady_window: float = 30.0
    steady_warmup: float = 5.0
    steady_slice: float = 5.0
    nd_steady_window: float = 15.0       # the IPv6 steady state (its own lab)
    pktin_rates: tuple = (500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 7000, 8500,
                          10000, 14000, 20000)
    icc_rates: tuple = (500, 1000, 1500, 2000, 3000, 5000, 10000, 15000, 20000, 25000, 30000,
                        40000)
    capacity_step: float = 2.0
    iperf_reps: int = 5
    iperf_seconds: float = 3.0
    scale_reps: int = 10
    scale_first_ping_reps: int = 2
    publish: bool = False                # copy table and plots into bench/README.md, latest/

    @classmethod
    def quick_config(cls, **kw):
        base = dict(quick=True, sites=(2,), hosts=(2,), reps=3, first_ping_reps=1,
                    steady_window=3.0, steady_warmup=1.5, steady_slice=1.5, nd_steady_window=3.0,
                    reconnect_reps=1,
                    pktin_rates=(300,), icc_rates=(300,), capacity_step=1.0, iperf_reps=1,
                    iperf_seconds=1.0, scale_reps=3, scale_first_ping_reps=1)
        base.update(kw)
        return cls(**base)


@dataclass
class Run:
    config: Config
    run_dir: str
    started: float = field(default_factory=time.monotonic)
    labs: list = field(default_factory=list)
    log_lines: list = field(default_factory=list)

    def log(self, message):
        line = f"[{time.monotonic() - self.started:7.1f}s] {message}"
        self.log_lines.append(line)
        print(line, file=sys.stderr, flush=True)


def preflight():
    problems = []
    if os.geteuid() != 0:
        problems.append("the bench needs root (network namespaces, OVS daemons)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        problems.append(f"missing tools {missing}: run `make apt`")
    return problems


def punt_rate_supported():
    from ipop_ryu.core.config import OPTIONS
    return "punt_rate" in OPTIONS


def _measure(run, cells, name, fn, *args, **kw):
    """cells.update(fn(...)); on error every metric of the measurement fails with the reason."""
    t = time.monotonic()
    try:
        cells.update(fn(*args, **kw))
        run.log(f"  {name}: done in {time.monotonic() - t:.1f}s")
    except Exception as exc:  # one measurement failing must not lose the others
        reason = f"{type(exc).__name__}: {exc}"[:500]
        run.log(f"  {name}: FAILED ({reason})")
        run.log_lines.append(traceback.format_exc())
        for metric in MEASUREMENT_METRICS[name]:
            cells[metric] = M.failed(metric, reason)


def _guarded(run, what, metric_keys, fn, *args):
    """fn(*args); when it fails as a whole (a lab that does not come up), every metric of
    metric_keys is failed with the reason instead of losing the run."""
    try:
        return fn(*args)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"[:500]
        run.log(f"{what}: FAILED ({reason})")
        run.log_lines.append(traceback.format_exc())
        return {m: M.failed(m, reason) for m in metric_keys}


def _lab(run, system, n_sites, hosts, **kw):
    lab = Lab(S.spec(system, n_sites, hosts, **kw))
    run.labs.append(lab.suffix)
    return lab


def run_main(run, system):
    """Every metric for one system on the main topology."""
    cfg = run.config
    cells = {}
    if S.loops_on(system, cfg.main_sites):
        raise ValueError("the main topology must be loop-free for every system")
    run.log(f"{system}: {cfg.main_sites} sites x {cfg.main_hosts} hosts")
    with _lab(run, system, cfg.main_sites, cfg.main_hosts) as lab:
        run.log(f"  lab {lab.suffix} up in {lab.timings['up']:.1f}s")
        p = Probes(lab, system, log=run.log)
        _measure(run, cells, "arp", p.arp, cfg.reps)
        _measure(run, cells, "ping", p.ping_rtt, cfg.reps)
        _measure(run, cells, "iperf", p.iperf, cfg.iperf_reps, cfg.iperf_seconds,
                 paired_normal=system == "ipop")
        _measure(run, cells, "first_ping", p.first_ping, cfg.first_ping_reps)
        _measure(run, cells, "steady", p.steady, cfg.steady_window, cfg.steady_warmup,
                 cfg.steady_slice)
        _measure(run, cells, "icc_host", PD.icc_per_host, p, cells, lab.spec.arp_timeout)
        _measure(run, cells, "headless", PD.headless_local, p, cfg.reps)
        _measure(run, cells, "announced", PD.announced_remote, p, cfg.reps)
        _measure(run, cells, "reconnect", PD.bridge_reconnect, p, cfg.reconnect_reps)
        if system == "normal":
            cells["pktin_capacity_pps"] = M.na("pktin_capacity_pps", "no controller")
        else:
            _measure(run, cells, "pktin", p.pktin_capacity, cfg.pktin_rates,
                     cfg.capacity_step, "default configuration")
        if system == "ipop":
            _measure(run, cells, "icc", p.icc_capacity, cfg.icc_rates, cfg.capacity_step)
        else:
            cells["icc_capacity_mps"] = M.na("icc_capacity_mps", "no ICC")
    if system == "ipop" and not cfg.quick and punt_rate_supported() and \
            cells["pktin_capacity_pps"]["status"] == M.OK:
        # The default punt meter caps what reaches the controller: measure the controller
        # itself with the meter off, keep the default figure alongside.
        metered = cells["pktin_capacity_pps"]
        run.log("ipop: packet-in capacity with punt_rate = 0 (no meter)")
        with _lab(run, system, cfg.main_sites, cfg.main_hosts,
                  extra_options={"punt_rate": 0}) as lab:
            p = Probes(lab, system, log=run.log)
            unmetered = {}
            _measure(run, unmetered, "pktin", p.pktin_capacity, cfg.pktin_rates,
                     cfg.capacity_step, "punt_rate = 0 (meter off)")
        cell = unmetered["pktin_capacity_pps"]
        cell["extra"]["default_config"] = {
            "median": metered["median"], "p95": metered["p95"],
            "no_loss_pps": metered["extra"].get("no_loss_pps"),
            "note": "default punt_rate meter: ARP punts per port and second"}
        cells["pktin_capacity_pps"] = cell
    return cells


def _renamed(cells, names):
    """The cells of one measurement under the names of another metric (new: old)."""
    return {new: {**cells[old], "baseline": M.METRICS[new][3]}
            for new, old in names.items() if old in cells}


def run_identity(run):
    """Issue 12 beside the main lab (per-node keys): ICC capacity with the shared key, and
    ARP, ping and iperf3 with the sites joined by WireGuard."""
    cfg = run.config
    cells = {}
    run.log("ipop: ICC capacity with the shared key")
    with _lab(run, "ipop", cfg.main_sites, cfg.main_hosts, keys="shared") as lab:
        p = Probes(lab, "ipop", log=run.log)
        shared = {}
        _measure(run, shared, "icc", p.icc_capacity, cfg.icc_rates, cfg.capacity_step)
        cells.update(_renamed(shared, {"icc_capacity_shared_mps": "icc_capacity_mps"}))
    run.log("ipop: encrypted lab (WireGuard)")
    with _lab(run, "ipop", cfg.main_sites, cfg.main_hosts, encrypt=True) as lab:
        run.log(f"  lab {lab.suffix} up in {lab.timings['up']:.1f}s")
        p = Probes(lab, "ipop", log=run.log)
        plain = {}
        _measure(run, plain, "arp", p.arp, cfg.reps)
        _measure(run, plain, "ping", p.ping_rtt, cfg.reps)
        _measure(run, plain, "iperf", p.iperf, cfg.iperf_reps, cfg.iperf_seconds)
        cells.update(_renamed(plain, M.ENCRYPTED_OF))
    return cells


def run_nd(run, system):
    """The ND metrics for one system, on a lab of the main topology with IPv6 in the
    containers (the main lab stays IPv4-only: its ARP rows see no IPv6 traffic)."""
    cfg = run.config
    cells = {}
    run.log(f"{system}: ND, {cfg.main_sites} sites x {cfg.main_hosts} hosts with IPv6")
    with _lab(run, system, cfg.main_sites, cfg.main_hosts, ipv6=True) as lab:
        run.log(f"  lab {lab.suffix} up in {lab.timings['up']:.1f}s")
        p = Probes(lab, system, log=run.log)
        _measure(run, cells, "nd", p.nd, cfg.reps)
        _measure(run, cells, "nd_steady", p.steady, cfg.nd_steady_window, cfg.steady_warmup,
                 cfg.steady_slice, family=6)
    return cells


def run_scale_point(run, system, n_sites, hosts, checked):
    """The SCALE_METRICS for one system at one grid point; {metric: cell}, loop checks in
    `checked` ({(system, sites): (loops, frames)})."""
    cfg = run.config
    cells = {}
    if S.loops_on(system, n_sites):
        key = (system, n_sites)
        if key not in checked and (system == "simple_switch_13" or
                                   not any(k[0] == system for k in checked)):
            run.log(f"{system}: loop check on {n_sites} sites x {hosts} hosts")
            try:
                with _lab(run, system, n_sites, hosts) as lab:
                    checked[key] = Probes(lab, system, log=run.log).loop_check()
            except Exception as exc:
                checked[key] = (None, f"{type(exc).__name__}: {exc}"[:300])
            run.log(f"  loops: {checked[key]}")
        if system == "simple_switch_13":
            loops, frames = checked.get(key, (True, "a smaller mesh loops"))
            note = (f"a full mesh of {n_sites} sites loops: one broadcast ARP request made "
                    f"{frames} ARP frames cross between sites in 1.5 s" if loops
                    else f"loop check: {frames}")
            for metric in M.SCALE_METRICS:
                cells[metric] = M.cell(metric, status=M.LOOPS if loops else M.FAILED,
                                       note=note)
            return cells
    run.log(f"{system}: scale point {n_sites} sites x {hosts} hosts")
    with _lab(run, system, n_sites, hosts) as lab:
        run.log(f"  lab {lab.suffix} up in {lab.timings['up']:.1f}s")
        note = ""
        if S.uses_rstp(system, n_sites):
            took = S.enable_rstp(lab)
            note = f"RSTP on (a plain NORMAL full mesh loops); converged in {took:.1f}s"
            run.log(f"  {note}")
        p = Probes(lab, system, log=run.log)
        _measure(run, cells, "arp", p.arp, cfg.scale_reps)
        _measure(run, cells, "first_ping", p.first_ping, cfg.scale_first_ping_reps)
    cells = {m: cells[m] for m in M.SCALE_METRICS}
    if note:
        for c in cells.values():
            c["note"] = (c["note"] + "; " if c["note"] else "") + note
    return cells


def run_bench(config):
    problems = preflight()
    if problems:
        raise RuntimeError("; ".join(problems))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = os.path.join(config.out, stamp)
    os.makedirs(run_dir, exist_ok=False)
    run = Run(config, run_dir)
    run.log(f"bench {'(quick) ' if config.quick else ''}-> {run_dir}")
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results = {}
    for system in config.systems:
        results[system] = _guarded(run, f"{system} (main)", M.METRICS, run_main, run, system)
        nd_metrics = MEASUREMENT_METRICS["nd"] + MEASUREMENT_METRICS["nd_steady"]
        results[system].update(_guarded(run, f"{system} (ND)", nd_metrics, run_nd, run,
                                        system))
    for system in results:      # per-node keys and WireGuard are ipop's alone
        results[system].update(
            _guarded(run, "ipop (identity, WireGuard)", IDENTITY_METRICS, run_identity, run)
            if system == "ipop" else {m: M.na(m, "ipop-ryu only") for m in IDENTITY_METRICS})
    M.add_ratios(results)

    # scale grid: the main point is reused, the others measured
    main_key = (config.main_sites, config.main_hosts)
    checked = {}
    scale = {"sites": [], "hosts": []}
    points = [("sites", n, config.main_hosts) for n in config.sites] + \
             [("hosts", config.main_sites, h) for h in config.hosts]
    measured = {}
    for axis, n_sites, hosts in points:
        key = (n_sites, hosts)
        if key not in measured:
            if key == main_key:
                point = {s: {m: results[s][m] for m in M.SCALE_METRICS} for s in results}
            else:
                point = {}
                for system in config.systems:
                    point[system] = _guarded(run, f"{system} ({n_sites}x{hosts})",
                                             M.SCALE_METRICS, run_scale_point, run, system,
                                             n_sites, hosts, checked)
                M.add_ratios(point)
            measured[key] = point
        scale[axis].append({"sites": n_sites, "hosts": hosts, "results": measured[key]})

    services_doc = run_services_section(run) if "ipop" in config.systems and \
        not config.quick else None

    doc = {
        "schema": SCHEMA,
        "started": started_at,
        "wall_s": None,
        "machine": machine(),
        "config": {k: list(v) if isinstance(v, tuple) else v
                   for k, v in asdict(config).items()},
        "systems": list(config.systems),
        "labels": {s: S.LABELS[s] for s in config.systems},
        "metrics": {k: {"unit": v[0], "label": v[1], "description": v[2], "baseline": v[3],
                        "better": v[4]} for k, v in M.METRICS.items()},
        "results": results,
        "scale": scale,
        "loop_checks": [{"system": s, "sites": n, "loops": lf[0], "frames": lf[1]}
                        for (s, n), lf in sorted(checked.items())],
        "targets": M.check_targets(results, scale=scale) if "ipop" in results else [],
        "labs": run.labs,
    }
    if services_doc is not None:
        doc["services"] = services_doc
    from . import plots, report      # matplotlib is imported only now
    doc["plots"] = plots.write_all(doc, run_dir, log=run.log)
    doc["wall_s"] = round(time.monotonic() - run.started, 1)
    write_outputs(run, doc, "results.json", "results.md", report.markdown(doc), "bench.log")
    if config.publish:
        report.publish(doc, run_dir, log=run.log)
    run.log(f"done in {doc['wall_s']}s: {run_dir}")
    return run_dir, doc


def write_outputs(run, doc, json_name, md_name, md_text, log_name):
    """doc as OUT/<stamp>/json_name, the markdown as md_name, the run's log as log_name."""
    with open(os.path.join(run.run_dir, json_name), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    with open(os.path.join(run.run_dir, md_name), "w") as f:
        f.write(md_text)
    with open(os.path.join(run.run_dir, log_name), "w") as f:
        f.write("\n".join(run.log_lines) + "\n")


def run_services_section(run):
    """The site services section (issue 20) of a full run, or None where LXC is missing;
    its own figures and targets (services.py), or its failure."""
    from . import services
    missing = services.unavailable()
    if missing:
        run.log(f"site services: skipped ({missing})")
        return None
    run.log("site services (issue 20): LXC containers, 3 sites and a plain lxc-net host")
    try:
        return services.measure(services.ServicesConfig(), run.log)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"[:500]
        run.log(f"site services: FAILED ({reason})")
        run.log_lines.append(traceback.format_exc())
        return {"failed": reason}


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "commit": _commit(),
            "python": platform.python_version(),
            "load_at_end": [round(x, 2) for x in os.getloadavg()]}


def _commit():
    """The checked-out commit, read from .git without running git."""
    git = os.path.join(REPO_ROOT, ".git")
    try:
        if os.path.isfile(git):          # a worktree: "gitdir: <main>/.git/worktrees/<name>"
            with open(git) as f:
                git = f.read().split(":", 1)[1].strip()
        common = git                     # branches live in the main repository's .git
        if os.path.exists(os.path.join(git, "commondir")):
            with open(os.path.join(git, "commondir")) as f:
                common = os.path.normpath(os.path.join(git, f.read().strip()))
        with open(os.path.join(git, "HEAD")) as f:
            head = f.read().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            git = common
            path = os.path.join(git, ref)
            if os.path.exists(path):
                with open(path) as f:
                    return f.read().strip()
            with open(os.path.join(git, "packed-refs")) as f:
                for line in f:
                    if line.rstrip().endswith(" " + ref):
                        return line.split()[0]
            return None
        return head
    except OSError:
        return None

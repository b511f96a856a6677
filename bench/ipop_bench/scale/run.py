"""The scale bench, driven from outside the lab: for each N a fresh seed lab, one ScalePoint
measuring it phase by phase (see the package's docstring), then scale.json, scale.md and the
plot."""
import json
import os
import re
import signal
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from ipop_ryu.lab import Lab, seed_two_sites
from ipop_ryu.lab.lab import ICC_PORT
from ipop_ryu.lab.topology import ALLOWED_IPS

from .. import metrics as M
from .. import runner
from ..feeder import FEEDER_NET, entry_ip, entry_mac, udp_queue
from ..probes import Probes
from ..procs import Background, cpu_seconds
from .agents import PROXY_ARP
from .report import markdown
from .targets import check_targets

DEFAULT_NS = (1000, 10000, 50000, 100000)
REST_PORT = 8080


@dataclass
class ScaleConfig:
    ns: tuple = DEFAULT_NS
    out: str = ""                 # results root (runner.DEFAULT_OUT when empty)
    rate: float = 2000.0          # feeder: bindings datagrams per second at most
    max_queue: int = 4 << 20      # feeder: bytes queued at A's ICC socket before it waits
    idle_window: float = 30.0     # seconds of idle CPU measurement after the feed
    baseline_window: float = 10.0  # ... and before it (0 entries)
    settle: float = 5.0           # after the feed, before the idle window (audits, GC)
    arp_reps: int = 30
    rest_reps: int = 10
    restart: bool = True
    restart_gap: float = 1.0      # seconds between stopping A's controller and starting it
    rest_interval: float = 0.02   # watcher: REST stats polls
    flow_interval: float = 0.1    # watcher: dump-aggregate polls

    def learn_timeout(self, n):
        return 30.0 + n / 1000.0

    @classmethod
    def smoke(cls, **kw):
        base = dict(ns=(2000,), idle_window=5.0, baseline_window=3.0, settle=2.0, arp_reps=5,
                    rest_reps=3)
        base.update(kw)
        return cls(**base)


AGENT = [sys.executable, "-m", "ipop_bench.scale.agents"]
FEEDER = [sys.executable, "-m", "ipop_bench.feeder"]


def _proc_status_kb(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return None


def vswitchd_pid(site):
    """From the site's pidfile (what ovs-vswitchd itself wrote), else the lab's record."""
    try:
        with open(site.ovs.path("ovs-vswitchd", "pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return site.ovs.pids.get("ovs-vswitchd")


def flow_count(site):
    out = site.ofctl("dump-aggregate", site.bridge, PROXY_ARP)
    return int(re.search(r"flow_count=(\d+)", out).group(1))


def _rest(site, path):
    """GET a path of the site's REST API from inside its namespace, JSON decoded."""
    code = ("import sys,urllib.request;sys.stdout.write(urllib.request.urlopen("
            f"'http://{site.underlay_ip}:{REST_PORT}{path}',timeout=10).read().decode())")
    return json.loads(site.exec([sys.executable, "-c", code], timeout=20).stdout)


def _stats(site):
    return _rest(site, "/ipop/v1/stats")


def _summary(values, digits=3):
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "p95": None, "n": 0}
    return {"median": round(M.percentile(values, 50), digits),
            "p95": round(M.percentile(values, 95), digits), "n": len(values)}


class Watcher:
    """The watch agent in a site's namespace, and what it wrote so far."""

    def __init__(self, lab, site, path, cfg):
        self.path = path
        self.bg = Background(lab, site.name, AGENT + [
            "watch", "--url", f"http://{site.underlay_ip}:{REST_PORT}", "--bridge",
            f"unix:{os.path.join(site.rundir, site.bridge + '.mgmt')}", "--out", path,
            "--rest-interval", cfg.rest_interval, "--flow-interval", cfg.flow_interval])

    def samples(self, kind):
        try:
            with open(self.path) as f:
                lines = f.readlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue                  # a line being written
            if record["k"] == kind:
                out.append(record)
        return out

    def first(self, kind, predicate, since=0.0):
        return next((s for s in self.samples(kind) if s["t"] >= since and predicate(s)), None)

    def wait(self, kind, predicate, timeout, since=0.0):
        """The first sample of kind (at or after `since`) for which predicate holds."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.first(kind, predicate, since)
            if found or time.monotonic() > deadline:
                return found
            if self.bg.proc.poll() is not None:
                raise RuntimeError(f"watcher exited: {self.bg.finish(5)[2][-300:]}")
            time.sleep(0.1)

    def stop(self):
        self.bg.kill()
        self.bg.finish(5)


def _full(target):
    return lambda s: s.get("remote") is not None and s["remote"] >= target


def _flows_at(target):
    return lambda s: s.get("count") is not None and s["count"] >= target


def _cpu(pids, window):
    """CPU seconds per minute of each {name: pid} over `window` seconds of wall time."""
    before, t0 = {k: cpu_seconds(p) for k, p in pids.items()}, time.monotonic()
    time.sleep(window)
    after, t1 = {k: cpu_seconds(p) for k, p in pids.items()}, time.monotonic()
    return {k: None if before[k] is None or after[k] is None else
            round((after[k] - before[k]) * 60.0 / (t1 - t0), 3) for k in pids}


def _changed(before, after):
    """{key: after - before} of the counters that moved."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def _stats_delta(before, after):
    """What the controller counted between two stats answers (the counters that matter)."""
    icc_b, icc_a = before["icc"], after["icc"]
    flows = {k: after["flows"][k] - before["flows"].get(k, 0) for k in
             ("flow_mods", "audits", "repaired", "removed_stale", "reinstalled")
             if k in after["flows"]}
    return {"icc_received": _changed(icc_b["received"], icc_a["received"]),
            "icc_sent": _changed(icc_b["sent"], icc_a["sent"]),
            "icc_dropped": _changed(icc_b["dropped"], icc_a["dropped"]),
            "send_errors": icc_a.get("send_errors", 0) - icc_b.get("send_errors", 0),
            "bindings_invalid": icc_a.get("bindings_invalid", 0) - icc_b.get(
                "bindings_invalid", 0),
            "flows": flows, "peers_went_down": after["peers"]["went_down"] -
            before["peers"]["went_down"], "errors": after.get("errors", {})}


class ScalePoint:
    """One N on one lab: learn, idle, arp, rest, restart, each a phase of its own."""

    def __init__(self, run, lab, n):
        self.run, self.lab, self.n, self.cfg = run, lab, n, run.config
        self.a, self.b = lab.sites["A"], lab.sites["B"]
        self.result = {"n": n, "lab": lab.suffix, "errors": {}}
        self.feeder = None
        self.status_path = os.path.join(lab.workdir, "feeder.json")

    def log(self, message):
        self.run.log(f"  N={self.n:,}: {message}")

    def phase(self, name, fn):
        t = time.monotonic()
        try:
            fn()
            self.log(f"{name} done in {time.monotonic() - t:.1f}s")
            return True
        except Exception as exc:  # one phase failing must not lose the others
            reason = f"{type(exc).__name__}: {exc}"[:500]
            self.result["errors"][name] = reason
            self.log(f"{name} FAILED ({reason})")
            self.run.log_lines.append(traceback.format_exc())
            return False

    def feeder_status(self):
        try:
            with open(self.status_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def feed_job(self, wait=0.0):
        """The feeder's record of its feed, once it says the feed ended (or after `wait` s)."""
        deadline = time.monotonic() + wait
        while True:
            job = next((j for j in self.feeder_status().get("jobs", [])
                        if j["reason"] == "feed"), {})
            if job.get("finished") or time.monotonic() >= deadline:
                return job
            time.sleep(0.1)

    # ---- phases ---------------------------------------------------------------------------
    def measure(self):
        try:
            if self.phase("setup", self.setup) and self.phase("learn", self.learn):
                self.phase("idle", self.idle)
                self.phase("arp", self.arp)
                self.phase("rest", self.rest)
                if self.cfg.restart:
                    self.phase("restart", self.restart)
                self.phase("peers", self.peers)
        finally:
            if self.feeder is not None:
                self.feeder.kill()
                rc, _, err = self.feeder.finish(10)
                status = self.feeder_status()
                self.result["feeder"] = {k: v for k, v in status.items() if k != "jobs"}
                self.result["feeder"]["jobs"] = status.get("jobs", [])
                if rc not in (0, None):
                    self.result["errors"]["feeder"] = f"exit {rc}: {err.strip()[-300:]}"
        return self.result

    def setup(self):
        """B's controller gives way to the feeder (B's node id, address and port); A's state
        before anything is fed: 0-entry idle CPU and RSS."""
        lab, a, b = self.lab, self.a, self.b
        lab.stop_controller(b)
        self.vswitchd = vswitchd_pid(a)
        self.feeder = Background(lab, b.name, FEEDER + [
            *lab.key_args(b.name, a.name), "--node", b.name, "--bind", f"{b.underlay_ip}:{ICC_PORT}",
            "--peer", f"{a.underlay_ip}:{ICC_PORT}", "--count", self.n, "--rate", self.cfg.rate,
            "--feed-after", 0, "--feed-on-signal", "--watch-pid", self.vswitchd,
            "--max-queue", self.cfg.max_queue, "--status", self.status_path])
        time.sleep(2.0)        # A hears the new boot, sends its own hosts (none): quiet again
        if self.feeder.proc.poll() is not None:
            raise RuntimeError(f"feeder exited: {self.feeder.finish(5)[2][-300:]}")
        self.before = _stats(a)
        self.remote_before = self.before["table"]["remote"]
        self.flows_before = flow_count(a)
        self.result["baseline"] = {
            "remote_entries": self.remote_before, "responders": self.flows_before,
            "rss_kb": _proc_status_kb(a.controller_pid),
            "vswitchd_rss_kb": _proc_status_kb(self.vswitchd),
            "cpu_s_per_min": self._idle_cpu(self.cfg.baseline_window),
            "window_s": self.cfg.baseline_window}

    def _idle_cpu(self, window):
        cpu = _cpu({"controller": self.a.controller_pid, "vswitchd": self.vswitchd}, window)
        return {"controller": cpu["controller"], "vswitchd": cpu["vswitchd"]}

    def learn(self):
        """SIGUSR1 starts the feed; from its first binding to A's table (REST) and bridge
        (dump-aggregate) holding all N."""
        n, a = self.n, self.a
        target, flows_target = self.remote_before + n, self.flows_before + n
        drops_before = _socket_drops(self.vswitchd)
        watcher = Watcher(self.lab, a, os.path.join(self.lab.workdir, "watch-learn.jsonl"),
                          self.cfg)
        try:
            if not watcher.wait("rest", lambda s: "remote" in s, 15):
                raise RuntimeError("the watcher got no answer from A's REST API")
            t_signal = time.time()
            self.feeder.proc.send_signal(signal.SIGUSR1)
            timeout = self.cfg.learn_timeout(n)
            table = watcher.wait("rest", _full(target), timeout, since=t_signal)
            flows = watcher.wait("flows", _flows_at(flows_target),
                                 max(5.0, timeout - (time.time() - t_signal)), since=t_signal)
            rest = [s for s in watcher.samples("rest") if "remote" in s]
            counts = [s["count"] for s in watcher.samples("flows") if s.get("count") is not None]
        finally:
            watcher.stop()
        job = self.feed_job(wait=10.0 if table else 0.0)
        first = job.get("first_binding")
        after = _stats(a)
        self.after_learn = after
        learned = max([s["remote"] for s in rest] or [self.remote_before]) - self.remote_before
        out = {"target": n, "learned": learned,
               "responders": max(counts or [self.flows_before]) - self.flows_before,
               "first_binding": first, "feed_finished": job.get("finished"),
               "feed_s": _since(first, job.get("finished")),
               "table_s": _since(first, table and table["t"]),
               "flows_s": _since(first, flows and flows["t"]),
               "socket_drops": _delta(drops_before, _socket_drops(self.vswitchd)),
               "controller": _stats_delta(self.before, after),
               "went_down_max": max([s.get("went_down") or 0 for s in rest] or [0])}
        out["rate"] = round(n / out["table_s"]) if out["table_s"] else None
        out["flows_rate"] = round(n / out["flows_s"]) if out["flows_s"] else None
        self.result["learn"] = out
        self.log(f"learned {learned:,}/{n:,} in {out['table_s']}s ({out['rate']}/s), "
                 f"responders {out['responders']:,} in {out['flows_s']}s; socket drops "
                 f"{out['socket_drops']}, ICC dropped {out['controller']['icc_dropped']}")
        if table is None:
            raise RuntimeError(f"A's table held {learned:,} of {n:,} after {timeout:.0f}s")

    def idle(self):
        """Nothing but hellos: CPU over the window, RSS after (KB per entry)."""
        a = self.a
        time.sleep(self.cfg.settle)
        before = _stats(a)
        cpu = self._idle_cpu(self.cfg.idle_window)
        after = _stats(a)
        rss = _proc_status_kb(a.controller_pid)
        rss0 = self.result["baseline"]["rss_kb"]
        self.result["idle"] = {
            "window_s": self.cfg.idle_window, "cpu_s_per_min": cpu,
            "controller": _stats_delta(before, after)}
        self.result["memory"] = {
            "rss_before_kb": rss0, "rss_after_kb": rss,
            "kb_per_entry": round((rss - rss0) / self.n, 3) if rss and rss0 else None,
            "vswitchd_rss_kb": _proc_status_kb(self.vswitchd)}
        self.log(f"idle CPU-s/min controller {cpu['controller']}, vswitchd {cpu['vswitchd']}; "
                 f"RSS {rss0} -> {rss} KB ({self.result['memory']['kb_per_entry']} KB/entry)")

    def arp(self):
        """Learned entries spread over the table, asked by h3 (answered by their flows)."""
        reps, n = self.cfg.arp_reps, self.n
        index = [min(n - 1, int((k + 0.5) * n / reps)) for k in range(reps)]
        before = _stats(self.a)
        probes = Probes(self.lab, "ipop", log=self.run.log)
        host = probes.requester
        runs = probes.probe(host, [entry_ip(i) for i in index], 20, timeout_ms=500)
        after = _stats(self.a)
        wrong = sum(1 for i, r in zip(index, runs) if r["mac"] and r["mac"] != entry_mac(i))
        self.result["arp"] = {
            **_summary([r["rtt_ms"] for r in runs]), "requester": host.name,
            "lost": sum(1 for r in runs if r["rtt_ms"] is None), "wrong_mac": wrong,
            "answered_by_controller": after["arp"]["answered_by_controller"] -
            before["arp"]["answered_by_controller"],
            "relayed": after["arp"]["relayed_to_peers"] - before["arp"]["relayed_to_peers"],
            "samples": [r["rtt_ms"] for r in runs]}

    def rest(self):
        a = self.a
        middle = entry_ip(self.n // 2)
        paths = {"arp_first_page": "/ipop/v1/arp?limit=1000",
                 "arp_middle_page": f"/ipop/v1/arp?limit=1000&after={middle}",
                 "stats": "/ipop/v1/stats", "metrics": "/metrics"}
        proc = self.lab.exec(a.name, AGENT + [
            "rest", "--url", f"http://{a.underlay_ip}:{REST_PORT}", "--reps",
            self.cfg.rest_reps, *paths.values()], timeout=60 + 4 * self.cfg.rest_reps * 5)
        timed = json.loads(proc.stdout)
        self.result["rest"] = {name: {**_summary(timed[path]["ms"]),
                                      **{k: v for k, v in timed[path].items() if k != "ms"},
                                      "path": path}
                               for name, path in paths.items()}

    def restart(self):
        """Stop A's controller, start it again; responders polled throughout."""
        lab, a, n = self.lab, self.a, self.n
        target, flows_target = self.remote_before + n, self.flows_before + n
        syncs_before = self.feeder_status().get("syncs_answered", 0)
        watcher = Watcher(lab, a, os.path.join(lab.workdir, "watch-restart.jsonl"), self.cfg)
        try:
            if not watcher.wait("flows", lambda s: s.get("count") is not None, 15):
                raise RuntimeError("the watcher got no flow count")
            t_stop = time.time()
            lab.stop_controller(a)
            time.sleep(self.cfg.restart_gap)
            t_start = time.time()
            lab.start_controller(a)         # returns once connected, pipeline installed
            t_connected = time.time()
            timeout = 60.0 + n / 1000.0
            table = watcher.wait("rest", _full(target), timeout, since=t_start)
            graceful = watcher.wait("rest", lambda s: s.get("graceful") is False,
                                    max(5.0, timeout - (time.time() - t_start)), since=t_start)
            time.sleep(2.0)                 # what the end of the graceful restart deletes
            rest = [s for s in watcher.samples("rest") if s["t"] >= t_start and "remote" in s]
            flows = [s for s in watcher.samples("flows") if s["t"] >= t_stop]
        finally:
            watcher.stop()
        counts = [s["count"] for s in flows if s.get("count") is not None]
        after = _stats(a)
        first_answer = rest[0]["t"] if rest else None
        fewest = min(counts) if counts else None
        status = self.feeder_status()
        self.result["restart"] = {
            "polls": len(counts), "min_responders": fewest,
            "lost": None if fewest is None else max(0, flows_target - fewest),
            "responders_after": counts[-1] if counts else None,
            "down_s": round(t_start - t_stop, 2),
            "connected_s": round(t_connected - t_start, 2),
            "rest_back_s": _since(t_start, first_answer),
            "table_back_s": _since(t_start, table and table["t"]),
            "graceful_s": _since(t_start, graceful and graceful["t"]),
            "learned_after": max([s["remote"] for s in rest] or [0]) - self.remote_before,
            "syncs_answered": status.get("syncs_answered", 0) - syncs_before,
            "sync_jobs": [j for j in status.get("jobs", []) if j["reason"] != "feed"],
            "graceful_restart": after.get("graceful_restart"),
            "sync": after.get("sync"),
            "flows": after.get("flows"),
            "icc_dropped": {k: v for k, v in after["icc"]["dropped"].items() if v},
            "went_down": after["peers"]["went_down"], "errors": after.get("errors", {})}
        r = self.result["restart"]
        self.log(f"restart: fewest responders {fewest} (lost {r['lost']}), table back "
                 f"{r['table_back_s']}s after the start, graceful restart over at "
                 f"{r['graceful_s']}s")
        if table is None:
            raise RuntimeError(f"the restarted controller held {r['learned_after']:,} of "
                               f"{n:,} after {timeout:.0f}s")

    def peers(self):
        states = {p["name"]: p for p in _rest(self.a, "/ipop/v1/peers")}
        b = states.get(self.b.name, {})
        stats = _stats(self.a)
        went_down = [self.result.get("learn", {}).get("went_down_max", 0),
                     self.after_learn["peers"]["went_down"],
                     self.result.get("idle", {}).get("controller", {}).get("peers_went_down", 0),
                     stats["peers"]["went_down"]]
        self.result["peers"] = {"state": b.get("state"), "entries": b.get("entries"),
                                "last_heard_ago": b.get("last_heard_ago"),
                                "went_down": max(went_down)}


def _since(t0, t1):
    return round(t1 - t0, 3) if t0 is not None and t1 is not None else None


def _delta(a, b):
    return None if a is None or b is None else b - a


def _socket_drops(pid):
    """Datagrams A's ICC socket dropped (its receive buffer full) so far, or None."""
    queue = udp_queue(pid, ICC_PORT)
    return queue[1] if queue else None


# --- the run --------------------------------------------------------------------------------------

def lab_spec():
    # entries live an hour: nothing expires or is refreshed while it is measured
    return seed_two_sites(extra_options={"arp_timeout": "3600"},
                          allowed_ips={"B": f"{ALLOWED_IPS}, {FEEDER_NET}"})


def run_scale(config):
    """Every N of the config on its own lab; returns (run_dir, doc)."""
    problems = runner.preflight()
    if problems:
        raise RuntimeError("; ".join(problems))
    out = config.out or runner.DEFAULT_OUT
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = os.path.join(out, stamp)
    os.makedirs(run_dir, exist_ok=False)
    run = runner.Run(config, run_dir)
    run.log(f"scale bench, N = {', '.join(f'{n:,}' for n in config.ns)} -> {run_dir}")
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    points = []
    for n in config.ns:
        try:
            with Lab(lab_spec()) as lab:
                run.labs.append(lab.suffix)
                run.log(f"N={n:,}: lab {lab.suffix} up in {lab.timings['up']:.1f}s")
                points.append(ScalePoint(run, lab, n).measure())
        except Exception as exc:           # a lab that does not come up loses one N only
            run.log(f"N={n:,}: FAILED ({type(exc).__name__}: {exc})")
            run.log_lines.append(traceback.format_exc())
            points.append({"n": n, "errors": {"lab": f"{type(exc).__name__}: {exc}"[:500]}})
    doc = {"schema": 1, "kind": "scale", "started": started_at, "wall_s": None,
           "machine": runner.machine(),
           "config": {k: list(v) if isinstance(v, tuple) else v
                      for k, v in asdict(config).items()},
           "points": points, "targets": check_targets(points), "labs": run.labs}
    from .. import plots            # matplotlib is imported only now
    doc["plots"] = []
    try:
        plots.scale_cost(doc, os.path.join(run_dir, "scale_cost.png"))
        doc["plots"].append("scale_cost.png")
    except Exception as exc:       # a plot must not lose the numbers
        run.log(f"plot scale_cost.png failed: {type(exc).__name__}: {exc}")
    doc["wall_s"] = round(time.monotonic() - run.started, 1)
    runner.write_outputs(run, doc, "scale.json", "scale.md", markdown(doc), "scale.log")
    run.log(f"done in {doc['wall_s']}s: {run_dir}")
    return run_dir, doc


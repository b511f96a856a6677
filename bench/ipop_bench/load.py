"""What the systems sustain, for the bench: the controller's packet-in and ICC capacity
(rates ramped until one is not handled in full, with the CPU it took) and iperf3 throughput
across sites. A mixin of `Probes` (bench/probes.py), which supplies the lab, its hosts and
`bg()`.
"""
import json
import time

from ipop_ryu.lab.lab import ICC_PORT

from . import metrics as M
from .procs import AGENT, cpu_seconds


class LoadProbes:
    # --- controller capacity ------------------------------------------------------------------
    def _cpu_pids(self, handler_site):
        """{name: pid} of the processes whose CPU time a capacity step reports; the first
        one is the controller under test."""
        pids = {}
        for site in [handler_site] + [s for s in self.lab.sites.values()
                                      if s is not handler_site]:
            if site.controller_pid:
                pids[f"controller_{site.name}"] = site.controller_pid
            pid = site.ovs.pids.get("ovs-vswitchd")
            if pid:
                pids[f"vswitchd_{site.name}"] = pid
        return pids

    def _ramp(self, rates, step, counter_host, start_generator, label, cpu_pids):
        """Offer each rate for `step` seconds while sampling counter_host's rx_packets (each
        handled request is flooded/replayed to it once). Stops after the first rate that is
        not handled in full. Returns (best step's per-0.25 s handled rates, extra). Each step
        also records the CPU share of cpu_pids and the first one's CPU time per message."""
        ramp = []
        best = None
        for rate in rates:
            sampler = self.bg(counter_host.name, AGENT + ["sample", "--interval", "0.05",
                                                          "--duration", step + 2.0])
            time.sleep(0.3)
            cpu0, wall0 = {k: cpu_seconds(p) for k, p in cpu_pids.items()}, time.monotonic()
            gen = start_generator(rate, step)
            g = gen.json(step + 60)
            samples = sampler.json(step + 30)
            cpu1, wall1 = {k: cpu_seconds(p) for k, p in cpu_pids.items()}, time.monotonic()
            t_start, t_end, sent = g["t_start"], g["t_end"], g["sent"]
            offered = sent / max(1e-6, t_end - t_start)
            # skip the first 0.25 s (queues fill), slice the rest
            rates_in = _slice_rates(samples, t_start + 0.25, t_end, 0.25)
            before = _value_at(samples, t_start)
            after = samples[-1][1]                      # 2 s after the end: drained
            in_window = _value_at(samples, t_end) - before
            handled_total = after - before
            entry = {"rate": rate, "offered": round(offered), "sent": sent,
                     "handled_in_window": in_window, "handled_total": handled_total,
                     "median_rate": round(M.percentile(rates_in, 50)) if rates_in else None,
                     "loss": round(1 - handled_total / sent, 4) if sent else None,
                     "backlog": round(1 - in_window / sent, 4) if sent else None,
                     "cpu_share": {k: round((cpu1[k] - cpu0[k]) / (wall1 - wall0), 3)
                                   for k in cpu_pids if cpu0[k] is not None
                                   and cpu1[k] is not None}}
            handler = next(iter(cpu_pids), None)
            if handler and handler in entry["cpu_share"] and handled_total > 0:
                entry["cpu_us_per_msg"] = round((cpu1[handler] - cpu0[handler]) * 1e6
                                                / handled_total, 1)
            ramp.append(entry)
            self.log(f"    {label} offered {entry['offered']}/s: handled "
                     f"{entry['median_rate']}/s, loss {entry['loss']}, backlog at end "
                     f"{entry['backlog']}, CPU {entry['cpu_share']}, "
                     f"{entry.get('cpu_us_per_msg')} us/msg")
            if rates_in and (best is None or entry["median_rate"] > best[1]["median_rate"]):
                best = (rates_in, entry)
            if entry["loss"] is None or entry["loss"] > 0.05 or entry["backlog"] > 0.10:
                break
        # a step counts at its nominal rate when the generator kept pace with it (a
        # few-per-mille shortfall is pacing, not the controller); else at what it offered
        no_loss = max([e["rate"] if e["offered"] >= 0.99 * e["rate"] else e["offered"]
                       for e in ramp if e["loss"] is not None
                       and e["loss"] <= 0.02 and e["backlog"] <= 0.05] or [0])
        extra = {"no_loss_pps": no_loss, "ramp": ramp,
                 "saturated": bool(ramp and (ramp[-1]["loss"] or 0) > 0.05)}
        if best and "cpu_us_per_msg" in best[1]:
            # what one core would handle at this cost per message (a load-independent bound)
            extra["cpu_us_per_msg"] = best[1]["cpu_us_per_msg"]
            extra["one_core_bound_pps"] = round(1e6 / best[1]["cpu_us_per_msg"]) \
                if best[1]["cpu_us_per_msg"] else None
        return (best[0] if best else []), extra

    def pktin_capacity(self, rates, step, config=""):
        """A raw-socket generator on the requester sends broadcast ARP requests for unknown
        targets (65,000 distinct, rotating); every one is punted and flooded to the other
        hosts of the site, whose eth0 rx counter tells how many the controller handled."""
        gen_host = self.requester

        def start(rate, duration):
            return self.bg(gen_host.name, AGENT + ["arpgen", "--ip", gen_host.ip, "--rate",
                                                   rate, "--duration", duration])
        before = self.rest_stats(self.site_a) if self.system == "ipop" else None
        samples, extra = self._ramp(rates, step, self.local_target, start, "packet-in",
                                    self._cpu_pids(self.site_a))
        if before is not None:
            after = self.rest_stats(self.site_a)
            extra["controller_packet_in"] = after["packet_in"] - before["packet_in"]
            extra["controller_errors"] = after.get("errors", {})
        if config:
            extra["config"] = config
        return {"pktin_capacity_pps": M.cell("pktin_capacity_pps", samples, **extra)}

    def icc_capacity(self, rates, step):
        """Signed arp_request messages from site B's namespace (its underlay address, port
        30001, node id B) to site A's controller, one per unknown target, sender one of B's
        hosts; every one processed is replayed on A's local ports. Leaves A distrusting B's
        real controller (its sequence numbers are now below ours): run it last."""
        lab = self.lab
        a, b = self.site_a, list(lab.sites.values())[1]
        sender = next(iter(b.hosts.values()))

        def start(rate, duration):
            return self.bg(b.name, AGENT + [
                "iccgen", *lab.key_args(b.name, a.name), "--node", b.name,
                "--bind", f"{b.underlay_ip}:{ICC_PORT + 1}", "--dest",
                f"{a.underlay_ip}:{ICC_PORT}", "--sender-ip", sender.ip,
                "--sender-mac", sender.mac, "--rate", rate, "--duration", duration])
        before = self.rest_stats(a)
        samples, extra = self._ramp(rates, step, self.local_target, start, "ICC",
                                    self._cpu_pids(a))
        after = self.rest_stats(a)
        extra["controller_received"] = after["icc"]["received"]["arp_request"] - \
            before["icc"]["received"]["arp_request"]
        extra["controller_dropped"] = {k: v - before["icc"]["dropped"].get(k, 0)
                                       for k, v in after["icc"]["dropped"].items()
                                       if v - before["icc"]["dropped"].get(k, 0)}
        return {"icc_capacity_mps": M.cell("icc_capacity_mps", samples, **extra)}

    # --- datapath throughput --------------------------------------------------------------
    NORMAL_OVERRIDE = "0xbe0c4e0000000001"     # not an ipop cookie: the controller leaves it

    def _override_normal(self, on):
        """Put (or take away) a top-priority `actions=NORMAL` flow in table 0 of every
        bridge: the controller's pipeline is bypassed, the datapath is plain NORMAL."""
        for site in self.lab.sites.values():
            if on:
                site.ofctl("add-flow", site.bridge, f"cookie={self.NORMAL_OVERRIDE},table=0,"
                                                    "priority=65535,actions=NORMAL")
            else:
                site.ofctl("del-flows", site.bridge, f"cookie={self.NORMAL_OVERRIDE}/-1")

    def _iperf_once(self, port, seconds):
        server = self.bg(self.owner.name, ["iperf3", "-s", "-1", "-p", port])
        time.sleep(0.3)
        proc = self.requester.exec(["iperf3", "-c", self.owner.ip, "-p", port, "-t", seconds,
                                    "-O", "0.5", "-J", "--connect-timeout", "3000"],
                                   check=False, timeout=seconds + 30)
        server.finish(10)
        try:
            return json.loads(proc.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6, None
        except (ValueError, KeyError) as exc:
            return None, f"{type(exc).__name__}: {proc.stdout[-200:]}{proc.stderr[-200:]}"

    def iperf(self, reps, seconds, paired_normal=False):
        """iperf3 TCP from the requester to the remote owner, `seconds` each (first 0.5 s
        omitted), a fresh server per run. paired_normal: each run is paired with one on the
        same lab with the bridges switched to NORMAL (a table-0 override flow), in
        alternating order, so that both see the same machine load."""
        self.requester.exec(["ping", "-n", "-c", "2", "-i", "0.1", "-w", "5", self.owner.ip],
                            check=False)
        samples, normal, errors = [], [], []
        port = 5201
        for i in range(reps):
            order = (False, True) if i % 2 == 0 else (True, False)
            for as_normal in (order if paired_normal else (False,)):
                port += 1
                if as_normal:
                    self._override_normal(True)
                    try:
                        value, error = self._iperf_once(port, seconds)
                    finally:
                        self._override_normal(False)
                    normal.append(value)
                else:
                    value, error = self._iperf_once(port, seconds)
                    samples.append(value)
                if error:
                    errors.append(error)
        extra = {"seconds": seconds}
        if errors:
            extra["errors"] = errors[:3]
        if paired_normal:
            ok = [v for v in normal if v is not None]
            mine = [v for v in samples if v is not None]
            if ok and mine:
                extra["paired_normal"] = {"median": round(M.percentile(ok, 50), 1),
                                          "p95": round(M.percentile(ok, 95), 1),
                                          "samples": [round(v, 1) for v in ok]}
                extra["paired_ratio"] = round(M.percentile(mine, 50) / M.percentile(ok, 50), 3)
        return {"iperf3_mbps": M.cell("iperf3_mbps", samples, **extra)}


def _value_at(samples, t):
    """Counter value at time t by linear interpolation of [(t, value)] samples."""
    if not samples:
        return 0
    if t <= samples[0][0]:
        return samples[0][1]
    for (ta, va), (tb, vb) in zip(samples, samples[1:]):
        if ta <= t <= tb:
            return va + (vb - va) * (t - ta) / (tb - ta) if tb > ta else vb
    return samples[-1][1]


def _slice_rates(samples, start, end, width):
    out = []
    t = start
    while t + width <= end + 1e-9:
        out.append((_value_at(samples, t + width) - _value_at(samples, t)) / width)
        t += width
    return out

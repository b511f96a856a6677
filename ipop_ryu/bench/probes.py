"""How each metric is measured in a running lab (one `Probes` per lab).

Hosts: the requester is the first host of site A, the same-site target the second host of A,
the remote owner the first host of the last site. Fresh remote targets ("cold") are extra
addresses added to the owner (systems.AliasPool): none of the systems has seen them, and the
owner's kernel answers for them exactly as for its own address.

Frames crossing between sites are counted on the underlay, in the underlay namespace, on each
site's port (`ul-<site>`, filter `udp and src host <site>`): every VXLAN packet and ICC datagram
a site sends is seen exactly once. VXLAN packets are decapsulated and their inner ARP frames
counted, and so are their inner neighbour solicitations (IPv6 labs); ICC datagrams (UDP 30000)
are counted without the hellos.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from ipop_ryu.core import nd
from ipop_ryu.lab import netns
from ipop_ryu.lab.lab import ICC_PORT
from ipop_ryu.lab.traffic import is_arp

from . import metrics as M
from .systems import AliasPool

AGENT = [sys.executable, "-m", "ipop_ryu.bench.agents"]
HELLO_MARK = b'"type":"hello"'


class AgentError(RuntimeError):
    pass


class Background:
    """A process started in a lab namespace, with the lab's marker (so that lab.down()
    kills it if we do not), stdout/stderr collected by finish()."""

    def __init__(self, lab, where, argv):
        ns = lab.resolve_ns(where)
        env = dict(os.environ, **{netns.MARKER_ENV: lab.suffix})
        self.argv = argv
        self.proc = subprocess.Popen(netns.exec_argv(ns, [str(a) for a in argv]),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env,
                                     start_new_session=True)

    def finish(self, timeout):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, err = self.proc.communicate()
            return self.proc.returncode, out, err + "\n(killed: timeout)"
        return self.proc.returncode, out, err

    def interrupt(self):
        """SIGINT (ping prints its statistics and exits)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(3)

    def json(self, timeout):
        rc, out, err = self.finish(timeout)
        if rc != 0:
            raise AgentError(f"{' '.join(map(str, self.argv[3:5]))}: exit {rc}: "
                             f"{err.strip()[-400:]}")
        return json.loads(out)


class Underlay:
    """Captures on every site's underlay port; events() -> [(unix time, kind)] with kind in
    arp_bcast, arp_unicast, ns_mcast, ns_unicast (inner frames of VXLAN), icc, icc_hello."""

    def __init__(self, lab):
        self.caps = [lab.capture(lab.underlay_ns, f"ul-{s.name}", f"udp and src host "
                                 f"{s.underlay_ip}") for s in lab.sites.values()]

    def __enter__(self):
        try:
            for cap in self.caps:
                cap.__enter__()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        for cap in self.caps:
            cap.stop()

    def events(self):
        out = []
        for cap in self.caps:
            for p in cap.packets():
                inner = p.get("inner")
                if inner is not None:
                    if is_arp(inner):
                        kind = "arp_bcast" if inner.get("dst") == "ff:ff:ff:ff:ff:ff" \
                            else "arp_unicast"
                        out.append((p["time"], kind))
                    elif inner.get("ethertype") == 0x86DD:
                        frame = nd.parse(inner["raw"])
                        if frame is not None and frame.type == nd.NS:
                            out.append((p["time"], "ns_mcast" if int(frame.eth_dst[:2], 16) & 1
                                        else "ns_unicast"))
                elif p.get("dport") == ICC_PORT:
                    out.append((p["time"], "icc_hello" if HELLO_MARK in p["raw"] else "icc"))
        return sorted(out)


def attribute(events, sends_ns, gap_s, kinds):
    """Count events of `kinds` per probe: probe i owns [send_i - 0.5 ms, send_i+1 - 0.5 ms),
    the last one [send - 0.5 ms, send + gap)."""
    starts = [t / 1e9 - 0.0005 for t in sends_ns]
    ends = starts[1:] + [starts[-1] + gap_s] if starts else []
    counts = [0] * len(starts)
    for t, kind in events:
        if kind not in kinds:
            continue
        for i, (a, b) in enumerate(zip(starts, ends)):
            if a <= t < b:
                counts[i] += 1
                break
    return counts


class Probes:
    def __init__(self, lab, system, log=print):
        self.lab, self.system, self.log = lab, system, log
        self.aliases = AliasPool()
        sites = list(lab.sites.values())
        self.site_a, self.site_far = sites[0], sites[-1]
        hosts_a = list(self.site_a.hosts.values())
        self.requester, self.local_target = hosts_a[0], hosts_a[1]
        self.owner = next(iter(self.site_far.hosts.values()))

    # --- helpers --------------------------------------------------------------------------
    def agent(self, where, *args, timeout=120):
        proc = self.lab.exec(where, AGENT + [str(a) for a in args], check=False,
                             timeout=timeout)
        if proc.returncode != 0:
            raise AgentError(f"agent {args[0]} in {where}: {proc.stderr.strip()[-400:]}")
        return json.loads(proc.stdout)

    def bg(self, where, argv):
        return Background(self.lab, where, argv)

    def probe(self, host, targets, gap_ms, timeout_ms=1000):
        return self.agent(host.name, "arping", "--ip", host.ip, "--targets", ",".join(targets),
                          "--gap-ms", gap_ms, "--timeout-ms", timeout_ms,
                          timeout=len(targets) * (gap_ms + timeout_ms) / 1000 + 30)

    def ndprobe(self, host, targets, gap_ms, timeout_ms=1000):
        return self.agent(host.name, "ndping", "--ip", host.ip6, "--targets", ",".join(targets),
                          "--gap-ms", gap_ms, "--timeout-ms", timeout_ms,
                          timeout=len(targets) * (gap_ms + timeout_ms) / 1000 + 30)

    def wait_dad(self, timeout=10.0):
        """Until no container address is tentative: the link-local addresses' DAD probes (NS,
        flooded across sites by NORMAL) are over before ND is measured."""
        def done():
            return all(not h.exec(["ip", "-6", "addr", "show", "dev", "eth0", "tentative"],
                                  check=False).stdout.strip() for h in self.lab.hosts.values())
        netns.wait_until(done, timeout, "DAD of the containers' addresses", interval=0.1)

    def flush(self, *hosts):
        for host in hosts:
            host.exec(["ip", "neigh", "flush", "dev", "eth0"], check=False)

    def sysctl(self, host, family=4, **values):
        args = [f"net.ipv{family}.neigh.eth0.{k}={v}" for k, v in values.items()]
        host.exec(["sysctl", "-q", "-w", *args])

    def rest_stats(self, site):
        code = ("import sys,urllib.request;sys.stdout.write(urllib.request.urlopen("
                f"'http://{site.underlay_ip}:8080/ipop/v1/stats',timeout=10).read().decode())")
        return json.loads(site.exec([sys.executable, "-c", code], timeout=20).stdout)

    # --- ARP latency and frames per resolution ----------------------------------------------
    def _resolutions(self, probe, local_target, cold_targets, gap_ms, cold_gap_ms):
        """Same-site, cold remote and warm remote runs of `probe` (one agent call each) with
        the underlay's events: {"local"|"cold"|"warm": (runs, gap in s)}, events."""
        reps = len(cold_targets)
        self.flush(self.requester, self.local_target, self.owner)
        with Underlay(self.lab) as ul:
            local = probe(self.requester, [local_target] * reps, gap_ms)
            cold = probe(self.requester, cold_targets, cold_gap_ms)
            time.sleep(0.3)      # flows from the last cold resolution are in
            warm = probe(self.requester, cold_targets, gap_ms)
            time.sleep(0.3)
        return {"local": (local, gap_ms / 1000), "cold": (cold, cold_gap_ms / 1000),
                "warm": (warm, gap_ms / 1000)}, ul.events()

    def _rtts(self, metric, runs):
        bad_mac = sum(1 for r in runs if r["mac"] and r["mac"] not in
                      (self.local_target.mac, self.owner.mac))
        extra = {"bad_mac": bad_mac} if bad_mac else {}
        return M.cell(metric, [r["rtt_ms"] for r in runs], **extra)

    def arp(self, reps, gap_ms=40, cold_gap_ms=150):
        """Same-site, cold remote and warm remote resolution latencies (raw-socket ARP from
        the requester; RTT from just before send() to the kernel's receive timestamp of the
        reply), with the frames crossing between sites attributed to each resolution."""
        phases, events = self._resolutions(self.probe, self.local_target.ip,
                                           self.aliases.take(self.owner, reps), gap_ms,
                                           cold_gap_ms)
        out = {}
        for key, (runs, gap) in phases.items():
            sends = [r["t_send"] for r in runs]
            arp = attribute(events, sends, gap, ("arp_bcast", "arp_unicast"))
            bcast = attribute(events, sends, gap, ("arp_bcast",))
            icc = attribute(events, sends, gap, ("icc",))
            split = {"mean": _mean(arp), "broadcast_mean": _mean(bcast),
                     "unicast_mean": _mean([a - b for a, b in zip(arp, bcast)])}
            if key == "local":
                out["arp_local_ms"] = self._rtts("arp_local_ms", runs)
                out["xsite_arp_per_local_resolution"] = M.cell(
                    "xsite_arp_per_local_resolution", arp, **split)
                continue
            out[f"arp_{key}_remote_ms"] = self._rtts(f"arp_{key}_remote_ms", runs)
            out[f"xsite_arp_per_{key}_resolution"] = M.cell(
                f"xsite_arp_per_{key}_resolution", arp, **split)
            out[f"xsite_icc_per_{key}_resolution"] = M.cell(
                f"xsite_icc_per_{key}_resolution", icc, mean=_mean(icc))
        return out

    def nd(self, reps, gap_ms=40, cold_gap_ms=150):
        """The IPv6 counterpart of arp() (a lab with IPv6): multicast neighbour solicitations
        from a raw socket of the requester (agents.py ndping), cold targets fresh addresses
        of the owner (fd00:3::1:N, added without DAD), the neighbour solicitations crossing
        between sites attributed to each resolution (the same-site ones in `extra`)."""
        self.wait_dad()
        phases, events = self._resolutions(self.ndprobe, self.local_target.ip6,
                                           self.aliases.take6(self.owner, reps), gap_ms,
                                           cold_gap_ms)
        out = {}
        for key, (runs, gap) in phases.items():
            sends = [r["t_send"] for r in runs]
            ns = attribute(events, sends, gap, ("ns_mcast", "ns_unicast"))
            mcast = attribute(events, sends, gap, ("ns_mcast",))
            icc = attribute(events, sends, gap, ("icc",))
            split = {"mean": _mean(ns), "multicast_mean": _mean(mcast),
                     "unicast_mean": _mean([a - b for a, b in zip(ns, mcast)]),
                     "icc_mean": _mean(icc)}
            if key == "local":
                out["nd_local_ms"] = self._rtts("nd_local_ms", runs)
                out["nd_local_ms"]["extra"]["xsite_ns"] = split
                continue
            out[f"nd_{key}_remote_ms"] = self._rtts(f"nd_{key}_remote_ms", runs)
            out[f"xsite_ns_per_{key}_resolution"] = M.cell(
                f"xsite_ns_per_{key}_resolution", ns, **split)
        return out

    # --- ping ---------------------------------------------------------------------------
    def ping_rtt(self, reps, interval=0.05):
        target = self.owner.ip
        proc = self.requester.exec(["ping", "-n", "-c", reps + 1, "-i", interval, "-w",
                                    int(reps * interval + 10), target], check=False,
                                   timeout=reps * interval + 20)
        rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", proc.stdout)]
        # the first one may include an ARP resolution
        return {"ping_rtt_ms": M.cell("ping_rtt_ms", rtts[1:], lost=reps + 1 - len(rtts))}

    def first_ping(self, reps, deadline=30.0):
        """Stop every site's ovs-vswitchd and controller (ovsdb-server keeps the
        configuration), flush the hosts' ARP caches, start all sites at once (one thread per
        site: controller, then vswitchd) and time the first ICMP echo answered across sites.
        The requester sends one every 20 ms and retransmits ARP every 50 ms
        (retrans_time_ms), so the measurement's resolution is about 50 ms."""
        lab = self.lab
        samples = []
        self.sysctl(self.requester, retrans_time_ms=50)
        try:
            for _ in range(reps):
                for site in lab.sites.values():
                    lab.stop_controller(site)
                    lab.stop_ovs(site)
                self.flush(*lab.hosts.values())
                ping = self.bg(self.requester.name, AGENT + [
                    "firstping", "--target", self.owner.ip, "--interval", "0.02",
                    "--deadline", deadline])
                time.sleep(0.3)     # the agent is up and failing to resolve
                t0 = time.time()
                errors = []

                def start(site):
                    try:
                        lab.start_controller(site, wait=False)
                        lab.start_ovs(site, wait=False)
                    except Exception as exc:  # reported below
                        errors.append(f"{site.name}: {exc}")
                threads = [threading.Thread(target=start, args=(s,), daemon=True)
                           for s in lab.sites.values()]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(deadline)
                result = ping.json(deadline + 10)
                if errors:
                    raise RuntimeError("restart failed: " + "; ".join(errors))
                samples.append(result["t_reply"] - t0 if result["t_reply"] else None)
                lab.wait_connected()
        finally:
            self.sysctl(self.requester, retrans_time_ms=1000)
        return {"first_ping_s": M.cell("first_ping_s", samples)}

    # --- steady state -----------------------------------------------------------------------
    def steady(self, window, warmup, sub, family=4):
        """Every host pings every other host once a second; every host's ARP entries go stale
        after 1-3 s (base_reachable_time_ms=2000, delay_first_probe_time=1, gc_stale_time=4)
        and are revalidated by broadcast requests (ucast_solicit=0, mcast_resolicit=3), i.e.
        each host keeps re-resolving every peer. After `warmup` s, frames crossing between
        sites are counted for `window` s, in `sub`-second slices scaled to a minute.
        family=6 (a lab with IPv6): the same over IPv6 (ping -6 to the global addresses, the
        same net.ipv6.neigh settings: revalidated by multicast NS); NS frames counted."""
        lab = self.lab
        hosts = list(lab.hosts.values())
        for host in hosts:
            self.sysctl(host, family, base_reachable_time_ms=2000, delay_first_probe_time=1,
                        gc_stale_time=4, ucast_solicit=0, mcast_resolicit=3)
        total = warmup + window + 3
        pings = [self.bg(h.name, ["ping", f"-{family}", "-n", "-q", "-i", "1", "-w",
                                  int(total) + 1, o.ip6 if family == 6 else o.ip])
                 for h in hosts for o in hosts if o is not h]
        try:
            time.sleep(warmup)
            with Underlay(lab) as ul:
                t0 = time.time()
                time.sleep(window)
                t1 = time.time()
            events = ul.events()
        finally:
            for p in pings:
                p.interrupt()
            outputs = [p.finish(10) for p in pings]
        sent = received = 0
        for _, out, _ in outputs:
            m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
            if m:
                sent += int(m.group(1))
                received += int(m.group(2))
        slices = max(1, int(round((t1 - t0) / sub)))
        width = (t1 - t0) / slices
        series = {k: [0] * slices for k in ("arp_bcast", "arp_unicast", "ns_mcast", "ns_unicast",
                                            "icc", "icc_hello")}
        for t, kind in events:
            i = int((t - t0) / width)
            if 0 <= i < slices:
                series[kind][i] += 1
        scale = 60.0 / width
        per_min = {k: [v * scale for v in vs] for k, vs in series.items()}
        arp = [b + u for b, u in zip(per_min["arp_bcast"], per_min["arp_unicast"])]
        common = {"window_s": round(t1 - t0, 1), "slice_s": round(width, 2),
                  "ping_loss": round(1 - received / sent, 4) if sent else None}
        if family == 6:
            ns = [m + u for m, u in zip(per_min["ns_mcast"], per_min["ns_unicast"])]
            return {"xsite_ns_per_min": M.cell(
                "xsite_ns_per_min", ns, multicast_per_min=_mean(per_min["ns_mcast"]),
                unicast_per_min=_mean(per_min["ns_unicast"]),
                icc_per_min=_mean(per_min["icc"]), **common)}
        return {
            "xsite_arp_per_min": M.cell(
                "xsite_arp_per_min", arp,
                broadcast_per_min=_mean(per_min["arp_bcast"]),
                unicast_per_min=_mean(per_min["arp_unicast"]), **common),
            "xsite_icc_per_min": M.cell("xsite_icc_per_min", per_min["icc"],
                                        hellos_per_min=_mean(per_min["icc_hello"]), **common),
        }

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
            cpu0, wall0 = {k: _cpu_seconds(p) for k, p in cpu_pids.items()}, time.monotonic()
            gen = start_generator(rate, step)
            g = gen.json(step + 60)
            samples = sampler.json(step + 30)
            cpu1, wall1 = {k: _cpu_seconds(p) for k, p in cpu_pids.items()}, time.monotonic()
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
                "iccgen", "--key-file", lab.key_path, "--node", b.name,
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

    # --- loops --------------------------------------------------------------------------
    def loop_check(self, listen=1.5, threshold=50):
        """One broadcast ARP request; True (with the frame count) when more than `threshold`
        ARP frames cross between sites within `listen` seconds (a loop-free switch sends at
        most one per site pair and direction)."""
        with Underlay(self.lab) as ul:
            t0 = time.monotonic()
            try:
                self.probe(self.requester, [self.owner.ip], 100, timeout_ms=500)
            except AgentError:
                pass
            time.sleep(max(0.0, listen - (time.monotonic() - t0)))
        frames = sum(1 for _, kind in ul.events() if kind.startswith("arp"))
        return frames > threshold, frames


def _cpu_seconds(pid):
    """utime + stime of a process, in seconds (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _mean(values):
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 4) if values else None


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

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
import re
import sys
import threading
import time

from ipop_ryu.lab import netns

from . import metrics as M
from .load import LoadProbes
from .procs import AGENT, AgentError, Background, Underlay, attribute
from .systems import AliasPool


class Probes(LoadProbes):
    """The bench's measurements on one running lab: ARP latency and the frames per
    resolution, ping RTT, first ping after a cold start, steady-state chatter, loops (here);
    capacity and throughput (bench/load.py)."""
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


def _mean(values):
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 4) if values else None

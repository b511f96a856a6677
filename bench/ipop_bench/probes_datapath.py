"""Datapath-first measurements (issue 10): what still works without the controller, how fast
an announced host is first resolved elsewhere, how soon a restarted controller has its bridge
back. Uses the hosts and helpers of probes.Probes (requester and same-site target on site A,
remote owner on the last site)."""
import os
import signal
import time

from ipop_ryu.core import pipeline
from ipop_ryu.lab import netns

from . import metrics as M

RECONNECT_AWAY_S = 4.0      # how long the controller is away (the scenario)
ANNOUNCED_MAX = 10          # fresh aliases for announced hosts (the cold ARP probe takes reps)


def headless_local(p, reps, gap_ms=40):
    """Stop (SIGSTOP) site A's controller and resolve the same-site target `reps` times:
    the percentage answered. The controller is continued afterwards, in any case."""
    if p.system == "normal":
        return {"arp_local_headless_pct": M.na("arp_local_headless_pct", "no controller")}
    pid = p.site_a.controller_pid
    p.flush(p.requester, p.local_target)
    os.kill(pid, signal.SIGSTOP)
    try:
        runs = p.probe(p.requester, [p.local_target.ip] * reps, gap_ms, timeout_ms=500)
    finally:
        os.kill(pid, signal.SIGCONT)
    answered = [r for r in runs if r["rtt_ms"] is not None]
    pct = 100.0 * len(answered) / len(runs) if runs else None
    return {"arp_local_headless_pct": M.cell(
        "arp_local_headless_pct", [pct], answered=len(answered), asked=len(runs),
        latency_ms=M.percentile([r["rtt_ms"] for r in answered], 50) if answered else None)}


def announced_remote(p, reps, deadline=5.0):
    """First resolution of remote hosts that have spoken at their own site but that nobody
    asked for: each fresh alias of the owner sends one ARP request (as a host coming up
    does), its site learns and announces it, and once site A holds a responder for it the
    requester resolves it once."""
    if p.system != "ipop":
        return {"arp_announced_remote_ms": M.na("arp_announced_remote_ms",
                                                "no announcements")}
    aliases = p.aliases.take(p.owner, min(reps, ANNOUNCED_MAX))
    waited, samples = [], []
    speaker = next(h for h in p.site_far.hosts.values() if h is not p.owner) \
        if len(p.site_far.hosts) > 1 else p.owner
    for alias in aliases:
        p.agent(p.owner.name, "arping", "--ip", alias, "--targets", speaker.ip,
                "--gap-ms", 1, "--timeout-ms", 200)
        t0 = time.monotonic()
        netns.wait_until(lambda a=alias: _responder_in(p.site_a, a), deadline,
                         f"site A's responder for announced {alias}", interval=0.02)
        waited.append(time.monotonic() - t0)
        (run,) = p.probe(p.requester, [alias], 1)
        samples.append(run["rtt_ms"])
    return {"arp_announced_remote_ms": M.cell(
        "arp_announced_remote_ms", samples,
        announce_to_responder_s=M.percentile(waited, 50) if waited else None)}


def _responder_in(site, ip):
    flows = site.ofctl("dump-flows", site.bridge,
                       f"cookie={pipeline.cookie('proxy_arp', ip):#x}/-1")
    return "actions=" in flows


def bridge_reconnect(p, reps):
    """Stop site A's controller, wait RECONNECT_AWAY_S, start it again: seconds from the
    moment it listens on its OpenFlow port to the moment its bridge is connected (0 when
    the controller dialed the bridge before its own listener was up); from its start too."""
    if p.system == "normal":
        return {"bridge_reconnect_s": M.na("bridge_reconnect_s", "no controller")}
    lab, site = p.lab, p.site_a
    samples, from_start = [], []
    for _ in range(reps):
        lab.stop_controller(site)
        time.sleep(RECONNECT_AWAY_S)        # the scenario itself: away this long
        mark = site.ovs.log_size(site.controller_target)
        started = time.monotonic()
        lab.start_controller(site, wait=False)
        seen = {}

        def both():
            now = time.monotonic()
            if "listening" not in seen and lab._controller_listening(site):
                seen["listening"] = now
            if "connected" not in seen and lab.bridge_connected(site, mark):
                seen["connected"] = now
            return len(seen) == 2
        netns.wait_until(both, 30, f"controller of {site.name} listening and its bridge "
                                   "connected", interval=0.005)
        samples.append(max(0.0, seen["connected"] - seen["listening"]))
        from_start.append(seen["connected"] - started)
        lab.wait_connected([site])          # pipeline back before the next measurement
    return {"bridge_reconnect_s": M.cell("bridge_reconnect_s", samples,
                                         away_s=RECONNECT_AWAY_S,
                                         controller_target=site.controller_target,
                                         from_start_s=M.percentile(from_start, 50))}


def icc_per_host(p, steady_cells, arp_timeout):
    """ICC datagrams per host and minute in the steady state (from the steady probe), and
    the bound announcements must stay under: a refresh per host per arp_timeout/3 to each
    peer (a batch carries up to 64 hosts, so usually far less)."""
    if p.system != "ipop":
        return {"icc_per_host_min": M.na("icc_per_host_min", "no ICC")}
    steady = steady_cells.get("xsite_icc_per_min")
    if not steady or steady["status"] != M.OK:
        return {"icc_per_host_min": M.failed("icc_per_host_min", "no steady-state figure")}
    hosts = len(p.lab.hosts)
    peers = len(p.lab.sites) - 1
    bound = peers * 60.0 / (arp_timeout / 3.0)
    return {"icc_per_host_min": M.cell(
        "icc_per_host_min", [v / hosts for v in steady["samples"]], hosts=hosts,
        bound_per_host_min=round(bound, 3), arp_timeout=arp_timeout)}

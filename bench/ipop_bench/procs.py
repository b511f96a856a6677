"""Processes and captures in a running lab, for the probes: agents started in a namespace
(`Background`, killed by lab.down() if not by us), the underlay captures that count what
crosses between sites (`Underlay`), the attribution of those frames to probes, and a
process's CPU time.
"""
import json
import os
import signal
import subprocess
import sys

from ipop_ryu.core import nd
from ipop_ryu.lab import netns
from ipop_ryu.lab.lab import ICC_PORT
from ipop_ryu.lab.traffic import is_arp

AGENT = [sys.executable, "-m", "ipop_bench.agents"]
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


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

"""Traffic helpers for tests: ping, arping (Debian `arping`, Thomas Habets'), tcpdump captures."""
import os
import re
import signal
import socket
import struct
import subprocess
from dataclasses import dataclass, field

from . import netns


@dataclass
class PingResult:
    ok: bool  # every probe answered (ping's exit status with -c and -w); with -w, ping goes
              # on sending until `count` replies, so a slow first reply means more than count
    sent: int
    received: int  # unique replies
    dups: int
    redirects: int
    rtts: list = field(default_factory=list)
    output: str = ""


def ping(host, ip, count=3, interval=0.2, timeout=10):
    proc = host.exec(["ping", "-n", "-c", str(count), "-i", str(interval), "-w", str(timeout),
                      ip], check=False, timeout=timeout + 5)
    out = proc.stdout + proc.stderr
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    sent, received = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    return PingResult(ok=proc.returncode == 0 and received >= count, sent=sent,
                      received=received, dups=out.count("DUP!"),
                      redirects=len(re.findall(r"^From .*Redirect", out, re.M)),
                      rtts=[float(x) for x in re.findall(r"time=([\d.]+) ms", out)], output=out)


@dataclass
class ArpingResult:
    ok: bool
    mac: str  # MAC of the first reply, lower case, or None
    rtts: list = field(default_factory=list)
    output: str = ""


def arping(host, ip, count=1, timeout=5, interval=1.0):
    """Habets arping `-c N -C N -w T -W I -i eth0 IP` (-C: exit as soon as N replies came,
    not one interval later); ok when at least one reply came back; rtts in ms."""
    proc = host.exec(["arping", "-c", str(count), "-C", str(count), "-w", str(timeout),
                      "-W", str(interval), "-i", "eth0", ip], check=False, timeout=timeout + 5)
    out = proc.stdout + proc.stderr
    # "60 bytes from 02:00:0a:00:03:07 (10.0.3.7): index=0 time=1.041 msec"
    replies = re.findall(r"bytes from ([0-9a-f:]{17}) \(([\d.]+)\):.*time=([\d.]+) (\w*sec)",
                         out, re.I)
    scale = {"usec": 1e-3, "msec": 1.0, "sec": 1e3}
    return ArpingResult(ok=bool(replies), mac=replies[0][0].lower() if replies else None,
                        rtts=[float(t) * scale.get(u, 1.0) for _, _, t, u in replies], output=out)


def flush_arp(host):
    host.exec(["ip", "neigh", "flush", "dev", "eth0"])


def interrupt(proc):
    """SIGINT a tool we started (it writes its summary, or flushes its file), then reap it;
    SIGTERM if it does not end."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            netns.terminate(proc)


class PingLog:
    """`ping -D` at a steady rate in a namespace for the duration of a with block: when each
    echo reply came, by ping's own clock (wall time), to measure an outage by the echoes
    themselves rather than by the time around the command that caused it."""
    REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)", re.M)

    def __init__(self, ns, ip, path, env, interval=0.05):
        self.ns, self.ip, self.path, self.env, self.interval = ns, ip, path, env, interval
        self.proc = None

    def __enter__(self):
        # line-buffered: a reply is in the log when it comes, not when the buffer fills
        argv = ["stdbuf", "-oL", "ping", "-D", "-n", "-i", str(self.interval), self.ip]
        self.proc = netns.spawn(self.ns, argv, self.path, self.env, pidfile=self.path + ".pid")
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        interrupt(self.proc)

    def replies(self):
        """[(wall time, icmp_seq)] of every echo reply so far, in order."""
        try:
            with open(self.path, errors="replace") as f:
                text = f.read()
        except OSError:
            return []
        return [(float(t), int(seq)) for t, seq in self.REPLY.findall(text)]

    def replied_after(self, when):
        return any(t > when for t, _ in self.replies())

    def longest_gap(self, since=0.0):
        """The longest time between two consecutive replies, the later one after since."""
        times = [t for t, _ in self.replies()]
        return max((b - a for a, b in zip(times, times[1:]) if b > since), default=0.0)


# --- captures ---------------------------------------------------------------------------

class Capture:
    """tcpdump in a namespace for the duration of a with block; packets() parses the pcap.
    OPTIONS: more tcpdump options (a subclass's: a short snapshot and a bigger buffer)."""
    OPTIONS = ()

    def __init__(self, ns, iface, bpf_filter, path, env, max_packets=None, timeout=10.0):
        self.ns, self.iface, self.bpf_filter, self.path = ns, iface, bpf_filter, path
        self.env, self.max_packets, self.timeout = env, max_packets, timeout
        self.proc = None
        self._packets = None

    def __enter__(self):
        # --immediate-mode: without it packets still in a TPACKET_V3 block are lost on stop.
        argv = ["tcpdump", "-n", "-i", self.iface, "-U", "--immediate-mode", "-w", self.path,
                *self.OPTIONS]
        if self.max_packets:
            argv += ["-c", str(self.max_packets)]
        if self.bpf_filter:
            argv.append(self.bpf_filter)
        self.proc = netns.spawn(self.ns, argv, self.path + ".err", self.env,
                                pidfile=self.path + ".pid")

        def listening():
            if "listening on" in self._stderr():
                return True
            if self.proc.poll() is not None:
                raise RuntimeError(f"tcpdump exited: {self._stderr()}")
            return False
        try:
            netns.wait_until(listening, self.timeout, f"tcpdump on {self.ns}/{self.iface}")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def wait(self, timeout):
        """Wait for tcpdump to exit by itself (max_packets reached); True if it did."""
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self):
        interrupt(self.proc)      # tcpdump flushes the file on SIGINT

    def _stderr(self):
        try:
            with open(self.path + ".err", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def packets(self):
        if self._packets is None:
            self._packets = read_pcap(self.path) if os.path.exists(self.path) else []
        return self._packets

    def dropped(self):
        """Packets the kernel dropped before tcpdump read them (its summary, once stopped)."""
        found = re.search(r"(\d+) packets? dropped by kernel", self._stderr())
        return int(found.group(1)) if found else None

    def count(self, predicate=lambda p: True):
        return sum(1 for p in self.packets() if predicate(p))


def _mac(b):
    return ":".join(f"{x:02x}" for x in b)


def read_pcap(path):
    """Frames of an Ethernet pcap file as dicts (see parse_frame)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<",
              b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}[magic]
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise ValueError(f"{path}: only Ethernet captures are supported (linktype {linktype})")
    frames, off = [], 24
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = parse_frame(data[off + 16:off + 16 + caplen])
        frame["time"] = sec + frac / (1e9 if nano else 1e6)
        frames.append(frame)
        off += 16 + caplen
    return frames


def parse_frame(raw):
    """Ethernet frame -> dict: src, dst, ethertype, vlan; arp: op/sha/spa/tha/tpa;
    ipv4: ip_src/ip_dst/proto/ttl; icmp: icmp_type/icmp_code; udp/tcp: sport/dport;
    VXLAN (udp 4789): vni and `inner` (the decapsulated frame, parsed the same way)."""
    p = {"len": len(raw), "raw": raw}
    if len(raw) < 14:
        return p
    p.update(dst=_mac(raw[0:6]), src=_mac(raw[6:12]))
    ethertype, off = struct.unpack("!H", raw[12:14])[0], 14
    if ethertype == 0x8100 and len(raw) >= 18:
        p["vlan"] = struct.unpack("!H", raw[14:16])[0] & 0xFFF
        ethertype, off = struct.unpack("!H", raw[16:18])[0], 18
    p["ethertype"] = ethertype
    body = raw[off:]
    if ethertype == 0x0806 and len(body) >= 28:
        p.update(op=struct.unpack("!H", body[6:8])[0], sha=_mac(body[8:14]),
                 spa=socket.inet_ntoa(body[14:18]), tha=_mac(body[18:24]),
                 tpa=socket.inet_ntoa(body[24:28]))
    elif ethertype == 0x0800 and len(body) >= 20:
        ihl = (body[0] & 0x0F) * 4
        p.update(ip_src=socket.inet_ntoa(body[12:16]), ip_dst=socket.inet_ntoa(body[16:20]),
                 proto=body[9], ttl=body[8])
        l4 = body[ihl:]
        if p["proto"] == 1 and len(l4) >= 2:
            p.update(icmp_type=l4[0], icmp_code=l4[1])
        elif p["proto"] in (6, 17) and len(l4) >= 4:
            p["sport"], p["dport"] = struct.unpack("!HH", l4[:4])
            if p["proto"] == 17 and p["dport"] == 4789 and len(l4) >= 16:
                p["vni"] = int.from_bytes(l4[12:15], "big")
                p["inner"] = parse_frame(l4[16:])
    return p


def is_icmp(p, icmp_type=None):
    """Predicate helper: ICMP (optionally of a type: 8 echo request, 0 reply)."""
    return p.get("proto") == 1 and (icmp_type is None or p.get("icmp_type") == icmp_type)


def is_arp(p, op=None):
    return p.get("ethertype") == 0x0806 and (op is None or p.get("op") == op)

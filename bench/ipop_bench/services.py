"""The site services section (issue 20): real LXC busybox containers on a 3-site services lab
(`LabSpec(services=True)`: anycast gateway, dnsmasq per site, NAT to the upstream at
198.51.100.1) against one plain lxc-net-style host built beside it in a namespace of the same
lab (a Linux bridge lxcbr0 = 10.0.3.1/24, dnsmasq with lxc-net's arguments, nftables
masquerade to its own uplink on the same upstream wire), measured in the same run.

Rounds alternate the two systems: a container started at site A (plain: on lxcbr0) pings a
peer container (at site B; plain: on the same bridge) until the first echo comes back, then
is killed. Times come from captures (`tcpdump -i any` in A's and the plain host's namespace,
which sees a veth from the moment LXC makes it) and from OVS (a responder's `duration`),
all on one wall clock; the kill is timed by polling every site's flows. Then a namespace host
moved between B and C under a 20/s ping from A, and iperf3 from a container of each system
to the upstream through its NAT. How each figure is taken: bench/README.md, section Site
services.
"""
import ipaddress
import json
import os
import re
import struct
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from ipop_ryu.core import dhcp, pipeline
from ipop_ryu.core.config import GATEWAY_MAC, link_local_of
from ipop_ryu.lab import Lab, lxc, netns
from ipop_ryu.lab.lab import Host
from ipop_ryu.lab.services import GATEWAY_IP
from ipop_ryu.lab.topology import UPSTREAM_IP, host_mac, mesh, services_allowed_ips
from ipop_ryu.lab.traffic import Capture, parse_frame

from . import metrics as M
from .procs import Background

PLAIN_BRIDGE = "lxcbr0"
PLAIN_UPLINK_IP = "198.51.100.200"     # the plain host's address towards the upstream
PLAIN_SEGMENT = "10.0.3.0/24"
MOVER_IP, PINGER = "10.0.3.30", "h10"  # mesh(3, 1): h10 at A, h30 at B, h50 at C
ANY_FILTER = "arp or icmp or udp port 67 or udp port 68"
POLL_INTERVAL = 0.01                   # between polls of the flows (the kill's resolution)
SYSTEMS = ("ipop", "plain")
LABELS = {"ipop": "ipop-ryu site (OVS + anycast gateway)", "plain": "plain lxc-net host"}
TARGETS = {"first_ping_ratio": 1.2, "overlay_frames": 0, "lease_to_responders_s": 1.0,
           "kill_withdrawn_s": 1.0, "move_gap_s": 1.0, "egress_ratio": 0.95}


@dataclass
class ServicesConfig:
    rounds: int = 10            # container starts per system (site A's pool holds 18)
    moves: int = 20
    iperf_reps: int = 5         # per system, alternating
    iperf_seconds: float = 3.0
    out: str = ""
    quick: bool = False

    @classmethod
    def smoke(cls, **kw):
        return cls(**{**dict(rounds=2, moves=2, iperf_reps=1, iperf_seconds=1.0, quick=True),
                      **kw})


# --- the plain lxc-net-style host -------------------------------------------------------------

@dataclass
class PlainHost:
    """What lxc-net makes of a host, in namespace ipr-<lab>-plain (lab.down() removes it and
    ends its dnsmasq): the stand-in for a site in lxc.Container (ns, bridge, exec)."""
    lab: Lab
    name: str = "plain"
    bridge: str = PLAIN_BRIDGE
    ns: str = ""
    dnsmasq: object = None

    def __post_init__(self):
        self.ns = f"ipr-{self.lab.suffix}-plain"
        self.rundir = os.path.join(self.lab.workdir, "plain")

    def exec(self, argv, **kw):
        return self.lab.exec(self.ns, argv, **kw)

    def up(self):
        lab, ns = self.lab, self.ns
        os.makedirs(self.rundir)
        netns.create(ns)
        netns.sysctl(ns, net__ipv6__conf__all__disable_ipv6=1,       # as the lab's sites
                     net__ipv6__conf__default__disable_ipv6=1, net__ipv4__ip_forward=1)
        netns.configure(ns, "lo")
        netns.add_bridge(ns, self.bridge)
        netns.configure(ns, self.bridge, address=GATEWAY_IP)
        netns.add_veth(ns, "ul0", lab.underlay_ns, "ul-plain")
        netns.configure(lab.underlay_ns, "ul-plain", master="br-ul")
        netns.configure(ns, "ul0", address=PLAIN_UPLINK_IP)
        self.exec(["ip", "route", "add", "default", "via", UPSTREAM_IP])
        # lxc-net's iptables MASQUERADE rule, in nftables
        self.exec(["nft", "-f", "-"], input=(
            "table ip lxcnet {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority "
            f"srcnat; policy accept;\n\t\tip saddr {PLAIN_SEGMENT} ip daddr != {PLAIN_SEGMENT} "
            "masquerade\n\t}\n}\n"))
        self.dnsmasq = netns.spawn(ns, self.dnsmasq_argv(), os.path.join(self.rundir,
                                   "dnsmasq.log"), lab._env,
                                   pidfile=os.path.join(self.rundir, "dnsmasq.pid"))
        netns.wait_until(lambda: self._serving(), lab.timeout, "the plain host's dnsmasq")
        return self

    def dnsmasq_argv(self):
        """lxc-net's dnsmasq line with its defaults (ping check on, no domain), kept in the
        foreground (the bench owns the process) and as root (files in the lab's directory)."""
        return ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "-u", "root",
                "--strict-order", "--bind-interfaces", "--pid-file",
                "--listen-address", GATEWAY_IP, "--dhcp-range", "10.0.3.2,10.0.3.254",
                "--dhcp-lease-max=253", "--dhcp-no-override", "--except-interface=lo",
                f"--interface={self.bridge}",
                f"--dhcp-leasefile={os.path.join(self.rundir, 'dnsmasq.leases')}",
                "--dhcp-authoritative"]

    def _serving(self):
        if self.dnsmasq.poll() is not None:
            with open(os.path.join(self.rundir, "dnsmasq.log"), errors="replace") as f:
                raise RuntimeError(f"the plain host's dnsmasq exited: {f.read().strip()}")
        return netns.udp_bound(self.dnsmasq.pid, dhcp.SERVER_PORT)

    def down(self):
        netns.terminate(self.dnsmasq)


# --- captures on a namespace's every interface ------------------------------------------------

def read_any_pcap(path):
    """Frames of a `tcpdump -i any` capture (Linux cooked, SLL or SLL2) as parse_frame dicts
    with `time`, `ifindex` (SLL2; None for SLL) and `outgoing`; `eth` is the frame with an
    Ethernet header rebuilt (the sender's MAC from the cooked header) for dhcp.parse."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = data[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype not in (113, 276):
        raise ValueError(f"{path}: not a Linux cooked capture (linktype {linktype})")
    frames, off = [], 24
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        raw = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        if len(raw) < caplen:
            break                              # the record tcpdump was writing
        if linktype == 276:                    # SLL2: protocol, reserved, ifindex, hatype, ...
            proto, ifindex, _, pkttype, halen = struct.unpack("!HxxIHBB", raw[:12])
            addr, payload = raw[12:12 + halen], raw[20:]
        else:                                  # SLL: pkttype, hatype, halen, addr, protocol
            pkttype, _, halen = struct.unpack("!HHH", raw[:6])
            addr, proto, payload, ifindex = raw[6:6 + halen], \
                struct.unpack("!H", raw[14:16])[0], raw[16:], None
        eth = b"\0" * 6 + addr[:6].ljust(6, b"\0") + struct.pack("!H", proto) + payload
        frame = parse_frame(eth)
        frame.update(time=sec + frac / (1e9 if nano else 1e6), ifindex=ifindex,
                     outgoing=pkttype == 4, eth=eth)
        frames.append(frame)
    return frames


class ShortCapture(Capture):
    """A short snapshot and an 8 MB buffer: with the default 256 KB snapshot, tcpdump's
    immediate-mode ring holds a handful of frames and a burst while it waits for a CPU is
    dropped (1 of 83 frames in a smoke run)."""
    OPTIONS = ("-s", "600", "-B", "8192")


class AnyCapture(ShortCapture):
    def packets(self):
        if self._packets is None:
            self._packets = read_any_pcap(self.path) if os.path.exists(self.path) else []
        return self._packets


def any_capture(lab, ns, name):
    path = os.path.join(lab.workdir, "captures", f"any-{name}.pcap")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cap = AnyCapture(ns, "any", ANY_FILTER, path, lab._env_for(ns))
    lab._captures.append(cap)          # stopped by lab.down() if not by us
    return cap


# --- what crosses the overlay -----------------------------------------------------------------

GATEWAY_LL = str(link_local_of(GATEWAY_MAC))


def overlay_kind(inner):
    """The class of an inner (VXLAN) frame the issue wants never on the overlay, or None:
    dhcp, gateway_arp, gateway_nd, rs_ra, gateway_mac (any other frame to or from it)."""
    raw = inner.get("raw", b"")
    if inner.get("sport") in (67, 68) or inner.get("dport") in (67, 68):
        return "dhcp"
    if inner.get("ethertype") == 0x0806 and GATEWAY_IP in (inner.get("spa"), inner.get("tpa")):
        return "gateway_arp"
    if inner.get("ethertype") == 0x86DD and len(raw) >= 14 + 41 and raw[14 + 6] == 58:
        icmp6 = raw[14 + 40]
        if icmp6 in (133, 134):
            return "rs_ra"
        if icmp6 in (135, 136) and len(raw) >= 14 + 40 + 24:
            target = str(ipaddress.IPv6Address(raw[14 + 48:14 + 64]))
            if target == GATEWAY_LL or GATEWAY_MAC in (inner.get("src"), inner.get("dst")):
                return "gateway_nd"
    if GATEWAY_MAC in (inner.get("src"), inner.get("dst")):
        return "gateway_mac"
    return None


def overlay_counts(caps):
    """{kind: frames} over the underlay captures (each frame once: `src host` of its site),
    with `other` for every other inner frame."""
    counts = {"dhcp": 0, "gateway_arp": 0, "gateway_nd": 0, "rs_ra": 0, "gateway_mac": 0,
              "other": 0}
    others = {}
    for cap in caps:
        for p in cap.packets():
            inner = p.get("inner")
            if inner:
                kind = overlay_kind(inner)
                counts[kind or "other"] += 1
                if kind is None:
                    name = other_name(inner)
                    others[name] = others.get(name, 0) + 1
    return counts, others


def other_name(inner):
    """What an inner frame of no interest to the target is, for the notes."""
    raw = inner.get("raw", b"")
    if inner.get("ethertype") == 0x0806:
        return "arp"
    if inner.get("ethertype") == 0x86DD and len(raw) > 14 + 40:
        return f"ipv6 next header {raw[14 + 6]}" + (f" icmpv6 {raw[14 + 40]}"
                                                    if raw[14 + 6] == 58 else "")
    if "icmp_type" in inner:
        return f"icmp {inner['icmp_type']}"
    return f"ethertype {inner.get('ethertype', 0):#06x}"


# --- the section ------------------------------------------------------------------------------

def lab_spec():
    """3 sites with services and one hand-set host each; the mover (h30) may be claimed at
    B and at C, as an operator would allow a host that moves between them."""
    return mesh(3, 1, services=True, allowed_ips={
        "C": services_allowed_ips(2, ["10.0.3.50", MOVER_IP])})


def _ifindex(where, port):
    out = where.exec(["ip", "-o", "link", "show", "dev", port]).stdout
    return int(out.split(":", 1)[0])


def _mac_of(container):
    out = container.exec(["ip", "-o", "link", "show", "eth0"]).stdout
    return re.search(r"link/ether ([0-9a-f:]{17})", out).group(1)


def _our_flows(site, needles):
    """Our flows on a site's bridge that mention any of needles (an address, a MAC)."""
    spec = f"cookie={pipeline.COOKIE_TAG:#x}/{pipeline.COOKIE_TAG_MASK:#x}"
    out = site.ofctl("dump-flows", site.bridge, spec)
    return [line for line in out.splitlines()
            if any(re.search(rf"[=,]{re.escape(n)}(?![0-9a-f:.])", line) for n in needles)]


def responder_installed(site, ip, timeout=5.0):
    """Wall time at which the site's proxy-ARP responder for ip was put in, from its OVS
    `duration` (polled until it is there), or None."""
    spec = f"cookie={pipeline.cookie('proxy_arp', ip):#x}/-1"
    deadline = time.monotonic() + timeout
    while True:
        out = site.ofctl("dump-flows", site.bridge, spec)
        # vswitchd took `duration` some ms before ofctl returned: the time it returned
        # makes the install time an upper bound (late by at most the call, ~10 ms)
        after = time.time()
        found = re.search(r"duration=([\d.]+)s", out)
        if found:
            return after - float(found.group(1))
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL_INTERVAL)


class Section:
    def __init__(self, config, log):
        self.cfg, self.log = config, log
        self.lab = self.plain = self.base = None
        self.rounds, self.moves, self.errors = [], [], {}
        self.iperf = {s: [] for s in SYSTEMS}
        self.frames, self.other_frames, self.dropped = {}, {}, {}
        self._containers = []

    # set up and torn down ---------------------------------------------------------------------

    def __enter__(self):
        self.base = lxc.LxcBase()
        try:
            self.lab = Lab(lab_spec())
            self.lab.up()
            self.plain = PlainHost(self.lab).up()
            self.log(f"  services lab {self.lab.suffix} up in {self.lab.timings['up']:.1f}s, "
                     f"plain host {self.plain.ns}")
            self.peer = {"ipop": self.container(self.lab.sites["B"]),
                         "plain": self.container(self.plain)}
            self.peer_ip = {s: c.wait_ipv4() for s, c in self.peer.items()}
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for c in self._containers:
            c.destroy()
        if self.plain:
            self.plain.down()
        if self.lab:
            self.lab.down()
        self.base.remove()

    def container(self, where, start=True):
        c = lxc.Container(self.base, self.lab, where, self.base.new_name(f"s{self.lab.suffix}"))
        self._containers.append(c)
        return c.start() if start else c

    def host_of(self, system):
        return self.lab.sites["A"] if system == "ipop" else self.plain

    # measurements -----------------------------------------------------------------------------

    def phase(self, name, fn):
        t = time.monotonic()
        try:
            fn()
            self.log(f"  {name}: done in {time.monotonic() - t:.1f}s")
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:500]
            self.errors[name] = reason
            self.log(f"  {name}: FAILED ({reason})")

    def starts(self):
        lab = self.lab
        caps = {s: any_capture(lab, self.host_of(s).ns, s) for s in SYSTEMS}
        underlay = [ShortCapture(lab.underlay_ns, f"ul-{site.name}",
                                 f"udp port 4789 and src host {site.underlay_ip}",
                                 os.path.join(lab.workdir, "captures", f"ul-{site.name}.pcap"),
                                 lab._env) for site in lab.sites.values()]
        lab._captures += underlay
        for cap in [*caps.values(), *underlay]:
            cap.__enter__()
        try:
            for i in range(self.cfg.rounds):
                for system in (SYSTEMS if i % 2 == 0 else SYSTEMS[::-1]):
                    self.rounds.append(self.start_one(system))
        finally:
            for cap in [*caps.values(), *underlay]:
                cap.stop()
        self.frames, self.other_frames = overlay_counts(underlay)
        self.dropped = {cap.path.rsplit("/", 1)[1]: cap.dropped()
                        for cap in [*caps.values(), *underlay]}
        for r in self.rounds:
            times_from_capture(r, caps[r["system"]].packets())

    def start_one(self, system):
        where = self.host_of(system)
        c = self.container(where, start=False)
        r = {"system": system, "start": time.time()}
        c.start()
        r["started"] = time.time()       # lxc-start returned
        # the container's own busybox pings its peer until an echo comes back (a ping
        # before the lease fails at once: no address, no route)
        c.exec(["sh", "-c", f"until ping -c 1 -W 1 {self.peer_ip[system]} >/dev/null 2>&1; "
                            f"do usleep 20000; done"], timeout=60)
        r["pinged"] = time.time()
        r.update(ip=c.ipv4(), mac=_mac_of(c), port=c.port)
        r["ifindex"] = _ifindex(where, r["port"])
        if system == "ipop":
            r["responders"] = {site.name: responder_installed(site, r["ip"])
                               for site in self.lab.sites.values() if site.name != "A"}
            r["kill"] = time.time()
            c.stop(kill=True)
            r["stopped"] = time.time()
            sites = list(self.lab.sites.values())
            needles = (r["ip"], r["mac"])
            deadline = time.monotonic() + 10
            while any(_our_flows(site, needles) for site in sites) and \
                    time.monotonic() < deadline:
                time.sleep(POLL_INTERVAL)
            r["withdrawn"] = time.time() if not any(_our_flows(s, needles) for s in sites) \
                else None
        c.destroy()
        self._containers.remove(c)
        return r

    def move(self):
        lab = self.lab
        mover = lab.hosts["h30"]
        lab.exec(PINGER, ["ping", "-n", "-c", "3", "-i", "0.2", "-w", "20", mover.ip],
                 check=False, timeout=30)
        with lab.ping_log(PINGER, mover.ip) as pings:
            netns.wait_until(lambda: len(pings.replies()) >= 10, 10, "the ping flowing")
            for n in range(self.cfg.moves):
                there = lab.sites["C" if mover.site == "B" else "B"]
                here = lab.sites[mover.site]
                arriving = Host(f"hm{n}", there.name, f"{there.ns}-hm{n}", mover.ip,
                                host_mac(mover.ip), f"hm{n}", lab)
                lab._new_ns(arriving.ns)     # under the lab's suffix: down() removes it
                netns.add_veth(arriving.ns, "eth0", there.ns, arriving.port)
                netns.configure(arriving.ns, "eth0", address=arriving.ip, mac=arriving.mac,
                                mtu=lab.mtu)
                netns.configure(there.ns, arriving.port, mtu=lab.mtu)
                lab.exec(arriving.ns, ["ethtool", "-K", "eth0", "tx", "off"])
                since = time.time()
                here.vsctl("del-port", here.bridge, mover.port)
                there.vsctl("add-port", there.bridge, arriving.port)
                # one gratuitous ARP, as a container's DHCP client says it is there
                lab.exec(arriving.ns, ["arping", "-U", "-c", "1", "-i", "eth0", arriving.ip],
                         check=False)
                moved = time.time()
                try:
                    netns.wait_until(lambda: pings.replied_after(moved + 0.5), 10,
                                     f"echoes after move {n + 1} to {there.name}")
                    gap = round(pings.longest_gap(since), 3)
                except TimeoutError:
                    gap = None                 # unreachable for good
                self.moves.append({"to": there.name, "gap_s": gap})
                lab.exec(mover.ns, ["ip", "link", "del", "eth0"])   # the old copy goes
                mover = arriving

    def egress(self):
        boxes = {"ipop": self.container(self.lab.sites["A"]), "plain": self.container(self.plain)}
        for c in boxes.values():
            c.wait_ipv4()
        port = 5300
        for i in range(self.cfg.iperf_reps):
            for system in (SYSTEMS if i % 2 == 0 else SYSTEMS[::-1]):
                port += 1
                self.iperf[system].append(self._iperf_once(boxes[system], port))

    def _iperf_once(self, box, port):
        server = Background(self.lab, self.lab.upstream_ns,
                            ["iperf3", "-s", "-1", "-B", UPSTREAM_IP, "-p", port])
        netns.wait_until(lambda: netns.tcp_listening(server.proc.pid, port), 10,
                         "iperf3 server")
        proc = subprocess.run(["nsenter", "-t", str(box.pid), "-n", "iperf3", "-c", UPSTREAM_IP,
                               "-p", str(port), "-t", str(self.cfg.iperf_seconds), "-O", "0.5",
                               "-J", "--connect-timeout", "3000"], capture_output=True,
                              text=True, timeout=self.cfg.iperf_seconds + 30)
        server.finish(10)
        try:
            return json.loads(proc.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
        except (ValueError, KeyError):
            self.errors.setdefault("egress", f"iperf3: {proc.stdout[-200:]}{proc.stderr[-200:]}")
            return None


def times_from_capture(r, packets):
    """ACK, first ARP and first echo reply of one round's container, from its host's capture:
    the ACK where dnsmasq sends it, the ARP and the reply on the container's own veth."""
    start, mac, ip = r["start"], r["mac"], r["ip"]
    acks, arps, replies = [], [], []
    for p in packets:
        if p["time"] < start:
            continue
        if p.get("sport") == dhcp.SERVER_PORT:
            try:
                frame = dhcp.parse(p["eth"])
            except dhcp.Malformed:
                frame = None
            if frame and frame.message_type == dhcp.ACK and frame.chaddr == mac:
                acks.append(p["time"])
        on_port = p["ifindex"] in (None, r["ifindex"])
        if on_port and p.get("ethertype") == 0x0806 and p.get("sha") == mac:
            arps.append(p["time"])
        if on_port and p.get("icmp_type") == 0 and p.get("ip_dst") == ip:
            replies.append(p["time"])
    r["ack"] = min(acks, default=None)
    r["first_arp"] = min(arps, default=None)
    r["first_reply"] = min(replies, default=None)


# --- figures and targets ----------------------------------------------------------------------

def _since(a, b):
    return None if a is None or b is None else round(b - a, 4)


def summarize(section):
    """The figures of a run: {metric: {system: {median, p95, max, n, samples}}} and more."""
    per = {s: [r for r in section.rounds if r["system"] == s] for s in SYSTEMS}

    def stats(values):
        values = [v for v in values if v is not None]
        if not values:
            return {"median": None, "p95": None, "max": None, "n": 0, "samples": []}
        return {"median": round(M.percentile(values, 50), 4),
                "p95": round(M.percentile(values, 95), 4), "max": round(max(values), 4),
                "n": len(values), "samples": [round(v, 4) for v in values]}

    figures = {
        "first_ping_s": {s: stats(_since(r["start"], r["first_reply"]) for r in per[s])
                         for s in SYSTEMS},
        "start_to_ack_s": {s: stats(_since(r["start"], r["ack"]) for r in per[s])
                           for s in SYSTEMS},
        "ack_to_first_ping_s": {s: stats(_since(r["ack"], r["first_reply"]) for r in per[s])
                                for s in SYSTEMS},
        "lxc_start_s": {s: stats(_since(r["start"], r["started"]) for r in per[s])
                        for s in SYSTEMS},
    }
    ipop = per["ipop"]
    for r in ipop:
        peers = list((r.get("responders") or {}).values())
        r["all_responders"] = None if not peers or None in peers else max(peers)
        r["responders_before_arp"] = (None if r["all_responders"] is None
                                      or r.get("first_arp") is None
                                      else r["all_responders"] < r["first_arp"])
    figures["lease_to_responders_s"] = {"ipop": stats(_since(r["ack"], r["all_responders"])
                                                      for r in ipop)}
    figures["ack_to_first_arp_s"] = {"ipop": stats(_since(r["ack"], r["first_arp"])
                                                   for r in ipop)}
    figures["kill_withdrawn_s"] = {"ipop": stats(_since(r["kill"], r["withdrawn"])
                                                 for r in ipop)}
    figures["lxc_stop_s"] = {"ipop": stats(_since(r["kill"], r["stopped"]) for r in ipop)}
    figures["move_gap_s"] = {"ipop": stats(m["gap_s"] for m in section.moves)}
    figures["egress_mbps"] = {s: stats(section.iperf[s]) for s in SYSTEMS}
    return figures


def check_targets(doc):
    f, out = doc["figures"], []

    def target(name, value, threshold, met, detail):
        out.append({"name": name, "value": value, "threshold": threshold,
                    "met": None if value is None or threshold is None else bool(met),
                    "detail": detail})

    ip, plain = f["first_ping_s"]["ipop"]["median"], f["first_ping_s"]["plain"]["median"]
    ratio = round(ip / plain, 3) if ip is not None and plain else None
    target("container start to first cross-site ping <= 1.2x the plain host's", ratio,
           TARGETS["first_ping_ratio"], ratio is not None and ratio <= 1.2,
           f"median {ip} s vs {plain} s on the plain host (DHCP ACK after "
           f"{_med(f, 'start_to_ack_s', 'ipop')} s vs {_med(f, 'start_to_ack_s', 'plain')} s)")
    ip, plain = _med(f, "ack_to_first_ping_s", "ipop"), _med(f, "ack_to_first_ping_s", "plain")
    ratio = round(ip / plain, 3) if ip is not None and plain else None
    target("ACK to first cross-site ping vs the plain host's (the part DHCP's ping check "
           "leaves)", ratio, None, None, f"median {ip} s vs {plain} s (ratio, reported)")
    starts = len([r for r in doc["rounds"] if r["system"] == "ipop"])
    frames = doc["frames"]
    bad = sum(v for k, v in frames.items() if k != "other")
    per_start = round(bad / starts, 3) if starts and frames else None
    target("DHCP, gateway ARP/ND and RA frames across the overlay per container start: 0",
           per_start, 0, per_start == 0,
           f"{bad} in {starts} starts ({', '.join(f'{k} {v}' for k, v in frames.items())})")
    lease = f["lease_to_responders_s"]["ipop"]
    before = [r.get("responders_before_arp") for r in doc["rounds"] if r["system"] == "ipop"]
    target("lease to a responder at every peer <= 1 s, before the container's first ARP",
           lease["max"], TARGETS["lease_to_responders_s"],
           lease["max"] is not None and lease["max"] <= 1.0 and all(before),
           f"ACK to the last peer's responder: median {lease['median']} s, max {lease['max']} s; "
           f"before the first ARP in {sum(1 for b in before if b)} of {len(before)} starts "
           f"(first ARP {_med(f, 'ack_to_first_arp_s', 'ipop')} s after the ACK, median)")
    kill = f["kill_withdrawn_s"]["ipop"]
    target("killed container to withdrawn everywhere <= 1 s", kill["max"],
           TARGETS["kill_withdrawn_s"], kill["max"] is not None and kill["max"] <= 1.0 and
           kill["n"] == starts,
           f"lxc-stop -k to no flow for its address or MAC at any site: median {kill['median']} "
           f"s, max {kill['max']} s over {kill['n']} of {starts} (lxc-stop itself "
           f"{_med(f, 'lxc_stop_s', 'ipop')} s)")
    gaps = [m["gap_s"] for m in doc["moves"]]
    worst = None if not gaps or None in gaps else max(gaps)
    target(f"host moved with a 20/s ping: longest gap <= 1 s in every one of {len(gaps)} tries",
           worst, TARGETS["move_gap_s"], worst is not None and worst <= 1.0,
           f"gaps {gaps} s" if None not in gaps else f"gaps {gaps} (None: no echo for 10 s)")
    e_ip, e_plain = f["egress_mbps"]["ipop"]["median"], f["egress_mbps"]["plain"]["median"]
    ratio = round(e_ip / e_plain, 3) if e_ip is not None and e_plain else None
    target("egress through the site's NAT >= 0.95x the plain host's (iperf3 to the upstream)",
           ratio, TARGETS["egress_ratio"], ratio is not None and ratio >= 0.95,
           f"median {e_ip} vs {e_plain} Mbit/s")
    return out


def _med(figures, key, system):
    return (figures.get(key, {}).get(system) or {}).get("median")


def measure(config, log):
    """The whole section; the document results.json/services.json holds under `services`."""
    started = time.monotonic()
    with Section(config, log) as section:
        section.phase("container starts", section.starts)
        section.phase("moves", section.move)
        section.phase("egress", section.egress)
        suffix = section.lab.suffix
    doc = {"config": asdict(config), "labels": LABELS, "lab": suffix,
           "rounds": section.rounds, "moves": section.moves, "frames": section.frames,
           "iperf": section.iperf, "errors": section.errors,
           "capture_drops": section.dropped, "other_frames": section.other_frames,
           "wall_s": round(time.monotonic() - started, 1)}
    doc["figures"] = summarize(section)
    doc["targets"] = check_targets(doc)
    return doc


def unavailable():
    """None, or why the section cannot run here (LXC missing)."""
    return lxc.available()


def run_services(config):
    """`ipop-ryu bench --services`: the section alone into OUT/<UTC time>/services.json,
    services.md and services.log."""
    from . import runner
    from .report import services_markdown
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = os.path.join(config.out or runner.DEFAULT_OUT, stamp)
    os.makedirs(run_dir, exist_ok=False)
    run = runner.Run(config, run_dir)
    run.log(f"services bench {'(quick) ' if config.quick else ''}-> {run_dir}")
    doc = {"schema": runner.SCHEMA,
           "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "services": measure(config, run.log)}
    doc["machine"] = runner.machine()
    doc["wall_s"] = round(time.monotonic() - run.started, 1)
    runner.write_outputs(run, doc, "services.json", "services.md", services_markdown(doc),
                         "services.log")
    run.log(f"done in {doc['wall_s']}s: {run_dir}")
    return run_dir, doc

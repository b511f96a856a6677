"""Many sites in one process: each a real SwitchMode core on a FakeSwitch, with simulated
hosts, joined by a simulated UDP network (latency, jitter, loss, partitions) on a virtual
clock. Nothing here is a model of the core: only the switch, the wire and the hosts are."""
import heapq
import itertools
import random
import time
from collections import Counter

from ipop_ryu.core import arp, pipeline
from ipop_ryu.core.config import Options, Peer
from ipop_ryu.core.intents import IccSend, Output, PacketOut
from ipop_ryu.core.switchmode import SwitchMode

from .switch import FakeSwitch

KEY = b"s" * 32
ICC_PORT = 30000
EPOCH = 1.8e9           # virtual wall clock at t = 0 (the codec signs wall-clock times)
OVERLAY_PORT = 1000     # every site's one overlay port (the core only needs to know it)


def underlay(i):
    """198.18.0.0/15 (RFC 2544, benchmarking): room for 1,000+ simulated sites."""
    return f"198.{18 + i // 65000}.{i // 250 % 260}.{i % 250 + 1}"


def host_ip(site, j):
    return f"10.{site // 250}.{site % 250}.{j + 1}"


def host_mac(ip):
    return "02:00:" + ":".join(f"{int(x):02x}" for x in ip.split("."))


class World:
    def __init__(self, n_sites, hosts=4, latency=0.02, jitter=0.005, loss=0.0, seed=1,
                 announce=True, tick=0.1, **options):
        self.now = 0.0
        self.rng = random.Random(seed)
        self.latency, self.jitter, self.loss, self.tick_interval = latency, jitter, loss, tick
        self.cut = set()                    # frozenset({a, b}) pairs that cannot talk
        self._events, self._seq = [], itertools.count()
        self.sent = Counter()               # ICC datagrams sent, by message type
        self.sent_bytes = 0
        self.lost = 0
        self.cpu = Counter()                # process seconds spent in each site's core
        self.answers = []                   # (time, site, requester ip, target ip, mac)
        self.options = dict(announce=announce, **options)
        self.names = [f"s{i}" for i in range(n_sites)]
        self.addr = {name: (underlay(i), ICC_PORT) for i, name in enumerate(self.names)}
        self.by_addr = {a[0]: n for n, a in self.addr.items()}
        self.hosts = {name: [host_ip(i, j) for j in range(hosts)]
                      for i, name in enumerate(self.names)}
        self.sites = {}
        self.switches = {name: FakeSwitch() for name in self.names}

    # ---- the clock ------------------------------------------------------------------------
    def at(self, when, fn, *args):
        heapq.heappush(self._events, (when, next(self._seq), fn, args))

    def run_until(self, until, stop=None):
        """Carry out events up to `until` (virtual seconds); stop() ends early when true
        (checked after each event). Returns the virtual time reached."""
        while self._events and self._events[0][0] <= until:
            when, _, fn, args = heapq.heappop(self._events)
            self.now = when
            fn(*args)
            if stop is not None and stop():
                return self.now
        self.now = max(self.now, until)
        return self.now

    # ---- sites ----------------------------------------------------------------------------
    def start(self, name, speak=True):
        """Start (or restart) a site's controller; its switch keeps its flows. Its hosts
        speak once (a gratuitous ARP, as a container coming up does) if speak."""
        peers = tuple(Peer(p, *self.addr[p]) for p in self.names if p != name)
        options = Options(node_id=name, icc_key=KEY, peers=peers, icc_port=ICC_PORT,
                          icc_address=self.addr[name][0], **self.options)
        core = SwitchMode(options, clock=lambda: self.now, wallclock=lambda: EPOCH + self.now)
        self.sites[name] = core
        ports = {j + 1: f"h{j + 1}" for j in range(len(self.hosts[name]))}
        ports[OVERLAY_PORT] = "ipop-x"
        self._call(name, core.switch_connected, ports)
        offset = self.rng.random() * self.tick_interval
        self.at(self.now + offset, self._tick, name, core)
        if speak:
            for port, ip in enumerate(self.hosts[name], 1):
                self.at(self.now + offset, self.speak, name, port, ip)

    def stop(self, name):
        """The controller dies (its switch keeps its flows)."""
        self.sites.pop(name, None)

    def _tick(self, name, core):
        if self.sites.get(name) is not core:
            return          # stopped or restarted: this core's clock stops
        self._call(name, core.tick)
        self.at(self.now + self.tick_interval, self._tick, name, core)

    def _call(self, name, fn, *args):
        t = time.process_time()
        out = fn(*args)
        switch = self.switches[name]
        switch.apply(out)
        out += switch.answer(self.sites[name])
        self.cpu[name] += time.process_time() - t
        self._carry_out(name, out)

    def _carry_out(self, name, intents):
        for intent in intents:
            if isinstance(intent, IccSend):
                self._send(name, intent)
            elif isinstance(intent, PacketOut):
                self._packet_out(name, intent)

    # ---- the wire -------------------------------------------------------------------------
    def _send(self, src, send):
        dst = self.by_addr[send.addr[0]]
        self.sent[_type_of(send.data)] += 1
        self.sent_bytes += len(send.data)
        if frozenset((src, dst)) in self.cut or self.rng.random() < self.loss:
            self.lost += 1
            return
        delay = max(0.0, self.latency + self.rng.uniform(-self.jitter, self.jitter))
        self.at(self.now + delay, self._receive, dst, send.data, self.addr[src])

    def _receive(self, dst, data, addr):
        core = self.sites.get(dst)
        if core is not None:
            self._call(dst, core.icc_datagram, data, addr, EPOCH + self.now)

    def partition(self, group, others):
        self.cut |= {frozenset((a, b)) for a in group for b in others}

    def heal(self):
        self.cut.clear()

    # ---- hosts ----------------------------------------------------------------------------
    def chatter(self, interval=60.0):
        """Every host's ARP reaches its controller once per interval from now on (a host
        resolving a neighbour of its own site), at a random phase."""
        for name in self.names:
            for port, ip in enumerate(self.hosts[name], 1):
                self.at(self.now + self.rng.random() * interval, self._chat, name, port, ip,
                        interval)

    def _chat(self, name, port, ip, interval):
        self.speak(name, port, ip)
        self.at(self.now + interval, self._chat, name, port, ip, interval)

    def speak(self, name, port, ip):
        """A host's gratuitous ARP reaches its controller (the punted copy)."""
        core = self.sites.get(name)
        if core is not None:
            frame = arp.build(arp.request(ip, host_mac(ip), ip))
            self._call(name, core.packet_in, port, frame)

    def ask(self, name, port, target):
        """A host resolves target: answered in the datapath when the bridge has a responder
        for it (no controller, no ICC), else punted to the controller."""
        requester = self.hosts[name][port - 1]
        if target in self.switches[name].proxied:
            self.answers.append((self.now, name, requester, target, "datapath"))
            return
        core = self.sites.get(name)
        if core is not None:
            frame = arp.build(arp.request(requester, host_mac(requester), target))
            self._call(name, core.packet_in, port, frame)

    def _packet_out(self, name, out):
        frame = arp.parse(out.data)
        if frame is None:
            return
        ports = [a.port for a in out.actions if isinstance(a, Output)]
        hosts = self.hosts[name]
        for port in ports:
            if not 1 <= port <= len(hosts):
                continue
            ip = hosts[port - 1]
            if frame.op == arp.ARP_REPLY and frame.tpa == ip:
                self.answers.append((self.now, name, ip, frame.spa, frame.sha))
            elif frame.op == arp.ARP_REQUEST and frame.tpa == ip and frame.spa != ip:
                # the owner answers a replayed request: its reply is punted (relay_reply)
                reply = arp.build(arp.reply(ip, host_mac(ip), frame.spa, frame.sha))
                self.at(self.now + 0.0002, self._owner_reply, name, port, reply)

    def _owner_reply(self, name, port, reply):
        core = self.sites.get(name)
        if core is not None:
            self._call(name, core.packet_in, port, reply, pipeline.CAUGHT)

    # ---- views ----------------------------------------------------------------------------
    def responders_at(self, name):
        return self.switches[name].proxied

    def knows(self, name, ips):
        """Every ip in ips is answered by name's bridge."""
        return self.switches[name].proxied.issuperset(ips)


def _type_of(data: bytes) -> str:
    """The message type, read without parsing the datagram (the codec's JSON has it first)."""
    start = data.find(b'"type":"') + 8
    end = data.find(b'"', start)
    return data[start:end].decode() if start >= 8 and end > start else "?"

"""Switch mode decisions: events in, intents out (seed steps 1-6 plus the learned table).

One instance serves one bridge. Every public method returns the list of intents to carry out;
nothing here touches a socket or a switch, so it is tested with plain function calls.
"""
import logging
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

from . import arp, pipeline
from .config import Options
from .icc import REPLAY, STALE, UNKNOWN_PEER, Codec, Drop, Message
from .intents import TABLE, IccSend, Output, PacketOut, RequestFlowStats
from .peers import Peers
from .table import REFRESHED, ArpTable, Entry

LOG = logging.getLogger("ipop_ryu")

RELAY_MIN_INTERVAL = 0.5      # seconds between two ICC arp_requests for one target
MAX_OFPORT = 0xFFFFFF00       # above are reserved ports (LOCAL, CONTROLLER...)
DROP_LOG_INTERVAL = 10.0
FLOW_STATS_INTERVAL = 2.0     # seconds between polls of the responder flows' counters


@dataclass(frozen=True)
class Requester:
    """A local host waiting for an answer from another site."""
    ip: str
    mac: str
    port: int
    until: float


@dataclass(frozen=True)
class Relay:
    """A remote host whose request we replayed here, waiting for the local owner's reply."""
    node: str
    ip: str
    mac: str
    until: float


class SwitchMode:
    def __init__(self, options: Options, clock=time.monotonic, wallclock=time.time):
        self.options = options
        self.node_id = options.node_id
        self.clock, self.wallclock = clock, wallclock
        self.table = ArpTable(options.node_id, options.arp_timeout)
        self.codec = Codec(options.icc_key) if options.icc else None
        self.peers = Peers(options.peers if options.icc else (), options.peer_hold_time)
        self.boot = secrets.token_hex(8)     # tells peers we restarted
        self._next_hello = 0.0
        self._next_flow_stats = 0.0
        self.ports: Dict[int, str] = {}
        self.pending: Dict[str, Dict[str, Requester]] = {}   # target ip -> requester ip -> ...
        self.relays: Dict[str, Dict[str, Relay]] = {}        # target ip -> node -> ...
        self.last_relay: Dict[str, float] = {}
        self.stats = Counter()
        self._seq = int(wallclock() * 1e6)   # increases across restarts (see Peers)
        self._drop_logged: Dict[str, float] = {}
        self.proxy_flow_packets: Dict[str, int] = {}   # ip -> n_packets, from the switch
        self.started = clock()

    # ---- ports ---------------------------------------------------------------------------
    @property
    def overlay_ports(self) -> List[int]:
        return sorted(n for n, name in self.ports.items() if self.options.is_overlay_port(name))

    @property
    def local_ports(self) -> List[int]:
        return sorted(n for n, name in self.ports.items()
                      if n < MAX_OFPORT and not self.options.is_overlay_port(name))

    def _port_flows(self) -> list:
        return ([pipeline.classify_overlay_port(p) for p in self.overlay_ports]
                + pipeline.flood_flows(self.local_ports, self.overlay_ports))

    def switch_connected(self, ports: Dict[int, str]) -> list:
        """The whole pipeline from scratch, once the bridge's ports are known (so no ARP is
        punted from a port we cannot classify): our old flows go, what the state needs comes."""
        now = self.clock()
        self.ports = dict(ports)
        out = pipeline.delete_all_ours() + pipeline.base_flows() + self._port_flows()
        for entry in self.table.entries(now):
            if entry.local and entry.port not in self.ports:
                self.table.remove(entry.ip)
            elif self._proxied(entry):
                out += self._responder(entry, now)
        return self._count_flows(out)

    def ports_changed(self, ports: Dict[int, str]) -> list:
        old_overlay = set(self.overlay_ports)
        self.ports = dict(ports)
        new_overlay = set(self.overlay_ports)
        out = [pipeline.delete_overlay_port(p) for p in sorted(old_overlay - new_overlay)]
        out += [pipeline.classify_overlay_port(p) for p in sorted(new_overlay - old_overlay)]
        out += pipeline.flood_flows(self.local_ports, self.overlay_ports)
        # hosts whose port is gone are gone
        for entry in self.table.entries(self.clock()):
            if entry.local and entry.port not in self.ports:
                self.table.remove(entry.ip)
                out += self._forget(entry)
        return self._count_flows(out)

    # ---- packet-in -----------------------------------------------------------------------
    def packet_in(self, in_port: int, data: bytes) -> list:
        self.stats["packet_in"] += 1
        frame = arp.parse(data)
        if frame is None:
            self.stats["packet_in_ignored"] += 1
            return []
        if in_port not in self.local_ports:
            # only local ARP is punted; anything else is a pipeline bug or a race with a port
            self.stats["packet_in_not_local"] += 1
            return []
        now = self.clock()
        out = []
        if self._learnable(frame.spa, frame.sha):
            out += self._learn(frame.spa, frame.sha, self.node_id, in_port, now)
        if frame.op == arp.ARP_REQUEST and frame.is_broadcast:
            out += self._local_request(frame, in_port, data, now)
        elif frame.op == arp.ARP_REPLY:
            out += self._local_reply(frame, in_port, data, now)
        else:   # a unicast request is not punted by the pipeline; deliver it if one comes
            out.append(PacketOut(data, (Output(TABLE),)))
        return self._count_flows(out)

    def _local_request(self, frame: arp.ArpFrame, in_port: int, data: bytes, now: float):
        self.stats["arp_request"] += 1
        entry = self.table.get(frame.tpa, now)
        if frame.is_probe or frame.is_gratuitous or (entry and entry.mac == frame.sha):
            return self._flood_local(data, in_port)          # never answer the owner
        if entry is not None and self._proxied(entry):
            self.stats["arp_answered_by_controller"] += 1
            answer = arp.reply(entry.ip, entry.mac, frame.spa, frame.sha)
            return [PacketOut(arp.build(answer), (Output(in_port),))]
        out = self._flood_local(data, in_port)
        if entry is None and self.peers.states:
            self.pending.setdefault(frame.tpa, {})[frame.spa] = Requester(
                frame.spa, frame.sha, in_port, now + self.options.pending_timeout)
            if now - self.last_relay.get(frame.tpa, -RELAY_MIN_INTERVAL) >= RELAY_MIN_INTERVAL:
                self.last_relay[frame.tpa] = now
                self.stats["arp_relayed_to_peers"] += 1
                out += self._to_peers("arp_request", sender_ip=frame.spa,
                                      sender_mac=frame.sha, target_ip=frame.tpa)
        return out

    def _local_reply(self, frame: arp.ArpFrame, in_port: int, data: bytes, now: float):
        self.pending.pop(frame.spa, None)        # a local owner answered local requesters
        out, relayed_to = [], set()
        for relay in self.relays.pop(frame.spa, {}).values():
            if relay.until > now and frame.spa != relay.ip:
                relayed_to.add(relay.mac)
                self.stats["arp_answered_for_peers"] += 1
                out += self._to_peer(relay.node, "arp_reply", ip=frame.spa, mac=frame.sha)
        if frame.is_broadcast:
            out += self._flood_local(data, in_port)
        elif frame.eth_dst not in relayed_to:       # ICC already carries it there
            out.append(PacketOut(data, (Output(TABLE),)))
        return out

    def _flood_local(self, data: bytes, in_port) -> list:
        ports = [Output(p) for p in self.local_ports if p != in_port]
        return [PacketOut(data, tuple(ports))] if ports else []

    # ---- ICC -----------------------------------------------------------------------------
    def icc_datagram(self, data: bytes, addr) -> list:
        if self.codec is None:
            return []
        try:
            message = self.codec.decode(data)
            self._check_origin(message, addr)
        except Drop as drop:
            return self._dropped(drop, addr)
        self.stats["icc_received." + message.type] += 1
        now = self.clock()
        came_up, restarted = self.peers.heard(message.node, now, message.fields.get("boot"))
        out = []
        if came_up or restarted:
            LOG.info("peer %s is up%s", message.node, " (restarted)" if restarted else "")
            out += self._sync_to(message.node, now)
        handler = getattr(self, "_icc_" + message.type)
        return self._count_flows(out + handler(message, now))

    def _check_origin(self, message: Message, addr):
        state = self.peers.get(message.node)
        if state is None or state.peer.host != addr[0]:
            raise Drop(UNKNOWN_PEER, f"{message.node} from {addr[0]}")
        skew = abs(self.wallclock() - message.ts)
        if skew > self.options.icc_freshness:
            raise Drop(STALE, f"{message.node}: {skew:.0f}s off our clock")
        if not state.fresh_seq(message.seq):
            raise Drop(REPLAY, f"{message.node} seq {message.seq}")

    def _icc_hello(self, message: Message, now: float) -> list:
        return []

    def _sync_to(self, name: str, now: float) -> list:
        """Give a peer that (re)appeared our local hosts, so it answers locally at once."""
        out = []
        for entry in self.table.entries(now):
            if entry.local:
                out += self._to_peer(name, "arp_reply", ip=entry.ip, mac=entry.mac)
        self.stats["sync_entries_sent"] += len(out)
        return out

    def _peer_down(self, name: str) -> list:
        """Withdraw what a silent peer told us: nothing answers for hosts we cannot reach."""
        LOG.warning("peer %s is down: withdrawing its entries", name)
        self.stats["peer_down"] += 1
        out = []
        for entry in self.table.remove_node(name):
            self.stats["entries_withdrawn"] += 1
            out += self._forget(entry)
        for relays in self.relays.values():
            relays.pop(name, None)
        return out

    def _icc_arp_request(self, message: Message, now: float) -> list:
        out = []
        sender_ip, sender_mac, target = (message["sender_ip"], message["sender_mac"],
                                         message["target_ip"])
        if self._learnable(sender_ip, sender_mac):
            out += self._learn(sender_ip, sender_mac, message.node, None, now)
        entry = self.table.get(target, now)
        if entry is not None:
            if entry.local:          # we own it: answer at once, no replay needed
                self.stats["arp_answered_for_peers"] += 1
                out += self._to_peer(message.node, "arp_reply", ip=entry.ip, mac=entry.mac)
            return out               # a remote entry: its own site answers
        self.relays.setdefault(target, {})[message.node] = Relay(
            message.node, sender_ip, sender_mac, now + self.options.pending_timeout)
        self.stats["arp_replayed_locally"] += 1
        replay = arp.build(arp.request(sender_ip, sender_mac, target))
        ports = tuple(Output(p) for p in self.local_ports)
        return out + ([PacketOut(replay, ports)] if ports else [])

    def _icc_arp_reply(self, message: Message, now: float) -> list:
        ip, mac = message["ip"], message["mac"]
        if not self._learnable(ip, mac):
            self.stats["icc_ignored.not_learnable"] += 1
            return []
        out = self._learn(ip, mac, message.node, None, now)
        for requester in self.pending.pop(ip, {}).values():
            if requester.until > now and requester.port in self.ports:
                self.stats["arp_answered_via_peers"] += 1
                answer = arp.reply(ip, mac, requester.ip, requester.mac)
                out.append(PacketOut(arp.build(answer), (Output(requester.port),)))
        return out

    def _dropped(self, drop: Drop, addr) -> list:
        self.stats["icc_dropped." + drop.reason] += 1
        now = self.clock()
        if now - self._drop_logged.get(drop.reason, -DROP_LOG_INTERVAL) >= DROP_LOG_INTERVAL:
            self._drop_logged[drop.reason] = now
            LOG.warning("ICC datagram from %s:%s dropped (%s); %d dropped for this reason so "
                        "far, logging at most every %.0fs", addr[0], addr[1], drop,
                        self.stats["icc_dropped." + drop.reason], DROP_LOG_INTERVAL)
        return []

    def _to_peer(self, name: str, msg_type: str, **fields) -> List[IccSend]:
        state = self.peers.get(name)
        if state is None:
            return []
        self._seq += 1
        state.sent += 1
        self.stats["icc_sent." + msg_type] += 1
        data = self.codec.encode(msg_type, self.node_id, self._seq, self.wallclock(), **fields)
        return [IccSend(state.peer.addr, data, name)]

    def _to_peers(self, msg_type: str, **fields) -> List[IccSend]:
        return [send for state in self.peers for send in self._to_peer(state.name, msg_type,
                                                                        **fields)]

    # ---- the learned table ---------------------------------------------------------------
    def _proxied(self, entry: Entry) -> bool:
        """Remote hosts are answered for; local ones answer themselves (unless ICC is off,
        where the controller is a one-site switch with local proxy ARP)."""
        return not entry.local or not self.options.icc

    @staticmethod
    def _learnable(ip: str, mac: str) -> bool:
        return ip != arp.UNSPECIFIED_IP and arp.is_unicast_mac(mac)

    def _learn(self, ip, mac, node, port, now) -> list:
        what, old, new = self.table.learn(ip, mac, node, port, now)
        if what != REFRESHED:
            self.stats["entries_learned"] += 1
            LOG.info("learned %s at %s on %s%s", ip, mac, node,
                     f" (was {old.mac} on {old.node})" if old else "")
        out = []
        if old is not None and self._proxied(old) and not self._proxied(new):
            out += pipeline.delete_arp_responder(ip)
        if self._proxied(new) and (what != REFRESHED or not new.local):
            out += self._responder(new, now)    # refreshing re-arms the flow's hard timeout
        return out

    def _responder(self, entry: Entry, now: float) -> list:
        return pipeline.install_arp_responder(entry.ip, entry.mac,
                                              hard_timeout=int(entry.expires_in(now)) + 1)

    def _forget(self, entry: Entry) -> list:
        return pipeline.delete_arp_responder(entry.ip) if self._proxied(entry) else []

    def tick(self) -> list:
        """Hellos, peer liveness, and aging of the table and the waiting lists; call about
        once a second (or more often than hello_interval)."""
        now = self.clock()
        out = []
        if self.peers.states and now >= self._next_hello:
            self._next_hello = now + self.options.hello_interval
            out += self._to_peers("hello", boot=self.boot)
        for state in self.peers.expire(now):
            out += self._peer_down(state.name)
        if now >= self._next_flow_stats:
            self._next_flow_stats = now + FLOW_STATS_INTERVAL
            out.append(RequestFlowStats(pipeline.cookie("proxy_arp"), pipeline.PURPOSE_MASK,
                                        pipeline.ARP))
        for entry in self.table.expire(now):
            self.stats["entries_expired"] += 1
            LOG.info("expired %s at %s on %s", entry.ip, entry.mac, entry.node)
            out += self._forget(entry)
        for waiting in (self.pending, self.relays):
            for target in list(waiting):
                live = {k: v for k, v in waiting[target].items() if v.until > now}
                if live:
                    waiting[target] = live
                else:
                    del waiting[target]
        for target, when in list(self.last_relay.items()):
            if now - when > RELAY_MIN_INTERVAL:
                del self.last_relay[target]
        return out

    def proxy_flow_stats(self, packets_by_ip: Dict[str, int]):
        """Packet counts of the responder flows, as the switch reported them: these are the
        ARP requests answered in the datapath. Counters restart when a flow is re-added."""
        for ip, packets in packets_by_ip.items():
            last = self.proxy_flow_packets.get(ip, 0)
            self.stats["arp_answered_by_flow"] += packets - last if packets >= last else packets
        self.proxy_flow_packets = dict(packets_by_ip)

    def _count_flows(self, out: Iterable) -> list:
        out = list(out)
        self.stats["flow_mods"] += sum(1 for i in out if not isinstance(
            i, (PacketOut, IccSend, RequestFlowStats)))
        return out

    def entries(self) -> List[Entry]:
        return self.table.entries(self.clock())

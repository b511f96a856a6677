"""Switch mode decisions: events in, intents out (seed steps 1-6 plus the learned table).

One instance serves one bridge. Every public method returns the list of intents to carry out;
nothing here touches a socket or a switch, so it is tested with plain function calls.
"""
import logging
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, List, Tuple

from . import arp, pipeline
from .addr import Subnets
from .config import Options
from .icc import REPLAY, STALE, UNKNOWN_PEER, Codec, Drop, Message
from .intents import (TABLE, DeleteFlows, Flow, IccSend, Meter, Output, PacketOut,
                      RequestFlowStats)
from .peers import Peers
from .table import REFRESHED, ArpTable, Entry

LOG = logging.getLogger("ipop_ryu")

MAX_OFPORT = 0xFFFFFF00       # above are reserved ports (LOCAL, CONTROLLER...)
DROP_LOG_INTERVAL = 10.0
FLOW_STATS_INTERVAL = 2.0     # seconds between polls of our flows (counters, reconciliation)
RETRY_FIRST = 0.25            # an unanswered relay is resent after 0.25, 0.5 and 1 s; then
RETRY_MAX = 3                 # the host's own next request (about 1 s later) starts anew
RETRY_BUDGET = 100            # resends per second at most: a flood of requests for absent
                              # hosts costs one relay each, not four
NEVER_LEARNED = Subnets(("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3", "255.255.255.255/32"))


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


@dataclass(frozen=True)
class Retry:
    attempt: int
    at: float


class SwitchMode:
    def __init__(self, options: Options, clock=time.monotonic, wallclock=time.time):
        self.options = options
        self.node_id = options.node_id
        self.clock, self.wallclock = clock, wallclock
        self.table = ArpTable(options.node_id, options.arp_timeout)
        self.codec = Codec(options.icc_key) if options.icc else None
        self.peers = Peers(options.peers if options.icc else (), options.peer_hold_time)
        self.boot = secrets.token_hex(8)      # tells peers we restarted
        self.ports: Dict[int, str] = {}
        self.local_ports: List[int] = []      # derived from ports by _set_ports (hot path)
        self._flood_actions: Dict = {}
        self.overlay_ports: List[int] = []
        self.pending: Dict[str, Dict[str, Requester]] = {}   # target ip -> requester ip -> ...
        self.relays: Dict[str, Dict[str, Relay]] = {}        # target ip -> node -> ...
        self.retries: Dict[str, Retry] = {}                  # target ip -> next resend
        self.stats = Counter()
        self.proxy_flow_packets: Dict[str, int] = {}         # ip -> n_packets, from the switch
        self.started = clock()
        self._seq = int(wallclock() * 1e6)    # increases across restarts (see Peers)
        self._next_hello = 0.0
        self._next_flow_stats = 0.0
        self._drop_logged: Dict[str, float] = {}
        self._responder_until: Dict[str, float] = {}   # ip -> when OVS drops its responder
        self._next_cleanup = 0.0
        self._retry_tokens, self._retry_refilled = float(RETRY_BUDGET), clock()

    # ---- the bridge: ports and the flows the state needs ------------------------------------
    def _set_ports(self, ports: Dict[int, str]):
        self.ports = dict(ports)
        self.overlay_ports = sorted(n for n, name in self.ports.items()
                                    if self.options.is_overlay_port(name))
        self.local_ports = sorted(n for n, name in self.ports.items()
                                  if n < MAX_OFPORT and not self.options.is_overlay_port(name))
        # in_port (None: from the controller) -> the outputs that flood to the other local ports
        self._flood_actions = {p: tuple(Output(q) for q in self.local_ports if q != p)
                               for p in [None] + self.local_ports}

    def desired_flows(self) -> list:
        """Every meter and flow of ours the bridge should hold now."""
        rate, now = self.options.punt_rate, self.clock()
        out = pipeline.punt_meters(rate) + pipeline.base_flows(rate)
        out += [pipeline.classify_overlay_port(p) for p in self.overlay_ports]
        out += pipeline.flood_flows(self.local_ports, self.overlay_ports)
        for port in self.local_ports:
            out += pipeline.install_port_punt(port, rate)
        for entry in self.table.entries(now):
            if self.proxied(entry):
                out += self._responder(entry, now)
        return out

    def switch_connected(self, ports: Dict[int, str]) -> list:
        """Once the bridge's ports are known (so no ARP is punted from a port we cannot
        classify): install what the state needs over what is there, without wiping the
        bridge; the flow-stats reply then shows which of our old flows to remove."""
        self._set_ports(ports)
        now = self.clock()
        for entry in self.table.entries(now):
            if entry.local and entry.port not in self.ports:
                self.table.remove(entry.ip)
        self._next_flow_stats = now + FLOW_STATS_INTERVAL
        out = self.desired_flows() + [self._poll_flows()]
        return self._count_flows(out)

    def ports_changed(self, ports: Dict[int, str]) -> list:
        old_overlay, old_local = set(self.overlay_ports), set(self.local_ports)
        self._set_ports(ports)
        overlay, local, rate = set(self.overlay_ports), set(self.local_ports), self.options.punt_rate
        out = [pipeline.delete_overlay_port(p) for p in sorted(old_overlay - overlay)]
        out += [pipeline.classify_overlay_port(p) for p in sorted(overlay - old_overlay)]
        for port in sorted(old_local - local):
            out += pipeline.delete_port_punt(port)
        for port in sorted(local - old_local):
            out += pipeline.install_port_punt(port, rate)
        out += pipeline.flood_flows(self.local_ports, self.overlay_ports)
        for entry in self.table.entries(self.clock()):      # hosts whose port is gone are gone
            if entry.local and entry.port not in self.ports:
                self.table.remove(entry.ip)
                out += self._forget(entry)
        return self._count_flows(out)

    def _poll_flows(self) -> RequestFlowStats:
        return RequestFlowStats(pipeline.COOKIE_TAG, pipeline.COOKIE_TAG_MASK)

    def flow_stats(self, flows: Iterable[Tuple[int, int, int, int]]) -> list:
        """Our flows as the switch reports them, (cookie, table, priority, n_packets) each.

        Counts the ARP requests the responders answered, removes flows of ours the state no
        longer needs (left from before a restart) and re-adds missing ones."""
        present, packets = Counter(), {}
        for cookie, table, priority, n_packets in flows:
            purpose = pipeline.purpose_of(cookie)
            if purpose is None or purpose == "learned_mac":
                continue
            present[cookie, table, priority] += 1
            if purpose == "proxy_arp":
                packets[pipeline.ip_of(cookie)] = n_packets
        for ip, count in packets.items():
            last = self.proxy_flow_packets.get(ip, 0)
            self.stats["arp_answered_by_flow"] += count - last if count >= last else count
        self.proxy_flow_packets = packets
        desired = [f for f in self.desired_flows() if isinstance(f, Flow)]
        wanted = Counter((f.cookie, f.table, f.priority) for f in desired)
        out = []
        for cookie in sorted({key[0] for key in present} - {key[0] for key in wanted}):
            self.stats["flows_removed_stale"] += 1
            out.append(DeleteFlows(cookie))
        missing = {key for key, n in wanted.items() if present[key] < n}
        repairs = [f for f in desired if (f.cookie, f.table, f.priority) in missing]
        self.stats["flows_repaired"] += len(repairs)
        return self._count_flows(out + repairs)

    # ---- packet-in ----------------------------------------------------------------------------
    def packet_in(self, in_port: int, data: bytes) -> list:
        self.stats["packet_in"] += 1
        frame = arp.parse(data)
        if frame is None:
            self.stats["packet_in_ignored"] += 1
            return []
        if in_port not in self.ports or in_port in self.overlay_ports:
            # only local ARP is punted; anything else is a race with a port change
            self.stats["packet_in_not_local"] += 1
            return []
        now = self.clock()
        out = []
        if self._learnable(frame.spa, frame.sha):
            out += self._learn_local(frame, in_port, now)
        elif not frame.is_probe:
            self.stats["not_learned"] += 1
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
        if entry is not None and self.proxied(entry):
            self.stats["arp_answered_by_controller"] += 1
            answer = arp.reply(entry.ip, entry.mac, frame.spa, frame.sha)
            return [PacketOut(arp.build(answer), (Output(in_port),))]
        out = self._flood_local(data, in_port)
        if entry is None and self.peers.states and self._host_address(frame.tpa):
            self.pending.setdefault(frame.tpa, {})[frame.spa] = Requester(
                frame.spa, frame.sha, in_port, now + self.options.pending_timeout)
            if frame.tpa not in self.retries:
                out += self._relay(frame.tpa, 0, now)
        return out

    def _relay(self, target: str, attempt: int, now: float) -> list:
        """Ask every peer who has target, on behalf of one of the hosts waiting for it."""
        requester = next(iter(self.pending[target].values()))
        self.retries[target] = Retry(attempt + 1, now + RETRY_FIRST * 2 ** attempt)
        self.stats["arp_relayed_to_peers" if attempt == 0 else "arp_relay_retries"] += 1
        return self._to_peers("arp_request", sender_ip=requester.ip, sender_mac=requester.mac,
                              target_ip=target)

    def _local_reply(self, frame: arp.ArpFrame, in_port: int, data: bytes, now: float):
        self.pending.pop(frame.spa, None)        # a local owner answered local requesters
        self.retries.pop(frame.spa, None)
        out, relayed_to = [], set()
        for relay in self.relays.pop(frame.spa, {}).values():
            if relay.until > now and frame.spa != relay.ip and self._learnable(frame.spa,
                                                                                frame.sha):
                relayed_to.add(relay.mac)
                self.stats["arp_answered_for_peers"] += 1
                out += self._to_peer(relay.node, "arp_reply", ip=frame.spa, mac=frame.sha)
        if frame.is_broadcast:
            out += self._flood_local(data, in_port)
        elif frame.eth_dst not in relayed_to:       # ICC already carries it there
            requester = self.table.get(frame.tpa, now)
            # a local requester's port is known (it just asked); else the datapath decides
            port = requester.port if requester and requester.local and \
                requester.mac == frame.eth_dst else TABLE
            out.append(PacketOut(data, (Output(port),)))
        return out

    def _flood_local(self, data: bytes, in_port) -> list:
        ports = self._flood_actions.get(in_port)
        if ports is None:
            ports = tuple(Output(p) for p in self.local_ports if p != in_port)
        return [PacketOut(data, ports)] if ports else []

    # ---- ICC ----------------------------------------------------------------------------------
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

    def _icc_arp_request(self, message: Message, now: float) -> list:
        sender_ip, sender_mac, target = (message["sender_ip"], message["sender_mac"],
                                         message["target_ip"])
        if not self._learnable(sender_ip, sender_mac) or not self._host_address(target):
            self.stats["icc_ignored.not_learnable"] += 1
            return []
        # what the requester waits for goes first; the flows for the sender after
        flows = self._claim(sender_ip, sender_mac, message.node, message.ts, now)
        entry = self.table.get(target, now)
        if entry is not None:
            if not entry.local:      # a remote entry: its own site answers
                return flows
            self.stats["arp_answered_for_peers"] += 1      # ours: answer at once, no replay
            return self._to_peer(message.node, "arp_reply", ip=entry.ip, mac=entry.mac) + flows
        self.relays.setdefault(target, {})[message.node] = Relay(
            message.node, sender_ip, sender_mac, now + self.options.pending_timeout)
        self.stats["arp_replayed_locally"] += 1
        replay = arp.build(arp.request(sender_ip, sender_mac, target))
        return self._flood_local(replay, None) + flows

    def _icc_arp_reply(self, message: Message, now: float) -> list:
        """An answer to our request, or a peer's announcement (gratuitous ARP, host moved)."""
        ip, mac = message["ip"], message["mac"]
        if not self._learnable(ip, mac):
            self.stats["icc_ignored.not_learnable"] += 1
            return []
        flows = self._claim(ip, mac, message.node, message.ts, now)
        entry = self.table.get(ip, now)
        if entry is None or entry.mac != mac:
            return flows             # the claim lost to a newer one
        self.retries.pop(ip, None)
        answers = []                 # the waiting hosts first, the responder flows after
        for requester in self.pending.pop(ip, {}).values():
            if requester.until > now and requester.port in self.ports:
                self.stats["arp_answered_via_peers"] += 1
                answer = arp.reply(ip, mac, requester.ip, requester.mac)
                answers.append(PacketOut(arp.build(answer), (Output(requester.port),)))
        return answers + flows

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
        return self._send([state], msg_type, **fields) if state is not None else []

    def _to_peers(self, msg_type: str, **fields) -> List[IccSend]:
        return self._send(list(self.peers), msg_type, **fields)

    def _send(self, states, msg_type: str, **fields) -> List[IccSend]:
        """One signed datagram, the same bytes to each peer (each keeps its own replay
        window per sender, so one sequence number serves them all)."""
        self._seq += 1
        data = self.codec.encode(msg_type, self.node_id, self._seq, self.wallclock(), **fields)
        for state in states:
            state.sent += 1
        self.stats["icc_sent." + msg_type] += len(states)
        return [IccSend(state.peer.addr, data, state.name) for state in states]

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

    # ---- the learned table: learning, moves and conflicts -----------------------------------
    def proxied(self, entry: Entry) -> bool:
        """Remote hosts are answered for; local ones answer themselves (unless ICC is off,
        where the controller is a one-site switch with local proxy ARP)."""
        return not entry.local or not self.options.icc

    def _learnable(self, ip: str, mac: str) -> bool:
        """Never learn group MACs, nor addresses that cannot be a host's here."""
        return arp.is_unicast_mac(mac) and self._host_address(ip)

    def _host_address(self, ip: str) -> bool:
        """Not a probe's 0.0.0.0, loopback, multicast or broadcast, and inside the configured
        overlay subnets (if any)."""
        return ip not in NEVER_LEARNED and self.options.in_overlay(ip)

    def _learn_local(self, frame: arp.ArpFrame, port: int, now: float) -> list:
        """A host on our bridge spoke: it is here, now. A gratuitous ARP, or a host that was
        known elsewhere or with another MAC, is announced to every peer (moves, conflicts)."""
        old = self.table.get(frame.spa, now)
        out = self._learn(frame.spa, frame.sha, self.node_id, port, now, self.wallclock())
        moved = old is not None and (old.node != self.node_id or old.mac != frame.sha)
        if moved or (frame.is_gratuitous and (old is None or old.port != port)):
            self.stats["announcements_sent"] += 1
            out += self._to_peers("arp_reply", ip=frame.spa, mac=frame.sha)
        return out

    def _claim(self, ip: str, mac: str, node: str, seen: float, now: float) -> list:
        """A peer says node has ip at mac as of `seen`. Deterministic rule: the latest claim
        wins (ties: the greater node id), so every site ends with the same owner."""
        entry = self.table.get(ip, now)
        if entry is None or entry.node == node or (seen, node) > (entry.seen, entry.node):
            if entry is not None and entry.node != node:
                kind = "moved" if entry.mac == mac else "conflict"
                self.stats["host_" + kind] += 1
                log = LOG.info if kind == "moved" else LOG.warning
                log("%s: %s %s at %s on %s, now %s on %s", kind, ip, "was", entry.mac,
                    entry.node, mac, node)
            out = self._learn(ip, mac, node, None, now, seen)
            if entry is not None and entry.mac != mac and self.local_ports:
                # hosts here cache the old MAC: tell them, as the host itself would
                out += self._flood_local(arp.build(arp.request(ip, mac, ip)), None)
            return out
        # the claim is older than what we know: keep ours, and tell the claimer if it is ours
        self.stats["host_conflict"] += entry.mac != mac
        self.stats["claims_rejected"] += 1
        LOG.warning("conflict: %s claimed by %s at %s, kept %s on %s (newer)", ip, node, mac,
                    entry.mac, entry.node)
        if entry.local:
            return self._to_peer(node, "arp_reply", ip=ip, mac=entry.mac)
        return []

    def _learn(self, ip, mac, node, port, now, seen) -> list:
        what, old, new = self.table.learn(ip, mac, node, port, now, seen)
        out = []
        if what != REFRESHED:
            self.stats["entries_learned"] += 1
            LOG.info("learned %s at %s on %s%s", ip, mac, node,
                     f" (was {old.mac} on {old.node})" if old else "")
            if old is not None:     # the datapath's idea of where these MACs live is stale
                out += pipeline.delete_learned_mac(old.mac)
                if old.mac != mac:
                    out += pipeline.delete_learned_mac(mac)
        if old is not None and self.proxied(old) and not self.proxied(new):
            out += pipeline.delete_arp_responder(ip)
        if self.proxied(new) and (what != REFRESHED or self._responder_until.get(ip, 0) - now
                                  < self.options.arp_timeout / 2):
            out += self._responder(new, now)    # re-arms the flow's hard timeout
        return out

    def _responder(self, entry: Entry, now: float) -> list:
        hard_timeout = int(entry.expires_in(now)) + 1
        self._responder_until[entry.ip] = now + hard_timeout
        return pipeline.install_arp_responder(entry.ip, entry.mac, hard_timeout)

    def _forget(self, entry: Entry) -> list:
        self._responder_until.pop(entry.ip, None)
        return pipeline.delete_arp_responder(entry.ip) if self.proxied(entry) else []

    # ---- time ---------------------------------------------------------------------------------
    def tick(self) -> list:
        """Hellos, peer liveness, relay retries, aging; call about ten times a second."""
        now = self.clock()
        out = []
        if self.peers.states and now >= self._next_hello:
            self._next_hello = now + self.options.hello_interval
            out += self._to_peers("hello", boot=self.boot)
        for state in self.peers.expire(now):
            out += self._peer_down(state.name)
        for entry in self.table.expire(now):
            self.stats["entries_expired"] += 1
            LOG.info("expired %s at %s on %s", entry.ip, entry.mac, entry.node)
            out += self._forget(entry)
        if now >= self._next_cleanup:
            self._next_cleanup = now + 1.0
            for waiting in (self.pending, self.relays):
                for target in list(waiting):
                    live = {k: v for k, v in waiting[target].items() if v.until > now}
                    if live:
                        waiting[target] = live
                    else:
                        del waiting[target]
        self._retry_tokens = min(RETRY_BUDGET, self._retry_tokens
                                 + (now - self._retry_refilled) * RETRY_BUDGET)
        self._retry_refilled = now
        for target, retry in list(self.retries.items()):
            if target not in self.pending or retry.attempt > RETRY_MAX:
                del self.retries[target]
            elif now >= retry.at:
                if self._retry_tokens < 1:     # over budget: the host's next request relays
                    del self.retries[target]
                    self.stats["arp_relay_retries_skipped"] += 1
                    continue
                self._retry_tokens -= 1
                out += self._relay(target, retry.attempt, now)
        if now >= self._next_flow_stats:
            self._next_flow_stats = now + FLOW_STATS_INTERVAL
            out.append(self._poll_flows())
        return self._count_flows(out)

    def _count_flows(self, out: Iterable) -> list:
        out = list(out)
        self.stats["flow_mods"] += sum(1 for i in out if isinstance(i, (Flow, DeleteFlows, Meter)))
        return out

    def entries(self) -> List[Entry]:
        return self.table.entries(self.clock())

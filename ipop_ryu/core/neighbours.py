"""Neighbour resolution (ARP): learning who is where, answering, relaying, moves and conflicts.

Owns the learned table, the hosts waiting for an answer from another site, the requests we
replayed for other sites, relay retries, and the set of proxy-ARP responders the bridge should
hold (its KeyedSources feed the reconciler). Sends go through the membership.
"""
import logging
import socket
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

from . import arp, pipeline
from .addr import Subnets
from .announce import Announcer
from .config import Options
from .icc import Message
from .intents import TABLE, Output, PacketOut
from .membership import Membership
from .ports import BridgePorts
from .reconcile import KeyedSource
from .table import REFRESHED, ArpTable, Entry, sort_key
from .timers import Budget, Every

LOG = logging.getLogger("ipop_ryu")

CATCH_SPAN = 2                # a catch flow lives 2 pending_timeouts (see Neighbours._catch)
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


def _ip_of(low: int) -> str:
    return socket.inet_ntoa(low.to_bytes(4, "big"))


class Neighbours:
    def __init__(self, options: Options, stats: Counter, clock, wallclock,
                 ports: BridgePorts, members: Membership):
        self.options, self.stats, self.clock, self.wallclock = options, stats, clock, wallclock
        self.node_id = options.node_id
        self.ports, self.members = ports, members
        self.table = ArpTable(options.node_id, options.arp_timeout)
        self.pending: Dict[str, Dict[str, Requester]] = {}   # target ip -> requester ip -> ...
        self.relays: Dict[str, Dict[str, Relay]] = {}        # target ip -> node -> ...
        self.catching: Dict[str, float] = {}    # requester mac -> its catch flow lasts until
        self.retries: Dict[str, Retry] = {}                  # target ip -> next resend
        self.responders: Dict[str, float] = {}   # ip -> when OVS drops its responder flow
        self.announcer = Announcer(options.announce and options.icc, options.arp_timeout,
                                   members, wallclock)
        self._cleanup = Every(1.0)
        self._retry_budget = Budget(RETRY_BUDGET, clock())

    # ---- what the bridge should hold --------------------------------------------------------
    def flow_sources(self) -> dict:
        """The reconciler's view of the responders: one flow of each purpose per address."""
        def source(index):
            return KeyedSource(
                subjects=lambda: map(sort_key, self.responders),
                count=lambda: len(self.responders),
                wants=lambda low: _ip_of(low) in self.responders,
                build=lambda low: self._responder(_ip_of(low), self.clock())[index],
                table=pipeline.ARP)
        return {"proxy_arp": source(0), "proxy_arp_guard": source(1)}

    def proxied(self, entry: Entry) -> bool:
        """Remote hosts are answered for; local ones answer themselves (unless ICC is off,
        where the controller is a one-site switch with local proxy ARP)."""
        return not entry.local or not self.options.icc

    def _responder(self, ip: str, now: float) -> list:
        entry = self.table.get(ip, now)
        if entry is None:
            return [None, None]
        # never answers past the entry's life, even with the controller gone (0 = forever)
        hard_timeout = max(1, int(entry.expires_in(now)))
        self.responders[ip] = now + hard_timeout
        return pipeline.install_arp_responder(entry.ip, entry.mac, hard_timeout)

    def _forget(self, entry: Entry) -> list:
        self.responders.pop(entry.ip, None)
        return pipeline.delete_arp_responder(entry.ip) if self.proxied(entry) else []

    def drop_gone_ports(self) -> list:
        """Hosts whose port left the bridge are gone."""
        out = []
        for entry in self.local_entries():
            if entry.port not in self.ports:
                self.table.remove(entry.ip)
                self.announcer.gone(entry.ip)
                out += self._forget(entry)
        for target, requesters in list(self.pending.items()):     # nor do they wait (a
            for ip in [ip for ip, r in requesters.items() if r.port not in self.ports]:
                del requesters[ip]                                # retry would revive them)
            if not requesters:
                del self.pending[target]
        return out

    def local_entries(self) -> List[Entry]:
        return self.table.of_node(self.node_id, self.clock())

    def local_bindings(self, now: float) -> Iterable:
        """Our own hosts as (ip, mac, seconds since we last saw them), for a peer's sync."""
        wall = self.wallclock()
        return [(e.ip, e.mac, max(0, int(wall - e.seen))) for e in self.local_entries()]

    # ---- packet-in ----------------------------------------------------------------------------
    def packet_in(self, in_port: int, data: bytes, metadata: int = 0) -> list:
        """A copy of a local broadcast ARP or ARP reply: the datapath has delivered the frame
        to the local ports already (unless a catch flow marked it CAUGHT: a reply to a host
        of another site whose requests we replay); here it is learned from, relayed or
        answered for peers."""
        self.stats["packet_in"] += 1
        frame = arp.parse(data)
        if frame is None:
            self.stats["packet_in_ignored"] += 1
            return []
        if not self.ports.is_local(in_port):
            # only local ARP is punted; anything else is a race with a port change
            self.stats["packet_in_not_local"] += 1
            return []
        now = self.clock()
        out = []
        # what another site waits for (a relay, an answer) goes out before what we learn
        # from the frame: neither depends on the other (a gratuitous ARP is never relayed)
        if frame.op == arp.ARP_REQUEST and frame.is_broadcast:
            out += self._local_request(frame, in_port, now)
        elif frame.op == arp.ARP_REPLY:
            out += self._local_reply(frame, now, data if metadata & pipeline.CAUGHT else None)
        if self._learnable(frame.spa, frame.sha):
            out += self._learn_local(frame, in_port, now)
        elif not frame.is_probe:
            self.stats["not_learned"] += 1
        return out

    def _local_request(self, frame: arp.ArpFrame, in_port: int, now: float):
        self.stats["arp_request"] += 1
        entry = self.table.get(frame.tpa, now)
        if frame.is_probe or frame.is_gratuitous or (entry and entry.mac == frame.sha):
            return []                                       # never answer the owner
        if entry is not None and self.proxied(entry):
            # its responder flow is not in the bridge yet (it is on its way): answer once
            self.stats["arp_answered_by_controller"] += 1
            answer = arp.reply(entry.ip, entry.mac, frame.spa, frame.sha)
            return [PacketOut(arp.build(answer), (Output(in_port),))]
        if entry is None and self.members.peers.states and self._host_address(frame.tpa):
            self.pending.setdefault(frame.tpa, {})[frame.spa] = Requester(
                frame.spa, frame.sha, in_port, now + self.options.pending_timeout)
            if frame.tpa not in self.retries:
                return self._relay(frame.tpa, 0, now)
        return []

    def _relay(self, target: str, attempt: int, now: float) -> list:
        """Ask every peer who has target, on behalf of one of the hosts waiting for it."""
        requester = next(iter(self.pending[target].values()))
        self.retries[target] = Retry(attempt + 1, now + RETRY_FIRST * 2 ** attempt)
        self.stats["arp_relayed_to_peers" if attempt == 0 else "arp_relay_retries"] += 1
        return self.members.to_peers("arp_request", sender_ip=requester.ip,
                                     sender_mac=requester.mac, target_ip=target)

    def _local_reply(self, frame: arp.ArpFrame, now: float, caught: Optional[bytes]):
        """A local owner answered: local requesters got the frame from the datapath; a
        request we replayed for another site is answered over ICC. A caught reply (its
        frame, not delivered) that answers no relay goes on as the datapath would send it."""
        self.pending.pop(frame.spa, None)
        self.retries.pop(frame.spa, None)
        out, answered = [], False
        for relay in self.relays.pop(frame.spa, {}).values():
            if relay.until > now and frame.spa != relay.ip and self._learnable(frame.spa,
                                                                                frame.sha):
                self.stats["arp_answered_for_peers"] += 1
                answered |= relay.mac == frame.tha
                out += self.members.to_peer(relay.node, "arp_reply", ip=frame.spa, mac=frame.sha)
        if caught is not None and not answered:
            self.stats["arp_caught_forwarded"] += 1
            out.append(PacketOut(caught, (Output(TABLE),)))
        return out

    def _flood_local(self, data: bytes, in_port) -> list:
        ports = self.ports.flood_from(in_port)
        return [PacketOut(data, ports)] if ports else []

    # ---- ICC ----------------------------------------------------------------------------------
    def icc_arp_request(self, message: Message, now: float) -> list:
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
            return self.members.to_peer(message.node, "arp_reply", ip=entry.ip,
                                        mac=entry.mac) + flows
        relay = Relay(message.node, sender_ip, sender_mac, now + self.options.pending_timeout)
        self.relays.setdefault(target, {})[message.node] = relay
        self.stats["arp_replayed_locally"] += 1
        return self._replay(target, relay, now) + flows

    def _replay(self, target: str, relay: Relay, now: float) -> list:
        """Ask our hosts for target as the remote requester would; the owner's reply is
        punted back to us by the requester's catch flow, which goes first (in order)."""
        replay = arp.build(arp.request(relay.ip, relay.mac, target))
        return self._catch(relay, now) + self._flood_local(replay, None)

    def _catch(self, relay: Relay, now: float) -> list:
        """The requester's catch flow, unless one in the bridge already outlives this relay:
        it lives CATCH_SPAN pending_timeouts, so a stream of relays for one requester costs
        one flow-mod per pending_timeout, not one each."""
        if self.catching.get(relay.mac, 0.0) >= relay.until:
            return []
        span = CATCH_SPAN * self.options.pending_timeout
        self.catching[relay.mac] = now + span
        return [pipeline.install_relay_reply_punt(relay.ip, relay.mac, span)]

    def replay_waiting(self, now: float) -> list:
        """Replays asked for while the bridge was away (a cold start: peers relay to us
        before our switch connects) go out once it is back, not at the peer's next retry."""
        out = []
        self.catching.clear()           # a new connection: the bridge's flows may be gone
        for target, relays in self.relays.items():
            live = [r for r in relays.values() if r.until > now]
            if live:
                out += self._replay(target, live[0], now)
        return out

    def icc_arp_reply(self, message: Message, now: float) -> list:
        """An answer to our request, or a peer's announcement (gratuitous ARP, host moved)."""
        return self._binding(message.node, message["ip"], message["mac"],
                             message.ts - message.fields.get("age", 0), now)

    def icc_bindings(self, message: Message, now: float) -> list:
        """Many claims in one datagram (a peer's sync or announcements): each one is checked
        and decided as an arp_reply would be; a malformed one was dropped by the codec."""
        self.stats["icc_bindings_invalid"] += message["invalid"]
        self.stats["sync_entries_received"] += len(message["bindings"])
        answers, flows = [], []
        for ip, mac, age in message["bindings"]:
            for intent in self._binding(message.node, ip, mac, message.ts - age, now):
                (answers if isinstance(intent, PacketOut) else flows).append(intent)
        return answers + flows

    def _binding(self, node: str, ip: str, mac: str, seen: float, now: float) -> list:
        if not self._learnable(ip, mac):
            self.stats["icc_ignored.not_learnable"] += 1
            return []
        flows = self._claim(ip, mac, node, seen, now)
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

    def icc_withdraw(self, message: Message, now: float) -> list:
        """A peer no longer has these hosts: forget those it owns here (only those)."""
        self.stats["icc_withdraw_invalid"] += message["invalid"]
        out = []
        for ip in message["ips"]:
            entry = self.table.get(ip, now)
            if entry is not None and entry.node == message.node:
                self.table.remove(ip)
                self.stats["entries_withdrawn"] += 1
                out += self._forget(entry)
        return out

    def peer_up(self, name: str, now: float) -> list:
        """A peer came up or restarted: what our hosts wait for may be there, so ask it at
        once instead of at the next retry (a cold start: sites come up one by one, and a
        relay sent before a peer listened was lost). Spends the retry budget."""
        out = []
        for target, requesters in self.pending.items():
            waiting = next((r for r in requesters.values() if r.until > now), None)
            if waiting is None:
                continue
            if not self._retry_budget.take(now):
                self.stats["arp_relay_retries_skipped"] += 1
                break
            self.stats["arp_relayed_to_arrived_peer"] += 1
            out += self.members.to_peer(name, "arp_request", sender_ip=waiting.ip,
                                        sender_mac=waiting.mac, target_ip=target)
        return out

    def peer_down(self, name: str) -> list:
        """Withdraw what a silent peer told us: nothing answers for hosts we cannot reach."""
        LOG.warning("peer %s is down: withdrawing its %d entries", name,
                    self.table.node_count(name))
        self.stats["peer_down"] += 1
        out = []
        for entry in self.table.remove_node(name):
            self.stats["entries_withdrawn"] += 1
            out += self._forget(entry)
        for relays in self.relays.values():
            relays.pop(name, None)
        return out

    # ---- learning, moves and conflicts ------------------------------------------------------
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
            self.stats["announcements_sent"] += 1      # at once: every site must learn a move
            out += self.members.to_peers("arp_reply", ip=frame.spa, mac=frame.sha)
            self.announcer.announced[frame.spa] = now
        elif old is None or old.port != port:
            self.announcer.learned(self.table.get(frame.spa, now))
        return out

    def _claim(self, ip: str, mac: str, node: str, seen: float, now: float) -> list:
        """A peer says node has ip at mac as of `seen`. Deterministic rule: the latest claim
        wins (ties: the greater node id), so every site ends with the same owner."""
        entry = self.table.get(ip, now)
        if entry is None or entry.node == node or (seen, node) > (entry.seen, entry.node):
            if entry is not None and entry.node != node:
                kind = "moved" if entry.mac == mac else "conflict"
                self.stats["host_" + kind] += 1
                (LOG.debug if kind == "moved" else LOG.warning)(
                    "%s: %s was at %s on %s, now %s on %s", kind, ip, entry.mac, entry.node,
                    mac, node)
            out = self._learn(ip, mac, node, None, now, seen)
            if entry is not None and entry.local:
                self.announcer.gone(ip)                # no longer ours to announce
            if entry is not None and entry.mac != mac and self.ports.local:
                # hosts here cache the old MAC: tell them, as the host itself would
                out += self._flood_local(arp.build(arp.request(ip, mac, ip)), None)
            return out
        # the claim is older than what we know: keep ours, and tell the claimer if it is ours
        self.stats["host_conflict"] += entry.mac != mac
        self.stats["claims_rejected"] += 1
        LOG.warning("conflict: %s claimed by %s at %s, kept %s on %s (newer)", ip, node, mac,
                    entry.mac, entry.node)
        if entry.local:     # with our claim's own time (age), so it does not look newer
            return self.members.to_peer(node, "arp_reply", ip=ip, mac=entry.mac,
                                        age=round(max(0.0, self.wallclock() - entry.seen), 6))
        return []

    def _learn(self, ip, mac, node, port, now, seen) -> list:
        what, old, new = self.table.learn(ip, mac, node, port, now, seen)
        out = []
        if what != REFRESHED:
            self.stats["entries_learned"] += 1
            LOG.debug("learned %s at %s on %s%s", ip, mac, node,
                      f" (was {old.mac} on {old.node})" if old else "")
            if old is not None:     # the datapath's idea of where these MACs live is stale
                out += pipeline.delete_learned_mac(old.mac)
                if old.mac != mac:
                    out += pipeline.delete_learned_mac(mac)
        if old is not None and self.proxied(old) and not self.proxied(new):
            self.responders.pop(ip, None)
            out += pipeline.delete_arp_responder(ip)
        if self.proxied(new) and (what != REFRESHED or
                                  self.responders.get(ip, 0) < new.expires_at - 1):
            out += self._responder(ip, now)    # re-arms the flow's hard timeout
        return out

    # ---- time ---------------------------------------------------------------------------------
    def tick(self, now: float) -> list:
        """Aging, waiting hosts, relay retries."""
        out = []
        for entry in self.table.expire(now):
            self.stats["entries_expired"] += 1
            LOG.debug("expired %s at %s on %s", entry.ip, entry.mac, entry.node)
            if entry.local:
                self.announcer.gone(entry.ip)
            out += self._forget(entry)
        out += self.announcer.tick(now, self.local_entries)
        if self._cleanup.due(now):
            self.catching = {mac: t for mac, t in self.catching.items() if t > now}
            for waiting in (self.pending, self.relays):
                for target in list(waiting):
                    live = {k: v for k, v in waiting[target].items() if v.until > now}
                    if live:
                        waiting[target] = live
                    else:
                        del waiting[target]
        for target, retry in list(self.retries.items()):
            if target not in self.pending or retry.attempt > RETRY_MAX:
                del self.retries[target]
            elif now >= retry.at:
                if not self._retry_budget.take(now):   # over budget: the next request relays
                    del self.retries[target]
                    self.stats["arp_relay_retries_skipped"] += 1
                    continue
                out += self._relay(target, retry.attempt, now)
        return out

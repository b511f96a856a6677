"""Neighbour resolution, for ARP and IPv6 ND alike: learning who is where, answering,
relaying, moves and conflicts, and (ND) duplicate address detection across sites.

Owns the learned table (both families in one), the families (family.py: what differs between
ARP and ND, and the responders the bridge should hold, whose KeyedSources feed the
reconciler) and the relayer (relay.py: requests that cross sites). Sends go through the
membership.
"""
import logging
from collections import Counter
from typing import Iterable, List

from .announce import Announcer
from .arp import is_unicast_mac
from .config import Options
from .families import families, family_of
from .family import Requester, Sighting
from .icc import Message
from .intents import TABLE, Output, PacketOut
from .membership import Membership
from .names import Names
from .pipeline import CAUGHT, FWD_ANY, delete_learned_mac
from .ports import BridgePorts
from .relay import CATCH_SPAN, RETRY_BUDGET, RETRY_FIRST, RETRY_MAX, Relayer  # noqa: F401
from .neighbour_table import REFRESHED, NeighbourTable, Entry

LOG = logging.getLogger("ipop_ryu")


class Neighbours:
    def __init__(self, options: Options, stats: Counter, clock, wallclock,
                 ports: BridgePorts, members: Membership,
                 permits=lambda port, ip, mac: True):
        self.options, self.stats, self.clock, self.wallclock = options, stats, clock, wallclock
        self.node_id = options.node_id
        self.ports, self.members = ports, members
        self.permits = permits        # port security: may this port speak for that address?
        self.table = NeighbourTable(options.node_id, options.arp_timeout)
        self.families = families()
        self.relayer = Relayer(options, stats, clock, ports, members, self.families)
        self.names = Names(options.node_id, options.dns_domain, stats)
        self.announcer = Announcer(options.announce and options.icc, options.arp_timeout,
                                   members, wallclock, self.is_router, self.names.name_of)
        # the anycast gateway is every site's own: never learned, announced or relayed
        self.gateway_ips = frozenset(options.gateway_addresses)
        self.gateway_mac = options.gateway_mac if options.site_services else None
        self.handlers = {}
        for family in self.families:
            self.handlers[family.request_type] = self.icc_request
            self.handlers[family.reply_type] = self.icc_reply

    def _family(self, ip: str):
        return family_of(self.families, ip)

    # ---- what the bridge should hold --------------------------------------------------------
    def flow_sources(self) -> dict:
        """The reconciler's view of the responders: one flow of each purpose per address."""
        build = lambda ip: self._responder(ip, self.clock())     # noqa: E731
        return {purpose: source for family in self.families
                for purpose, source in family.sources(build).items()}

    def responder_count(self) -> int:
        return sum(len(family.responders) for family in self.families)

    def proxied(self, entry: Entry) -> bool:
        """Remote hosts are answered for; local ones answer themselves (unless ICC is off,
        where the controller is a one-site switch with local proxy ARP and ND)."""
        return not entry.local or not self.options.icc

    def _responder(self, ip: str, now: float) -> list:
        entry = self.table.get(ip, now) if ip is not None else None
        if entry is None:
            return []
        # never answers past the entry's life, even with the controller gone (0 = forever)
        hard_timeout = max(1, int(entry.expires_in(now)))
        return self._family(ip).install(entry.ip, entry.mac, hard_timeout, now)

    def _forget(self, entry: Entry) -> list:
        self.names.drop(entry.ip)
        family = self._family(entry.ip)
        family.learned_router(entry.ip, False)
        # a remote host withdrawn, aged out or its site gone: where the datapath learned its
        # MAC (that site's tunnel) goes too, or traffic to it (which keeps the learned flow's
        # idle timeout alive) never reaches the site it moves to, whose claim is then new
        out = [] if entry.local else delete_learned_mac(entry.mac, (FWD_ANY,))
        if self.proxied(entry):
            return family.remove(entry.ip) + out
        family.responders.pop(entry.ip, None)
        return out

    def drop_gone_ports(self, gone: Iterable[int] = ()) -> list:
        """Hosts whose port left the bridge (or is down, or was replaced: `gone`) are gone,
        here and, by withdrawal, at every peer."""
        out = []
        gone = set(gone)
        for entry in self.local_entries():
            if entry.port not in self.ports or entry.port in gone:
                self.table.remove(entry.ip)
                self.announcer.gone(entry.ip)
                out += self._forget(entry)
        self.relayer.drop_gone_ports()
        return out

    def local_entries(self) -> List[Entry]:
        return self.table.of_node(self.node_id, self.clock())

    def local_bindings(self, now: float) -> Iterable:
        """Our own hosts as (ip, mac, seconds since we last saw them, router, name), for a
        peer's sync."""
        wall = self.wallclock()
        return [(e.ip, e.mac, max(0, int(wall - e.seen)), self.is_router(e.ip),
                 self.names.name_of(e.ip)) for e in self.local_entries()]

    def is_router(self, ip: str) -> bool:
        return self._family(ip).is_router(ip)

    def replay_waiting(self, now: float) -> list:
        return self.relayer.replay_waiting(now)

    # ---- packet-in ----------------------------------------------------------------------------
    def packet_in(self, in_port: int, data: bytes, metadata: int = 0) -> list:
        """A copy of a local ARP or ND frame: the datapath has delivered the frame to the
        local ports already (unless a catch flow marked it CAUGHT: a reply to a host of
        another site whose requests we replay); here it is learned from, relayed or answered
        for peers."""
        self.stats["packet_in"] += 1
        seen = None
        for family in self.families:
            seen = family.parse(data)
            if seen is not None:
                break
        if seen is None:
            self.stats["packet_in_ignored"] += 1
            return []
        if not self.ports.is_local(in_port):
            # only local ARP and ND is punted; anything else is a race with a port change
            self.stats["packet_in_not_local"] += 1
            return []
        if not seen.probe and not self.permits(in_port, seen.sender_ip, seen.sender_mac):
            # the datapath drops these; this one left before the port's flows changed
            self.stats["port_security_refused"] += 1
            return []
        now = self.clock()
        out = []
        # what another site waits for (a relay, an answer) goes out before what we learn
        # from the frame: neither depends on the other (a gratuitous one is never relayed)
        if seen.request and seen.probe and seen.family.defends_probes:
            out += self._local_probe(seen, in_port, now)
        elif seen.request and seen.resolve:
            out += self._local_request(seen, in_port, now)
        elif not seen.request:
            out += self._local_reply(seen, now, data if metadata & CAUGHT else None)
        if self._learnable(seen.sender_ip, seen.sender_mac):
            out += self._learn_local(seen, in_port, now)
        elif not seen.probe:
            self.stats["not_learned"] += 1
        return out

    def _local_request(self, seen: Sighting, in_port: int, now: float):
        family = seen.family
        self.stats[f"{family.name}_request"] += 1
        entry = self.table.get(seen.target, now)
        if seen.probe or seen.gratuitous or (entry and entry.mac == seen.sender_mac):
            return []                                       # never answer the owner
        if entry is not None and self.proxied(entry):
            # its responder flow is not in the bridge yet (or the NS has no source option,
            # which no flow answers): answer once
            self.stats[f"{family.name}_answered_by_controller"] += 1
            waiting = Requester(seen.sender_ip, seen.sender_mac, in_port, now, seen.bare)
            return [family.answer_out(family.answer(entry.ip, entry.mac, waiting), in_port)]
        if entry is None and self.members.peers.states and self._host_address(seen.target):
            return self.relayer.wait(seen.target, Requester(
                seen.sender_ip, seen.sender_mac, in_port,
                now + self.options.pending_timeout, seen.bare), now)
        return []

    def _local_probe(self, seen: Sighting, in_port: int, now: float):
        """A DAD probe: defended for an owner at another site (from the table, or once a
        relay finds one); a local owner defends itself, the prober's own address is its."""
        family = seen.family
        self.stats[f"{family.name}_dad_probes"] += 1
        entry = self.table.get(seen.target, now)
        if entry is None:
            if self.members.peers.states and self._host_address(seen.target):
                return self.relayer.wait(seen.target, Requester(
                    family.unspecified, seen.eth_src, in_port,
                    now + self.options.pending_timeout), now)
            return []
        if entry.local or entry.mac == seen.eth_src:
            return []
        return [self._defend(family, entry.ip, entry.mac, entry.node, in_port)]

    def _defend(self, family, ip: str, mac: str, node: str, port) -> PacketOut:
        self.stats["host_conflict"] += 1
        self.stats[f"{family.name}_dad_defended"] += 1
        LOG.warning("conflict: a host on port %s probes for %s, owned by %s at %s: defended",
                    self.ports.names.get(port, port), ip, node, mac)
        return family.answer_out(family.defend(ip, mac), port)

    def _local_reply(self, seen: Sighting, now: float, caught):
        """A local owner answered: local requesters got the frame from the datapath; a
        request we replayed for another site is answered over ICC. A caught reply (its
        frame, not delivered) that answers no relay goes on as the datapath would send it."""
        family, ip = seen.family, seen.sender_ip
        self.relayer.answered(ip)
        out, answered = [], False
        relays = self.relayer.relays.pop(ip, {})
        for relay in relays.values():
            if relay.until > now and ip != relay.ip and self._learnable(ip, seen.sender_mac):
                self.stats[f"{family.name}_answered_for_peers"] += 1
                # (a DAD probe's defence goes to all-nodes, not to the prober)
                answered |= relay.mac == seen.to_mac or relay.ip == family.unspecified
                out += self.members.to_peer(relay.node, family.reply_type,
                                            **family.claim(ip, seen.sender_mac))
        if relays:          # answered: the owner's next replies are ordinary frames again
            out += family.delete_relay_catch(ip)
        if caught is not None and not answered:
            self.stats[f"{family.name}_caught_forwarded"] += 1
            out.append(PacketOut(caught, (Output(TABLE),)))
        return out

    # ---- ICC ----------------------------------------------------------------------------------
    def icc_request(self, message: Message, now: float) -> list:
        """A host at another site asks (a DAD probe when its address is unspecified)."""
        sender_ip, sender_mac, target = (message["sender_ip"], message["sender_mac"],
                                         message["target_ip"])
        family = self._family(target)
        probe = sender_ip == family.unspecified
        if not probe and not self.members.allows(message.node, sender_ip):
            return []           # a host there may not speak from this address
        sender_ok = is_unicast_mac(sender_mac) if probe else self._learnable(sender_ip,
                                                                             sender_mac)
        if not sender_ok or not self._host_address(target):
            self.stats["icc_ignored.not_learnable"] += 1
            return []
        # what the requester waits for goes first; the flows for the sender after
        flows = [] if probe else self._claim(sender_ip, sender_mac, message.node, message.ts,
                                             now)
        entry = self.table.get(target, now)
        if entry is not None:
            if not entry.local:      # a remote entry: its own site answers
                return flows
            self.stats[f"{family.name}_answered_for_peers"] += 1   # ours: at once, no replay
            return self.members.to_peer(message.node, family.reply_type,
                                        **family.claim(entry.ip, entry.mac)) + flows
        return self.relayer.replay(message.node, sender_ip, sender_mac, target, now) + flows

    def icc_reply(self, message: Message, now: float) -> list:
        """An answer to our request, or a peer's announcement (gratuitous ARP, unsolicited
        NA, host moved)."""
        routers = {message["ip"]} if message.fields.get("router") else set()
        return self._binding(message.node, message["ip"], message["mac"],
                             message.ts - message.fields.get("age", 0), now, routers,
                             message.fields.get("name"))

    icc_arp_request = icc_request
    icc_arp_reply = icc_reply

    def icc_bindings(self, message: Message, now: float) -> list:
        """Many claims in one datagram (a peer's sync or announcements): each one is checked
        and decided as a reply would be; a malformed one was dropped by the codec."""
        self.stats["icc_bindings_invalid"] += message["invalid"]
        self.stats["sync_entries_received"] += len(message["bindings"])
        answers, flows = [], []
        names = message.fields.get("names", {})
        for ip, mac, age in message["bindings"]:
            for intent in self._binding(message.node, ip, mac, message.ts - age, now,
                                        message["routers"], names.get(ip)):
                (answers if isinstance(intent, PacketOut) else flows).append(intent)
        return answers + flows

    def _binding(self, node: str, ip: str, mac: str, seen: float, now: float,
                 routers=frozenset(), name=None) -> list:
        if not self.members.allows(node, ip):
            if name is not None:
                self.names.refused("not_allowed")
            return []
        if not self._learnable(ip, mac):
            self.stats["icc_ignored.not_learnable"] += 1
            return []
        flows = self._router(ip, ip in routers, now)
        flows += self._claim(ip, mac, node, seen, now)
        entry = self.table.get(ip, now)
        if entry is None or entry.mac != mac:
            if name is not None:
                self.names.refused("claim_lost")
            return flows             # the claim lost to a newer one
        if name is not None and entry.node == node:
            self.names.claim(ip, name, node, seen)
        family = self._family(ip)
        answers = []                 # the waiting hosts first, the responder flows after
        for requester in self.relayer.answered(ip).values():
            if requester.until <= now or requester.port not in self.ports:
                continue
            if requester.ip == family.unspecified:       # a DAD probe for an owned address
                if requester.mac != mac:
                    answers.append(self._defend(family, ip, mac, node, requester.port))
                continue
            self.stats[f"{family.name}_answered_via_peers"] += 1
            answers.append(family.answer_out(family.answer(ip, mac, requester),
                                             requester.port))
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
        return self.relayer.peer_up(name, now)

    def peer_down(self, name: str) -> list:
        """Withdraw what a silent peer told us: nothing answers for hosts we cannot reach."""
        LOG.warning("peer %s is down: withdrawing its %d entries", name,
                    self.table.node_count(name))
        self.stats["peer_down"] += 1
        return self.peer_removed(name)

    def peer_removed(self, name: str) -> list:
        """Forget a peer's entries and flows (down, or no longer configured)."""
        out = []
        for entry in self.table.remove_node(name):
            self.stats["entries_withdrawn"] += 1
            out += self._forget(entry)
        self.relayer.peer_down(name)
        return out

    def withdraw_not_allowed(self, name: str, now: float) -> list:
        """After a reload narrowed a peer's allowed_ips: what it may no longer claim goes."""
        state = self.members.peers.get(name)
        out = []
        for entry in [e for e in self.table.entries(now) if e.node == name]:
            if state is not None and not state.peer.allows(entry.ip):
                self.table.remove(entry.ip)
                self.stats["entries_withdrawn"] += 1
                out += self._forget(entry)
        return out

    # ---- names ----------------------------------------------------------------------------
    def local_name(self, ip: str, name, seen: float) -> None:
        """A local host's name (its DHCP hostname): announced with it, refreshed or not."""
        entry = self.table.get(ip, self.clock())
        if entry is None or not entry.local:
            return
        known = self.names.name_of(ip)
        self.names.claim(ip, name, self.node_id, seen)
        if self.names.name_of(ip) != known:
            self.announcer.learned(entry)          # peers hear the name in the next batch

    def _name_field(self, ip: str) -> dict:
        name = self.names.name_of(ip)
        return {"name": name} if name else {}

    # ---- learning, moves and conflicts ------------------------------------------------------
    def _learnable(self, ip: str, mac: str) -> bool:
        """Never learn group MACs, nor addresses that cannot be a host's here, nor the
        gateway (whoever claims it, a peer included: counted)."""
        if mac == self.gateway_mac or ip in self.gateway_ips:
            self.stats["gateway_not_learned"] += 1
            return False
        return is_unicast_mac(mac) and self._host_address(ip)

    def _host_address(self, ip: str) -> bool:
        """Not unspecified, loopback, multicast or broadcast, not the anycast gateway, and
        inside the configured overlay subnets of its family (if any)."""
        return self._family(ip).host_address(ip) and self.options.in_overlay(ip) and \
            ip not in self.gateway_ips

    # ---- DHCP leases (leases.py) ------------------------------------------------------------
    def learn_lease(self, ip: str, mac: str, port: int, now: float) -> list:
        """The site's DHCP server acked ip to mac on port: a local host from now on,
        announced to every peer at once, as its gratuitous ARP would be."""
        if not self._learnable(ip, mac):
            self.stats["lease_not_learned"] += 1
            return []
        family = self._family(ip)
        granted = Sighting(family, request=False, resolve=False, sender_ip=ip, sender_mac=mac,
                           target=ip, to_mac=mac, probe=False, gratuitous=True, eth_src=mac)
        return self._learn_local(granted, port, now)

    def withdraw_local(self, ip: str, mac: str, now: float) -> list:
        """A local host's lease ended: forget it here and at every peer (if it still holds
        ip at mac: a host that took the address since keeps it)."""
        entry = self.table.get(ip, now)
        if entry is None or not entry.local or entry.mac != mac:
            return []
        self.table.remove(ip)
        self.announcer.gone(ip)
        self.stats["entries_withdrawn"] += 1
        return self._forget(entry)

    def _learn_local(self, seen: Sighting, port: int, now: float) -> list:
        """A host on our bridge spoke: it is here, now. A gratuitous ARP or unsolicited NA,
        or a host that was known elsewhere or with another MAC, is announced to every peer
        (moves, conflicts)."""
        ip, mac, family = seen.sender_ip, seen.sender_mac, seen.family
        out = self._router(ip, seen.router, now) if not seen.request else []
        old = self.table.get(ip, now)
        out += self._learn(ip, mac, self.node_id, port, now, self.wallclock())
        moved = old is not None and (old.node != self.node_id or old.mac != mac)
        if moved or (seen.gratuitous and (old is None or old.port != port)):
            self.stats["announcements_sent"] += 1      # at once: every site must learn a move
            out += self.members.to_peers(family.reply_type, **family.claim(ip, mac),
                                         **self._name_field(ip))
            self.announcer.announced[ip] = now
        elif old is None or old.port != port:
            self.announcer.learned(self.table.get(ip, now))
        return out

    def _router(self, ip: str, router: bool, now: float) -> list:
        """The owner said whether it is a router (ND): its responder follows."""
        family = self._family(ip)
        if not family.learned_router(ip, router) or ip not in family.responders:
            return []
        return self._responder(ip, now)

    def _claim(self, ip: str, mac: str, node: str, seen: float, now: float) -> list:
        """A peer says node has ip at mac as of `seen`. Deterministic rule: the latest claim
        wins (ties: the greater node id), so every site ends with the same owner."""
        entry = self.table.get(ip, now)
        family = self._family(ip)
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
                out += self.relayer.flood_local(family.remind(ip, mac), None)
            return out
        # the claim is older than what we know: keep ours, and tell the claimer if it is ours
        self.stats["host_conflict"] += entry.mac != mac
        self.stats["claims_rejected"] += 1
        LOG.warning("conflict: %s claimed by %s at %s, kept %s on %s (newer)", ip, node, mac,
                    entry.mac, entry.node)
        if entry.local:     # with our claim's own time (age), so it does not look newer
            return self.members.to_peer(node, family.reply_type, **family.claim(ip, entry.mac),
                                        age=round(max(0.0, self.wallclock() - entry.seen), 6))
        return []

    def _learn(self, ip, mac, node, port, now, seen) -> list:
        what, old, new = self.table.learn(ip, mac, node, port, now, seen)
        if old is not None and (old.node, old.mac) != (node, mac):
            self.names.drop(ip)         # another host now: its name comes with its claim
        out = []
        if what != REFRESHED:
            self.stats["entries_learned"] += 1
            LOG.debug("learned %s at %s on %s%s", ip, mac, node,
                      f" (was {old.mac} on {old.node})" if old else "")
            if old is not None:     # the datapath's idea of where these MACs live is stale
                out += delete_learned_mac(old.mac)
                if old.mac != mac:
                    out += delete_learned_mac(mac)
        family = self._family(ip)
        if old is not None and self.proxied(old) and not self.proxied(new):
            out += family.remove(ip)
        if self.proxied(new) and (what != REFRESHED or
                                  family.responders.get(ip, 0) < new.expires_at - 1):
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
        return out + self.relayer.tick(now)

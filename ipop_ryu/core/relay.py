"""Requests that cross sites as ICC, for either family: the local hosts waiting for an answer
from another site, relay resends, and the requests of other sites replayed on our LAN.

A request for a target not known here is relayed to every peer (`arp_request`/`nd_request`),
resent 0.25, 0.5 and 1 s later while unanswered, within a budget of resends per second, and
asked again at once of a peer that comes up. A peer's request for a target we do not know is
replayed on our local ports as the requester would send it; a short-lived catch flow (in
before the replay) sends the owner's answer to the controller only, which returns it as ICC.
ARP has one catch flow per remote requester (CATCH_SPAN pending_timeouts, so a burst of
relays costs one flow-mod), ND one per replayed target (a DAD defence goes to all-nodes).
"""
from dataclasses import dataclass
from typing import Dict

from .families import family_of
from .family import Requester
from .intents import PacketOut
from .timers import Budget, Every

RETRY_FIRST = 0.25            # an unanswered relay is resent after 0.25, 0.5 and 1 s; then
RETRY_MAX = 3                 # the host's own next request (about 1 s later) starts anew
RETRY_BUDGET = 100            # resends per second at most: a flood of requests for absent
                              # hosts costs one relay each, not four
CATCH_SPAN = 2                # a requester's catch flow lives 2 pending_timeouts (ARP)


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


class Relayer:
    def __init__(self, options, stats, clock, ports, members, families):
        self.options, self.stats, self.ports, self.members = options, stats, ports, members
        self.families = families
        self.pending: Dict[str, Dict[str, Requester]] = {}   # target ip -> requester ip -> ...
        self.relays: Dict[str, Dict[str, Relay]] = {}        # target ip -> node -> ...
        self.retries: Dict[str, Retry] = {}                  # target ip -> next resend
        self.catching: Dict[str, float] = {}    # requester mac -> its catch flow lasts until
        self._cleanup = Every(1.0)
        self._retry_budget = Budget(RETRY_BUDGET, clock())

    def wait(self, target: str, requester: Requester, now: float) -> list:
        """A local host asks for a target nobody here knows: relay, unless already asked."""
        self.pending.setdefault(target, {})[requester.ip] = requester
        return self._relay(target, 0, now) if target not in self.retries else []

    def _relay(self, target: str, attempt: int, now: float) -> list:
        """Ask every peer who has target, on behalf of one of the hosts waiting for it."""
        requester = next(iter(self.pending[target].values()))
        family = family_of(self.families, target)
        self.retries[target] = Retry(attempt + 1, now + RETRY_FIRST * 2 ** attempt)
        self.stats[f"{family.name}_relayed_to_peers" if attempt == 0
                   else f"{family.name}_relay_retries"] += 1
        return self.members.to_peers(family.request_type, sender_ip=requester.ip,
                                     sender_mac=requester.mac, target_ip=target)

    def answered(self, target: str) -> Dict[str, Requester]:
        """The hosts that waited for target (an answer came): no more resends."""
        self.retries.pop(target, None)
        return self.pending.pop(target, {})

    def replay(self, node: str, sender_ip: str, sender_mac: str, target: str, now: float):
        relay = Relay(node, sender_ip, sender_mac, now + self.options.pending_timeout)
        self.relays.setdefault(target, {})[node] = relay
        family = family_of(self.families, target)
        self.stats[f"{family.name}_replayed_locally"] += 1
        return self._replay(family, target, relay, now)

    def _replay(self, family, target: str, relay: Relay, now: float) -> list:
        """Ask our hosts for target as the remote requester would; the owner's reply is
        punted back to us by the catch flow, which goes first (in order)."""
        return self._catch(family, target, relay, now) + self.flood_local(
            family.replay(relay.ip, relay.mac, target), None)

    def _catch(self, family, target: str, relay: Relay, now: float) -> list:
        """The catch flow for a replay; ARP's is the requester's, unless one in the bridge
        already outlives this relay: a stream of relays for one requester costs one flow-mod
        per pending_timeout, not one each."""
        if not family.catch_per_requester:
            return [family.relay_catch(target, relay.ip, relay.mac,
                                       self.options.pending_timeout)]
        if self.catching.get(relay.mac, 0.0) >= relay.until:
            return []
        span = CATCH_SPAN * self.options.pending_timeout
        self.catching[relay.mac] = now + span
        return [family.relay_catch(target, relay.ip, relay.mac, span)]

    def flood_local(self, data: bytes, in_port) -> list:
        ports = self.ports.flood_from(in_port)
        return [PacketOut(data, ports)] if ports else []

    def replay_waiting(self, now: float) -> list:
        """Replays asked for while the bridge was away (a cold start: peers relay to us
        before our switch connects) go out once it is back, not at the peer's next retry."""
        out = []
        self.catching.clear()           # a new connection: the bridge's flows may be gone
        for target, relays in self.relays.items():
            live = [r for r in relays.values() if r.until > now]
            if live:
                out += self._replay(family_of(self.families, target), target, live[0], now)
        return out

    def drop_gone_ports(self):
        """Hosts whose port left the bridge wait no more (a retry would revive them)."""
        for target, requesters in list(self.pending.items()):
            for ip in [ip for ip, r in requesters.items() if r.port not in self.ports]:
                del requesters[ip]
            if not requesters:
                del self.pending[target]

    def peer_up(self, name: str, now: float) -> list:
        """A peer came up or restarted: what our hosts wait for may be there, so ask it at
        once instead of at the next retry (a cold start: sites come up one by one, and a
        relay sent before a peer listened was lost). Spends the retry budget."""
        out = []
        for target, requesters in self.pending.items():
            waiting = next((r for r in requesters.values() if r.until > now), None)
            if waiting is None:
                continue
            family = family_of(self.families, target)
            if not self._retry_budget.take(now):
                self.stats[f"{family.name}_relay_retries_skipped"] += 1
                break
            self.stats[f"{family.name}_relayed_to_arrived_peer"] += 1
            out += self.members.to_peer(name, family.request_type, sender_ip=waiting.ip,
                                        sender_mac=waiting.mac, target_ip=target)
        return out

    def peer_down(self, name: str):
        for relays in self.relays.values():
            relays.pop(name, None)

    def tick(self, now: float) -> list:
        out = []
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
                    family = family_of(self.families, target)
                    self.stats[f"{family.name}_relay_retries_skipped"] += 1
                    continue
                out += self._relay(target, retry.attempt, now)
        return out

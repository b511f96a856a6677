"""Requests that cross sites as ICC, for either family: the local hosts waiting for an answer
from another site, relay resends, and the requests of other sites replayed on our LAN.

A request for a target not known here is relayed to every peer (`arp_request`/`nd_request`),
resent 0.25, 0.5 and 1 s later while unanswered, within a budget of resends per second. A
peer's request for a target we do not know is replayed on our local ports as the requester
would send it; a short-lived catch flow (in before the replay) sends the owner's answer to
the controller only, which returns it as ICC.
"""
from dataclasses import dataclass
from typing import Dict

from .family import Requester, family_of
from .intents import PacketOut
from .timers import Budget, Every

RETRY_FIRST = 0.25            # an unanswered relay is resent after 0.25, 0.5 and 1 s; then
RETRY_MAX = 3                 # the host's own next request (about 1 s later) starts anew
RETRY_BUDGET = 100            # resends per second at most: a flood of requests for absent
                              # hosts costs one relay each, not four


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
        self.stats[f"{family_of(self.families, target).name}_replayed_locally"] += 1
        return self._replay(target, relay)

    def _replay(self, target: str, relay: Relay) -> list:
        """Ask our hosts for target as the remote requester would; the owner's reply is
        punted back to us by the catch flow, which goes first (in order)."""
        family = family_of(self.families, target)
        catch = family.relay_catch(target, relay.ip, relay.mac, self.options.pending_timeout)
        return [catch] + self.flood_local(family.replay(relay.ip, relay.mac, target), None)

    def flood_local(self, data: bytes, in_port) -> list:
        ports = self.ports.flood_from(in_port)
        return [PacketOut(data, ports)] if ports else []

    def replay_waiting(self, now: float) -> list:
        """Replays asked for while the bridge was away (a cold start: peers relay to us
        before our switch connects) go out once it is back, not at the peer's next retry."""
        out = []
        for target, relays in self.relays.items():
            live = [r for r in relays.values() if r.until > now]
            if live:
                out += self._replay(target, live[0])
        return out

    def drop_gone_ports(self):
        """Hosts whose port left the bridge wait no more (a retry would revive them)."""
        for target, requesters in list(self.pending.items()):
            for ip in [ip for ip, r in requesters.items() if r.port not in self.ports]:
                del requesters[ip]
            if not requesters:
                del self.pending[target]

    def peer_down(self, name: str):
        for relays in self.relays.values():
            relays.pop(name, None)

    def tick(self, now: float) -> list:
        out = []
        if self._cleanup.due(now):
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

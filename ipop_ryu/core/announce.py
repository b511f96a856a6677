"""Proactive announcements (EVPN route type 2 / Neutron l2population style): every local host
is announced to all peers when learned, refreshed before it would age out there, and
withdrawn when it ages out, moves away or its port leaves the bridge.

Peers then answer for our hosts from their own responder flows before anyone asks, and keep
answering while our controller is away, until the entry's timeout. `announce = false` keeps
the seed's pure pull mode (relay on demand). Announcements go in `bindings` batches (many
hosts per datagram) at most ANNOUNCE_INTERVAL apart; a host is refreshed at most once per
arp_timeout/3, and only if it was seen since its last announcement.
"""
from typing import Dict, List

from .icc import MAX_BINDINGS, bindings_fields
from .neighbour_table import Entry
from .timers import Every

ANNOUNCE_INTERVAL = 0.1       # what was learned in this time goes in one batch
REFRESH_SWEEP = 1.0           # how often local entries are checked for a due refresh


class Announcer:
    def __init__(self, enabled: bool, arp_timeout: float, members, wallclock,
                 is_router=lambda ip: False, name_of=lambda ip: None):
        self.enabled = enabled
        self.refresh_after = arp_timeout / 3.0
        self.members, self.wallclock, self.is_router = members, wallclock, is_router
        self.name_of = name_of
        self.announced: Dict[str, float] = {}    # local ip -> when we last announced it
        self._new: Dict[str, Entry] = {}
        self._gone: Dict[str, None] = {}
        self._flush = Every(ANNOUNCE_INTERVAL)
        self._sweep = Every(REFRESH_SWEEP)

    def learned(self, entry: Entry):
        """A local host appeared, or changed MAC or port."""
        if self.enabled:
            self._new[entry.ip] = entry
            self._gone.pop(entry.ip, None)

    def gone(self, ip: str):
        """A local host aged out, moved away or lost its port."""
        if self.enabled and (self.announced.pop(ip, None) is not None or
                             self._new.pop(ip, None) is not None):
            self._gone[ip] = None

    def tick(self, now: float, local_entries) -> list:
        if not self.enabled or not self.members.peers.states:
            return []
        if self._sweep.due(now):
            for entry in local_entries():
                last = self.announced.get(entry.ip)
                if last is not None and now - last >= self.refresh_after and \
                        entry.refreshed_at > last:
                    self._new[entry.ip] = entry
        if not (self._new or self._gone) or not self._flush.due(now):
            return []
        out = []
        wall = self.wallclock()
        if self._new:
            batch = [(e.ip, e.mac, max(0, int(wall - e.seen)), self.is_router(e.ip),
                      self.name_of(e.ip)) for e in self._new.values()]
            for fields in bindings_fields(batch):
                out += self.members.to_peers("bindings", **fields)
            for ip in self._new:
                self.announced[ip] = now
            self.members.stats["announced"] += len(self._new)
            self._new = {}
        if self._gone:
            gone: List[str] = list(self._gone)
            for start in range(0, len(gone), MAX_BINDINGS):
                out += self.members.to_peers("withdraw", ips=gone[start:start + MAX_BINDINGS])
            self.members.stats["withdrawn_sent"] += len(gone)
            self._gone = {}
        return out

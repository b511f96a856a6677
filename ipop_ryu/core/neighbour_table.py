"""The learned table: IP -> MAC, owning site (node) and port, with aging; one table for both
families (IPv4 from ARP, IPv6 from ND), listed in one order: IPv4 first, then IPv6.

Every operation costs in proportion to what changes, not to the table's size (100,000 entries
is an ordinary overlay): expiry comes off a heap, per-node and local/remote counts are kept as
entries come and go, withdrawal of a node walks only that node's addresses, and the sorted
order that listings page through is built only when a listing asks after a change.
"""
import heapq
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Set, Tuple

from .addr import V6_KEY_BASE, ip_key, ip_of_key


@dataclass(frozen=True, slots=True)        # slots: about 100 bytes less per entry
class Entry:
    ip: str
    mac: str
    node: str                 # node_id of the site whose bridge the host is on
    local: bool               # owned by this site (answer with the host itself, no proxy flow)
    port: Optional[int]       # OpenFlow port of a local host; None for a remote one
    learned_at: float
    refreshed_at: float
    expires_at: float
    seen: float = 0.0         # wall-clock time the owning site last vouched for it (claims)
    key: int = 0              # sort key: the address as an integer (see addr.ip_key)

    def expires_in(self, now: float) -> float:
        return max(0.0, self.expires_at - now)


# What a learn() did, so the caller knows which flows to touch.
NEW, REFRESHED, CHANGED = "new", "refreshed", "changed"


def sort_key(ip: str) -> int:
    value = ip_key(ip)
    return value if value is not None else 0


__all__ = ["Entry", "NeighbourTable", "sort_key", "ip_of_key", "NEW", "REFRESHED", "CHANGED"]


class NeighbourTable:
    """The learned neighbours of both families, aged by one timeout (option arp_timeout)."""

    def __init__(self, node_id: str, timeout: float):
        self.node_id = node_id
        self.timeout = timeout
        self._entries: Dict[str, Entry] = {}
        self._expiry: List[Tuple[float, str]] = []     # (expires_at, ip); stale ones skipped
        self._by_node: Dict[str, Set[str]] = {}
        self.local_count = 0
        self.ipv6_count = 0                             # entries of the ND family
        self._order: Optional[List[int]] = None         # sort keys, None after a change

    def __len__(self):
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        """Every entry, live or not yet expired by expire(), in no particular order."""
        return iter(self._entries.values())

    @property
    def remote_count(self) -> int:
        return len(self._entries) - self.local_count

    def node_count(self, node: str) -> int:
        return len(self._by_node.get(node, ()))

    def node_counts(self) -> Counter:
        return Counter({node: len(ips) for node, ips in self._by_node.items()})

    def of_node(self, node: str, now: float) -> List[Entry]:
        """The live entries one site owns (for this node: our own hosts)."""
        return [e for e in map(self._entries.get, self._by_node.get(node, ()))
                if e is not None and e.expires_at > now]

    def get(self, ip: str, now: float) -> Optional[Entry]:
        """The live entry for ip; an expired one is never returned, even before expire() runs."""
        entry = self._entries.get(ip)
        if entry is None or entry.expires_at <= now:
            return None
        return entry

    def entries(self, now: float) -> List[Entry]:
        """Every live entry, by address (a whole-table copy: listings use page())."""
        return [e for e in map(self._entries.__getitem__, self._sorted())
                if e.expires_at > now]

    def page(self, now: float, after: Optional[str] = None, limit: int = 1000) \
            -> Tuple[List[Entry], Optional[str]]:
        """Up to limit live entries by address, starting after the address `after`; and the
        address to continue after (None at the end)."""
        keys = self._sorted_keys()
        index = bisect_right(keys, sort_key(after)) if after else 0
        out: List[Entry] = []
        while index < len(keys) and len(out) < limit:
            entry = self._entries.get(ip_of_key(keys[index]))
            if entry is not None and entry.expires_at > now:
                out.append(entry)
            index += 1
        return out, (out[-1].ip if out and index < len(keys) else None)

    def _sorted(self) -> List[str]:
        return [ip_of_key(key) for key in self._sorted_keys()]

    def _sorted_keys(self) -> List[int]:
        """Addresses as integers, sorted: ints sort several times faster than entries by
        an attribute (12 ms instead of 35 ms at 100,000), and hold no strings."""
        if self._order is None:
            self._order = sorted([e.key for e in self._entries.values()])
        return self._order

    def learn(self, ip: str, mac: str, node: str, port: Optional[int], now: float,
              seen: float = 0.0) -> Tuple[str, Optional[Entry], Entry]:
        """Insert or refresh ip. Returns (what happened, previous live entry, new entry)."""
        old = self.get(ip, now)
        expires_at = now + self.timeout
        if old is not None and (old.mac, old.node, old.port) == (mac, node, port):
            new = Entry(ip, mac, node, old.local, port, old.learned_at, now,   # (hot path:
                        max(old.expires_at, expires_at), max(old.seen, seen),  # no replace())
                        old.key)
            what = REFRESHED
        else:
            local = node == self.node_id
            new = Entry(ip, mac, node, local, port if local else None, now, now, expires_at,
                        seen, sort_key(ip))
            what = NEW if old is None else CHANGED
        self._put(new)
        return what, old, new

    def _put(self, new: Entry):
        old = self._entries.get(new.ip)
        if old is None:
            self._order = None
            self.ipv6_count += new.key >= V6_KEY_BASE
        elif old.node != new.node or old.local != new.local:
            self._unindex(old)
        if old is None or old.node != new.node or old.local != new.local:
            self._by_node.setdefault(new.node, set()).add(new.ip)
            self.local_count += new.local
        self._entries[new.ip] = new
        if old is None or new.expires_at != old.expires_at:
            heapq.heappush(self._expiry, (new.expires_at, new.ip))
            if len(self._expiry) > 2 * len(self._entries) + 1024:     # refreshes pile up
                self._expiry = [(e.expires_at, e.ip) for e in self._entries.values()]
                heapq.heapify(self._expiry)

    def _unindex(self, entry: Entry):
        ips = self._by_node.get(entry.node)
        if ips is not None:
            ips.discard(entry.ip)
            if not ips:
                del self._by_node[entry.node]
        self.local_count -= entry.local

    def remove(self, ip: str) -> Optional[Entry]:
        entry = self._entries.pop(ip, None)
        if entry is not None:
            self._unindex(entry)
            self._order = None
            self.ipv6_count -= entry.key >= V6_KEY_BASE
        return entry

    def expire(self, now: float) -> List[Entry]:
        """Drop and return every entry whose lifetime has run out (heap order: the cost is
        the number that expire, plus the stale heap items of refreshed ones)."""
        gone = []
        while self._expiry and self._expiry[0][0] <= now:
            _, ip = heapq.heappop(self._expiry)
            entry = self._entries.get(ip)
            if entry is not None and entry.expires_at <= now:
                gone.append(self.remove(ip))
        return gone

    def remove_node(self, node: str) -> List[Entry]:
        """Withdraw everything learned from one site (used when a peer goes away)."""
        return [self.remove(ip) for ip in sorted(self._by_node.get(node, ()))]

"""The learned table: IP -> MAC, owning site (node) and port, with aging."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple


@dataclass(frozen=True)
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

    def expires_in(self, now: float) -> float:
        return max(0.0, self.expires_at - now)


# What a learn() did, so the caller knows which flows to touch.
NEW, REFRESHED, CHANGED = "new", "refreshed", "changed"


class ArpTable:
    def __init__(self, node_id: str, timeout: float):
        self.node_id = node_id
        self.timeout = timeout
        self._entries: Dict[str, Entry] = {}

    def __len__(self):
        return len(self._entries)

    def get(self, ip: str, now: float) -> Optional[Entry]:
        """The live entry for ip; an expired one is never returned, even before expire() runs."""
        entry = self._entries.get(ip)
        if entry is None or entry.expires_at <= now:
            return None
        return entry

    def entries(self, now: float) -> List[Entry]:
        return sorted((e for e in self._entries.values() if e.expires_at > now),
                      key=lambda e: tuple(int(x) for x in e.ip.split(".")))

    def learn(self, ip: str, mac: str, node: str, port: Optional[int], now: float,
              seen: float = 0.0) -> Tuple[str, Optional[Entry], Entry]:
        """Insert or refresh ip. Returns (what happened, previous live entry, new entry)."""
        old = self.get(ip, now)
        local = node == self.node_id
        expires_at = now + self.timeout
        if old is not None and (old.mac, old.node, old.port) == (mac, node, port):
            new = Entry(ip, mac, node, old.local, port, old.learned_at, now,   # (hot path:
                        max(old.expires_at, expires_at), max(old.seen, seen))  # no replace())
            what = REFRESHED
        else:
            new = Entry(ip, mac, node, local, port if local else None, now, now, expires_at,
                        seen)
            what = NEW if old is None else CHANGED
        self._entries[ip] = new
        return what, old, new

    def remove(self, ip: str) -> Optional[Entry]:
        return self._entries.pop(ip, None)

    def expire(self, now: float) -> List[Entry]:
        """Drop and return every entry whose lifetime has run out."""
        gone = [e for e in self._entries.values() if e.expires_at <= now]
        for entry in gone:
            del self._entries[entry.ip]
        return gone

    def remove_node(self, node: str) -> List[Entry]:
        """Withdraw everything learned from one site (used when a peer goes away)."""
        gone = [e for e in self._entries.values() if e.node == node]
        for entry in gone:
            del self._entries[entry.ip]
        return gone

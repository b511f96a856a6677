"""Peer liveness: who was heard from, when, and whether it restarted since; and the claims
refused lately by a peer's allowed_ips."""
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .config import Peer

REPLAY_WINDOW = 1024    # sequence numbers remembered below the highest seen (reordering room)
REFUSALS_KEPT = 64      # (peer, address) pairs of refused claims remembered, for `doctor`
REFUSALS_WINDOW = 300.0  # s: a pair refused no more for this long is forgotten


@dataclass
class PeerState:
    peer: Peer
    up: bool = False
    last_heard: Optional[float] = None
    boot: Optional[str] = None          # the peer's boot id from its last hello
    since: Optional[float] = None       # when `up` last changed
    sent: int = 0
    received: int = 0
    max_seq: int = -1
    seen: int = 0                       # bit i set: max_seq - i was accepted
    clock_offset: Optional[float] = None  # our clock - its timestamp, last signed datagram

    @property
    def name(self):
        return self.peer.name

    def fresh_seq(self, seq: int) -> bool:
        """Anti-replay (as IPsec does): accept each sequence number once, allowing reordering
        within REPLAY_WINDOW. Senders start from their clock in microseconds, so a restarted
        peer continues above its old numbers."""
        if seq > self.max_seq:
            shift = seq - self.max_seq
            self.seen = ((self.seen << shift) | 1) & ((1 << REPLAY_WINDOW) - 1) \
                if shift < REPLAY_WINDOW else 1
            self.max_seq = seq
            return True
        offset = self.max_seq - seq
        if offset >= REPLAY_WINDOW or self.seen >> offset & 1:
            return False
        self.seen |= 1 << offset
        return True


class Peers:
    def __init__(self, peers, hold_time: float):
        self.hold_time = hold_time
        self.states: Dict[str, PeerState] = {p.name: PeerState(p) for p in peers}

    def get(self, name) -> Optional[PeerState]:
        return self.states.get(name)

    def __iter__(self):
        return iter(self.states.values())

    def heard(self, name: str, now: float, boot: str = None) -> Tuple[bool, bool]:
        """Record a valid message. Returns (came up, restarted): either way it needs our state."""
        state = self.states[name]
        state.received += 1
        state.last_heard = now
        came_up = not state.up
        if came_up:
            state.up, state.since = True, now
        restarted = boot is not None and state.boot is not None and boot != state.boot
        if boot is not None:
            state.boot = boot
        return came_up, restarted

    def expire(self, now: float) -> List[PeerState]:
        """Mark down, and return, the peers silent for longer than the hold time."""
        gone = [s for s in self.states.values()
                if s.up and now - s.last_heard > self.hold_time]
        for state in gone:
            state.up, state.since = False, now
        return gone


@dataclass
class Refusal:
    """Claims of one address by one peer refused by its allowed_ips since `first`."""
    peer: str
    address: str
    count: int
    first: float
    last: float


class RecentRefusals:
    """The (peer, address) pairs refused lately, the least recently refused first: at most
    `kept` of them (a peer claiming a whole range costs no more), each forgotten once refused
    no more for `window` seconds. What `doctor` names; the counter keeps the total."""

    def __init__(self, kept: int = REFUSALS_KEPT, window: float = REFUSALS_WINDOW):
        self.kept, self.window = kept, window
        self._pairs: "OrderedDict[Tuple[str, str], Refusal]" = OrderedDict()

    def add(self, peer: str, address: str, now: float):
        refusal = self._pairs.pop((peer, address), None)
        if refusal is None or now - refusal.last > self.window:
            refusal = Refusal(peer, address, 0, now, now)
        refusal.count += 1
        refusal.last = now
        self._pairs[(peer, address)] = refusal
        while len(self._pairs) > self.kept:
            self._pairs.popitem(last=False)

    def recent(self, now: float, peer: Optional[str] = None) -> List[Refusal]:
        """The pairs refused within the window (of one peer, if given), oldest first."""
        while self._pairs:           # ordered by last refusal: the aged ones are in front
            key, oldest = next(iter(self._pairs.items()))
            if now - oldest.last <= self.window:
                break
            del self._pairs[key]
        return [r for r in self._pairs.values() if peer is None or r.peer == peer]

    def forget(self, peer: str):
        """A peer removed, or its allowed_ips changed: what it was refused no longer holds."""
        for key in [k for k in self._pairs if k[0] == peer]:
            del self._pairs[key]

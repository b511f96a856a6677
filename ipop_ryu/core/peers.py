"""Peer liveness: who was heard from, when, and whether it restarted since."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .config import Peer

REPLAY_WINDOW = 1024    # sequence numbers remembered below the highest seen (reordering room)


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

"""Peer liveness: who was heard from, when, and whether it restarted since."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .config import Peer


@dataclass
class PeerState:
    peer: Peer
    up: bool = False
    last_heard: Optional[float] = None
    boot: Optional[str] = None          # the peer's boot id from its last hello
    since: Optional[float] = None       # when `up` last changed
    sent: int = 0
    received: int = 0

    @property
    def name(self):
        return self.peer.name


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

"""Peers over ICC: checking who speaks, liveness, and keeping peers' state in sync.

Owns the codec and the sequence numbers, hellos and hold times, the per-peer syncs (our local
hosts in `bindings` batches, paced, ended by `sync_end`) and the graceful restart (RFC 4724
style): after a restart the flows left on the bridge keep answering while every peer resends
its hosts; only once each has said `sync_end` (or GRACEFUL_TIMEOUT passed) may what is still
unclaimed be deleted. What the messages mean for the learned table is the neighbours' part.
"""
import logging
import secrets
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Set, Tuple

from .config import Options, read_key
from .icc import (REPLAY, STALE, UNKNOWN_PEER, Codec, Drop, Link, Message, NodeCodec,
                  bindings_fields, encode_payload)
from .intents import IccSend
from .keys import decode_key, pair_keys
from .peers import Peers, PeerState, RecentRefusals
from .timers import Budget, Every

LOG = logging.getLogger("ipop_ryu")

DROP_LOG_INTERVAL = 10.0
SYNC_RATE = 400               # bulk datagrams per second to one peer (about 12,000 bindings)
SYNC_BURST = 40               # sent at once when a sync starts
SYNC_REPEAT_AFTER = 1.0       # a sync_request this soon after a sync started is the same ask
SYNC_RETRIES = 2              # a sync that came short (loss) is asked for again this often
SYNC_LATE_GRACE = 1.0         # s: bindings overtaken by their sync_end may still come


@dataclass
class SyncJob:
    """Our local hosts on their way to one peer."""
    peer: str
    batches: deque                   # lists of [ip, mac(, age)], each one datagram
    started: float
    budget: Budget
    sent: int = 0


@dataclass
class GracefulRestart:
    """Deletions held back until every peer has resent its state, or the deadline."""
    active: bool
    deadline: float
    waiting_for: Set[str] = field(default_factory=set)
    received: Counter = field(default_factory=Counter)     # bindings per peer since asked
    asked: Counter = field(default_factory=Counter)        # sync_requests per peer
    expected: Dict[str, int] = field(default_factory=dict)  # a sync_end's count, come early


class Membership:
    def __init__(self, options: Options, stats: Counter, clock, wallclock,
                 local_bindings: Callable[[float], Iterable[Tuple[str, str, float]]]):
        self.options, self.stats, self.clock, self.wallclock = options, stats, clock, wallclock
        self.node_id = options.node_id
        self.codec = make_codec(options) if options.icc else None
        self.peers = Peers(options.peers if options.icc else (), options.peer_hold_time)
        self.boot = secrets.token_hex(8)      # tells peers we restarted
        self.local_bindings = local_bindings  # now -> (ip, mac, age) of our own hosts
        self.hellos = Every(options.hello_interval)
        self.syncs: Dict[str, SyncJob] = {}
        self._requested: Dict[str, float] = {}    # peer -> when we last asked it for a sync
        self._sync_started: Dict[str, float] = {}  # peer -> when our last sync to it began
        self._seq = int(wallclock() * 1e6)        # increases across restarts (see Peers)
        self._drop_logged: Dict[str, float] = {}
        self.refusals = RecentRefusals()          # claims refused by allowed_ips, lately
        self.arrived: List[str] = []              # peers up or restarted, for the caller
        self.hello_fields: Dict[str, object] = {}  # more for our hellos (the gateway's)
        now = clock()
        self.graceful = GracefulRestart(
            bool(self.peers.states), now + max(5.0, options.peer_hold_time),
            set(self.peers.states))

    # ---- receiving ----------------------------------------------------------------------------
    def receive(self, data: bytes, addr, received_at: Optional[float]) \
            -> Tuple[Optional[Message], list]:
        """Check a datagram; return (the message if it is believed, what to send at once)."""
        try:
            message = self.codec.decode(data)
            self._check_origin(message, addr, received_at)
        except Drop as drop:
            self._dropped(drop, addr)
            return None, []
        self.stats["icc_received." + message.type] += 1
        now = self.clock()
        came_up, restarted = self.peers.heard(message.node, now, message.fields.get("boot"))
        out = []
        if came_up or restarted:
            LOG.info("peer %s is up%s", message.node, " (restarted)" if restarted else "")
            self.arrived.append(message.node)
            if restarted:           # what we were sending went to its previous life
                self.syncs.pop(message.node, None)
                self._sync_started.pop(message.node, None)
            out += self.start_sync(message.node, now)
        if came_up:                 # what it told us before (if anything) was withdrawn
            out += self.request_sync(message.node, now)
        if message.type == "sync_request":
            out += self.start_sync(message.node, now)
        elif message.type == "sync_end":
            self._sync_ended(message.node, message["count"], now)
        elif message.type == "bindings":
            self._requested[message.node] = now      # a sync in progress: do not ask again
            if self.graceful.active:
                self.graceful.received[message.node] += len(message["bindings"])
                self._sync_whole(message.node)
        return message, out

    def _check_origin(self, message: Message, addr, received_at: Optional[float]):
        state = self.peers.get(message.node)
        if state is None or state.peer.host != addr[0]:
            raise Drop(UNKNOWN_PEER, f"{message.node} from {addr[0]}")
        # judged by when the datagram arrived, not by how long it waited in our queue
        state.clock_offset = (self.wallclock() if received_at is None else received_at) \
            - message.ts
        skew = abs(state.clock_offset)
        if skew > self.options.icc_freshness:
            raise Drop(STALE, f"{message.node}: {skew:.0f}s off our clock")
        if not state.fresh_seq(message.seq):
            raise Drop(REPLAY, f"{message.node} seq {message.seq}")

    def allows(self, node: str, ip: str) -> bool:
        """May `node` claim ip (its allowed_ips)? Counted and logged (rate-limited) when not:
        the claim must not touch the table or the flows."""
        state = self.peers.get(node)
        if state is None or state.peer.allows(ip):
            return True
        self.stats["icc_not_allowed"] += 1
        now = self.clock()
        self.refusals.add(node, ip, now)
        if now - self._drop_logged.get("not_allowed", -DROP_LOG_INTERVAL) >= DROP_LOG_INTERVAL:
            self._drop_logged["not_allowed"] = now
            LOG.warning("%s claimed %s, outside its allowed_ips: ignored; %d such claims so "
                        "far, logging at most every %.0fs", node, ip,
                        self.stats["icc_not_allowed"], DROP_LOG_INTERVAL)
        return False

    def _dropped(self, drop: Drop, addr):
        self.stats["icc_dropped." + drop.reason] += 1
        now = self.clock()
        if now - self._drop_logged.get(drop.reason, -DROP_LOG_INTERVAL) >= DROP_LOG_INTERVAL:
            self._drop_logged[drop.reason] = now
            LOG.warning("ICC datagram from %s:%s dropped (%s); %d dropped for this reason so "
                        "far, logging at most every %.0fs", addr[0], addr[1], drop,
                        self.stats["icc_dropped." + drop.reason], DROP_LOG_INTERVAL)

    # ---- sending ------------------------------------------------------------------------------
    def to_peer(self, name: str, msg_type: str, **fields) -> List[IccSend]:
        state = self.peers.get(name)
        return self._send([state], msg_type, **fields) if state is not None else []

    def to_peers(self, msg_type: str, **fields) -> List[IccSend]:
        return self._send(list(self.peers), msg_type, **fields)

    def _send(self, states: List[PeerState], msg_type: str, **fields) -> List[IccSend]:
        """One signed datagram, the same bytes to each peer (each keeps its own replay
        window per sender, so one sequence number serves them all)."""
        if not states:
            return []
        self._seq += 1
        payload = encode_payload(msg_type, self.node_id, self._seq, self.wallclock(), **fields)
        for state in states:
            state.sent += 1
        self.stats["icc_sent." + msg_type] += len(states)
        if self.codec.per_peer:         # per-node keys: signed for each peer with its key
            return [IccSend(s.peer.addr, self.codec.seal(payload, s.name), s.name)
                    for s in states]
        data = self.codec.seal(payload)
        return [IccSend(state.peer.addr, data, state.name) for state in states]

    # ---- membership changes (a reload) -------------------------------------------------------
    def reconfigure(self, options: Options, now: float) -> Tuple[list, Dict[str, List[str]]]:
        """New peers, keys and allowed_ips, for the next datagram. Returns (what to send: a
        hello and a sync request to each new peer, so it exchanges at once; {"added",
        "removed", "changed": peer names}). Liveness, replay windows and syncs of the peers
        that stay are kept."""
        old = self.peers.states
        new = {p.name: p for p in (options.peers if options.icc else ())}
        change = {"added": sorted(set(new) - set(old)), "removed": sorted(set(old) - set(new)),
                  "changed": sorted(n for n in set(old) & set(new) if old[n].peer != new[n])}
        keys_changed = (options.private_key, options.icc_key) != \
            (self.options.private_key, self.options.icc_key)
        self.options = options
        for name in change["removed"]:
            del old[name]
            self.syncs.pop(name, None)
            self._requested.pop(name, None)
            self._sync_started.pop(name, None)
            self.graceful.waiting_for.discard(name)
        for name in change["changed"]:
            old[name].peer = new[name]
        for name in change["removed"] + change["changed"]:
            self.refusals.forget(name)
        for name in change["added"]:
            old[name] = PeerState(new[name])
        if options.icc and (keys_changed or any(change.values())):
            self.codec = make_codec(options)
        if keys_changed and not change["changed"]:
            change["changed"] = sorted(old)     # our own key: every pair key is new
        out = []
        for name in change["added"]:
            out += self.to_peer(name, "hello", boot=self.boot, **self.hello_fields)
            out += self.request_sync(name, now)
        return out, change

    # ---- syncs --------------------------------------------------------------------------------
    def request_sync(self, name: str, now: float) -> List[IccSend]:
        """Ask a peer for its hosts, unless we asked, or it sent bindings, lately (a long
        sync is still coming)."""
        if now - self._requested.get(name, -1e9) < max(2.0, self.options.hello_interval):
            return []
        self._requested[name] = now
        self.graceful.received[name] = 0
        self.graceful.expected.pop(name, None)
        self.graceful.asked[name] += 1
        return self.to_peer(name, "sync_request")

    def start_sync(self, name: str, now: float) -> List[IccSend]:
        """Give a peer our local hosts, in batches (the first burst at once, the rest paced
        by tick), then sync_end."""
        if name in self.syncs or now - self._sync_started.get(name, -1e9) < SYNC_REPEAT_AFTER:
            return []          # one at a time (a restarted peer's hello and sync_request)
        self._sync_started[name] = now
        batches = deque(bindings_fields(self.local_bindings(now)))
        self.syncs[name] = SyncJob(name, batches, now, Budget(SYNC_RATE, now, SYNC_BURST))
        self.stats["syncs_started"] += 1
        return self._pace(self.syncs[name], now)

    def _pace(self, job: SyncJob, now: float) -> List[IccSend]:
        out = []
        while job.batches and job.budget.take(now):
            fields = job.batches.popleft()
            job.sent += len(fields["bindings"])
            out += self.to_peer(job.peer, "bindings", **fields)
        if not job.batches:
            out += self.to_peer(job.peer, "sync_end", count=job.sent)
            self.stats["sync_entries_sent"] += job.sent
            del self.syncs[job.peer]
        return out

    def _sync_ended(self, name: str, count: int, now: float):
        self.stats["sync_ends_received"] += 1
        graceful = self.graceful
        if not graceful.active or name not in graceful.waiting_for:
            return
        graceful.expected[name] = count
        if graceful.received[name] < count and graceful.asked[name] <= SYNC_RETRIES:
            # reordered (the rest still on its way) or lost: ask again after a grace
            self.stats["sync_incomplete"] += 1
            self._requested[name] = now - max(2.0, self.options.hello_interval) + \
                SYNC_LATE_GRACE
            return
        graceful.waiting_for.discard(name)

    def _sync_whole(self, name: str):
        """The last of a sync's bindings came after its sync_end: the sync is whole."""
        graceful = self.graceful
        if name in graceful.waiting_for and name in graceful.expected and \
                graceful.received[name] >= graceful.expected[name]:
            graceful.waiting_for.discard(name)

    # ---- time ---------------------------------------------------------------------------------
    def tick(self, now: float) -> Tuple[list, List[PeerState]]:
        """Hellos, pacing of syncs, graceful-restart deadline; returns (sends, peers that
        went down)."""
        out = []
        gone = self.peers.expire(now)
        for state in gone:
            self.syncs.pop(state.name, None)
            self.graceful.waiting_for.discard(state.name)
        if self.peers.states and self.hellos.due(now):
            out += self.to_peers("hello", boot=self.boot, **self.hello_fields)
        if self.graceful.active:
            for name in sorted(self.graceful.waiting_for):
                out += self.request_sync(name, now)      # at start, and again if it came short
        for job in list(self.syncs.values()):
            out += self._pace(job, now)
        return out, gone

    def graceful_done(self, now: float) -> bool:
        """True once, when the graceful restart ends."""
        graceful = self.graceful
        if graceful.active and (not graceful.waiting_for or now >= graceful.deadline):
            graceful.active = False
            if graceful.waiting_for:
                LOG.warning("graceful restart: no end of sync from %s after %.0fs; deleting "
                            "what is still stale", ", ".join(sorted(graceful.waiting_for)),
                            now - (graceful.deadline - max(5.0, self.options.peer_hold_time)))
            return True
        return False


def make_codec(options: Options):
    """Shared key, per-node keys, or per-node keys with the shared one for peers that have
    no public key yet (config.parse checked that every peer has one or the other)."""
    shared = Codec(options.icc_key) if options.icc_key else None
    if not options.private_key:
        return shared
    return NodeCodec(options.node_id, peer_keys(options), shared)


def peer_keys(options: Options) -> Dict[str, tuple]:
    """peer -> (send key, receive key) for the peers with a public key."""
    return {p.name: pair_keys(options.private_key, decode_key(p.public_key))
            for p in options.peers if p.public_key}


def link_from_files(key_file: str, node: str, peer: str, peer_public_key: str = None) -> Link:
    """`node` speaking to `peer` (bench tools, tests): with peer_public_key, key_file is
    node's private key (per-node keys); without, the shared key."""
    if peer_public_key is None:
        return Link(Codec(read_key(key_file, _raise)))
    with open(key_file) as handle:
        private = decode_key(handle.read())
    return Link(NodeCodec(node, {peer: pair_keys(private, decode_key(peer_public_key))}), peer)


def _raise(message):
    raise ValueError(message)

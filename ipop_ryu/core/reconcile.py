"""Flow reconciliation: what the bridge should hold, and audits whose cost follows what differs.

The owners of flows describe them per purpose (the cookie's purpose byte): a StaticSource lists
a handful of flows (pipeline, ports); a KeyedSource has one flow per subject, the cookie's low
32 bits (an IPv4 address), and builds it on demand, so nothing per entry is stored here.

An audit asks the switch for one aggregate count per purpose (a small reply however many flows
there are). Where a count differs from what the owners want, a keyed purpose is split into 16
slices by the next 4 low bits of the cookie (cookie mask) and each slice counted again, down to
slices of at most SLICE_FLOWS flows, which are listed and compared flow by flow. A slice the
switch holds nothing of is reinstalled whole; a slice nobody wants is deleted whole. Replies
come in the order the switch received the requests, after every flow-mod sent before them.
Only one audit runs at a time. The next starts AUDIT_INTERVAL seconds after the last ended
when it found a difference (or the switch reconnected), and backs off, doubling up to
AUDIT_MAX, while audits find nothing: our own changes go out in order and need no audit, which
is there for what others do (a flow removed by hand, a switch that lost flows). Each count
costs ovs-vswitchd a pass over the table it names (about 30 ms over the 200,000 flows of
100,000 entries), so requests name the purpose's table where it has one.

During a graceful restart the deletions are held back (`hold_deletes`): flows left from before
the restart keep answering until every peer has resent its state (see membership).
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from . import pipeline
from .intents import DeleteFlows, Flow, RequestAggregateStats, RequestFlowStats
from .timers import Every

AUDIT_INTERVAL = 2.0      # seconds from the end of one audit to the start of the next...
AUDIT_MAX = 16.0          # ... doubling up to this while nothing changes
COUNTER_INTERVAL = 5.0    # the responders' packet counter ("answered by flow") is read this often
AUDIT_TIMEOUT = 10.0      # an audit whose replies stop coming is abandoned
SLICE_FLOWS = 256         # a slice this small is listed flow by flow
SPLIT_BITS = 4            # a larger one is split in 16 by the next 4 low bits of the cookie
LOW_MASK = 0xFFFFFFFF


class StaticSource:
    """A purpose with a few flows, listed whole (compared by cookie, table and priority)."""

    def __init__(self, flows: Iterable[Flow] = ()):
        self.flows = list(flows)
        tables = {f.table for f in self.flows}
        self.table = tables.pop() if len(tables) == 1 else None    # None: every table

    def count(self) -> int:
        return len(self.flows)


class KeyedSource:
    """A purpose with one flow per subject: `subjects()` lists the wanted ones (cookie low
    bits), `wants(low)` asks for one, `build(low)` makes its flow (None if no longer wanted)."""

    def __init__(self, subjects: Callable[[], Iterable[int]], count: Callable[[], int],
                 wants: Callable[[int], bool], build: Callable[[int], Flow],
                 table: Optional[int] = None):
        self.subjects, self.count, self.wants, self.build = subjects, count, wants, build
        self.table = table


@dataclass(frozen=True)
class Slice:
    purpose: str
    low: int = 0           # the cookie's low 32 bits, under low_mask
    low_mask: int = 0
    bits: int = 0          # how many low bits low_mask covers
    table: Optional[int] = None

    @property
    def cookie(self) -> int:
        return pipeline.cookie(self.purpose) | self.low

    @property
    def cookie_mask(self) -> int:
        return pipeline.PURPOSE_MASK | self.low_mask

    def holds(self, low: int) -> bool:
        return low & self.low_mask == self.low


@dataclass
class _Query:
    slice: Slice
    expected: int
    subjects: Optional[List[int]] = field(default=None, repr=False)   # keyed: the wanted lows


class Reconciler:
    def __init__(self, stats: Counter):
        self.stats = stats
        self.sources: Dict[str, object] = {}
        self.hold_deletes = False
        self._after_restart = False     # the audit that follows a graceful restart
        self.every = Every(AUDIT_INTERVAL)
        self.interval = AUDIT_INTERVAL
        self._differed = False          # this audit found a count that differs
        self._queries: Dict[object, _Query] = {}      # request intent -> what it asks
        self._deadline = 0.0
        self._answered_total: Optional[int] = None    # proxy-ARP packets at the last read
        self._counters = Every(COUNTER_INTERVAL)
        self._counter_request = None

    @property
    def running(self) -> bool:
        return bool(self._queries)

    def reset(self):
        """The switch (re)connected: replies to earlier requests will never come."""
        self._queries = {}
        self._counter_request = None
        self.interval = AUDIT_INTERVAL
        self.every.soon(0.0)

    # ---- audits ----------------------------------------------------------------------------
    def tick(self, now: float) -> list:
        if self._queries and now > self._deadline:
            self.stats["flows_audits_abandoned"] += 1
            self._queries = {}
            self.every.soon(now)
        if not self._queries and self._counter_request is None and \
                self.sources.get("proxy_arp") and self._counters.due(now):
            self._counter_request = RequestAggregateStats(
                pipeline.cookie("proxy_arp"), pipeline.PURPOSE_MASK, pipeline.ARP)
            return [self._counter_request]
        if self._queries or self._counter_request is not None or not self.every.due(now):
            return []
        self.stats["flows_audits"] += 1
        self._deadline = now + AUDIT_TIMEOUT
        self._differed = False
        return [self._ask_count(Slice(purpose, table=source.table), source.count())
                for purpose, source in self.sources.items()]

    def _ask_count(self, where: Slice, expected: int, subjects=None):
        request = RequestAggregateStats(where.cookie, where.cookie_mask, where.table)
        self._queries[request] = _Query(where, expected, subjects)
        return request

    def _ask_flows(self, where: Slice, subjects=None):
        request = RequestFlowStats(where.cookie, where.cookie_mask, where.table)
        self._queries[request] = _Query(where, -1, subjects)
        return request

    def _finish(self, now: float):
        if not self._queries:
            quiet = not (self._differed or self.hold_deletes)
            self.interval = min(AUDIT_MAX, self.interval * 2) if quiet else AUDIT_INTERVAL
            self.every.next = now + self.interval
            self._after_restart = False

    def aggregate_reply(self, request, flow_count: int, packet_count: int, now: float) -> list:
        if request is self._counter_request:      # (equal to an audit's: told apart by id)
            self._counter_request = None
            self._count_answers(packet_count)
            return []
        query = self._queries.pop(request, None)
        if query is None:
            return []
        where = query.slice
        if where.purpose == "proxy_arp" and not where.low_mask:
            self._count_answers(packet_count)
        out = []
        if flow_count != query.expected:
            self._differed = True
            out = self._differs(query, flow_count)
        self._finish(now)
        return out

    def _count_answers(self, packet_count: int):
        """ARP requests the responder flows answered since the last read (a flow removed with
        its counter takes its packets along: the total only grows by what is seen)."""
        last, self._answered_total = self._answered_total, packet_count
        if last is not None and packet_count > last:
            self.stats["arp_answered_by_flow"] += packet_count - last

    def _differs(self, query: _Query, flow_count: int) -> list:
        where, source = query.slice, self.sources.get(query.slice.purpose)
        if source is None:
            return []
        if self.hold_deletes and flow_count >= query.expected:
            return []       # old flows wait for the peers' syncs; nothing provably missing
        if isinstance(source, StaticSource):
            return [self._ask_flows(where)]
        subjects = query.subjects
        if subjects is None:
            subjects = [low for low in source.subjects() if where.holds(low)]
        if flow_count == 0:                  # nothing there (a new switch): all of it, at once
            return self._install(source, subjects)
        if not subjects:                     # nothing wanted here: all of it goes, at once
            return self._delete([DeleteFlows(where.cookie, where.cookie_mask)])
        if max(flow_count, len(subjects)) <= SLICE_FLOWS or where.bits >= 32:
            return [self._ask_flows(where, subjects)]
        bits = where.bits + SPLIT_BITS
        parts: Dict[int, List[int]] = {}
        step_mask = (1 << bits) - 1
        for low in subjects:
            parts.setdefault(low & step_mask, []).append(low)
        return [self._ask_count(Slice(where.purpose, where.low | n << where.bits,
                                      step_mask, bits, where.table),
                                len(parts.get(where.low | n << where.bits, ())),
                                parts.get(where.low | n << where.bits, []))
                for n in range(1 << SPLIT_BITS)]

    def flow_stats_reply(self, request, flows: List[Tuple[int, int, int, int]],
                         now: float) -> list:
        """flows: (cookie, table, priority, n_packets) of each flow the request matched."""
        query = self._queries.pop(request, None)
        if query is None:
            return []
        source = self.sources.get(query.slice.purpose)
        if isinstance(source, StaticSource):
            out = self._compare_static(source, flows)
        elif source is not None:
            out = self._compare_keyed(query, source, flows)
        else:
            out = []
        self._finish(now)
        return out

    def _compare_static(self, source: StaticSource, flows) -> list:
        present = Counter((cookie, table, priority) for cookie, table, priority, _ in flows)
        wanted = Counter((f.cookie, f.table, f.priority) for f in source.flows)
        stale = sorted({key[0] for key in present} - {key[0] for key in wanted})
        missing = {key for key, n in wanted.items() if present[key] < n}
        repairs = [f for f in source.flows if (f.cookie, f.table, f.priority) in missing]
        self.stats["flows_repaired"] += len(repairs)
        return self._delete([DeleteFlows(cookie) for cookie in stale]) + repairs

    def _compare_keyed(self, query: _Query, source: KeyedSource, flows) -> list:
        present = {cookie & LOW_MASK for cookie, _, _, _ in flows}
        stale = sorted(low for low in present if not source.wants(low))
        subjects = query.subjects
        if subjects is None:
            subjects = [low for low in source.subjects() if query.slice.holds(low)]
        missing = [low for low in subjects if low not in present and source.wants(low)]
        cookie = pipeline.cookie(query.slice.purpose)
        out = self._delete([DeleteFlows(cookie | low) for low in stale])
        repairs = [f for f in map(source.build, missing) if f is not None]
        self.stats["flows_repaired"] += len(repairs)
        return out + repairs

    def _install(self, source: KeyedSource, subjects: List[int]) -> list:
        flows = [f for f in map(source.build, subjects) if f is not None]
        self.stats["flows_reinstalled"] += len(flows)
        return flows

    def release(self, now: float):
        """The graceful restart is over: the next audit (at once) removes what is stale."""
        self.hold_deletes = False
        self._after_restart = True
        self.every.soon(now)

    def _delete(self, deletes: List[DeleteFlows]) -> list:
        if self.hold_deletes:
            self.stats["flows_stale_held"] += len(deletes)
            return []
        self.stats["flows_removed_stale"] += len(deletes)
        if self._after_restart:
            self.stats["graceful_restart_stale_deleted"] += len(deletes)
        return deletes

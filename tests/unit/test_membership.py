"""Peers over ICC: batched and paced syncs, graceful restart, arrival-time freshness."""
import json

from ipop_ryu.core import icc, membership
from ipop_ryu.core.intents import IccSend
from ipop_ryu.core.switchmode import SwitchMode

from .helpers import Clock, mac_of, options

B = ("192.0.2.2", 30000)
PORTS = {1: "h3", 2: "h5", 10: "ipop-B"}


def body(send):
    return json.loads(send.data[36:])


def core_with_local_hosts(n, clock, **kw):
    core = SwitchMode(options("A", ["B"], peer_hold_time=1000, arp_timeout=3600, **kw),
                      clock=clock, wallclock=clock)
    core.switch_connected(PORTS)
    for i in range(n):
        ip = f"10.0.{i >> 8}.{i & 255}"
        core.neighbours._learn(ip, mac_of(ip), "A", 1, clock(), clock())
    return core


def test_a_sync_is_batched_paced_and_ends_with_its_count():
    clock = Clock()
    core = core_with_local_hosts(5000, clock)
    request = core.codec.encode("sync_request", "B", 1, clock())
    first = [s for s in core.icc_datagram(request, B) if isinstance(s, IccSend)]
    batches = [body(s) for s in first if body(s)["type"] == "bindings"]
    assert len(batches) == membership.SYNC_BURST, "a burst at once, the rest paced"
    assert all(len(s.data) <= icc.MAX_DATAGRAM for s in first)
    sent, ends, ticks = sum(len(b["bindings"]) for b in batches), [], 0
    while not ends:
        clock.now += 0.1
        ticks += 1
        step = [body(s) for s in core.tick() if isinstance(s, IccSend)]
        paced = [b for b in step if b["type"] == "bindings"]
        assert len(paced) <= membership.SYNC_RATE * 0.1 + 1
        sent += sum(len(b["bindings"]) for b in paced)
        ends = [b for b in step if b["type"] == "sync_end"]
    assert sent == 5000 and ends[0]["count"] == 5000
    assert ticks < 10, "about 30 bindings a datagram: 5,000 hosts in well under a second"


def test_one_bad_binding_drops_only_itself():
    clock = Clock()
    core = core_with_local_hosts(0, clock)
    data = core.codec.encode("bindings", "B", 1, clock(), bindings=[
        ["10.0.3.7", mac_of("10.0.3.7")], ["10.0.3.8", "ff:ff:ff:ff:ff:ff"],
        ["not an ip", mac_of("10.0.3.9")], ["10.0.3.10", mac_of("10.0.3.10"), 4], "junk"])
    core.icc_datagram(data, B)
    assert sorted(e.ip for e in core.entries()) == ["10.0.3.10", "10.0.3.7"]
    assert core.stats["icc_bindings_invalid"] == 2          # malformed: counted by the codec
    assert core.stats["icc_ignored.not_learnable"] == 1     # a group MAC: never learned
    assert core.table.get("10.0.3.10", clock()).seen == clock() - 4, "age sets the claim time"


def test_freshness_is_judged_by_arrival_not_by_our_queue():
    clock = Clock()
    core = core_with_local_hosts(0, clock)
    hello = core.codec.encode("hello", "B", 1, clock(), boot="b1")
    clock.now += 40                              # it waited 40 s in our own queue
    core.icc_datagram(hello, B, received_at=clock() - 40)
    assert core.peers.get("B").up and core.stats["icc_dropped.stale"] == 0
    late = core.codec.encode("hello", "B", 2, clock() - 40, boot="b1")
    core.icc_datagram(late, B, received_at=clock())
    assert core.stats["icc_dropped.stale"] == 1
    assert core.peers.get("B").clock_offset == 40, "kept for `ipop-ryu doctor` (and /peers)"


def test_graceful_restart_waits_for_every_peer_or_the_deadline():
    clock = Clock()
    core = SwitchMode(options("A", ["B", "C"], peer_hold_time=20), clock=clock, wallclock=clock)
    core.switch_connected(PORTS)
    asked = [s.peer for s in core.tick() if isinstance(s, IccSend)
             and body(s)["type"] == "sync_request"]
    assert sorted(asked) == ["B", "C"], "a new controller asks every peer for its state"
    assert core.graceful.waiting_for == {"B", "C"} and core.reconciler.hold_deletes
    core.icc_datagram(core.codec.encode("sync_end", "B", 5, clock(), count=0), B)
    clock.now += 1
    core.tick()
    assert core.graceful.active, "C has not answered"
    clock.now += 20                              # C never answers (down, or an old version)
    core.tick()
    assert not core.graceful.active and not core.reconciler.hold_deletes


def test_a_short_sync_is_asked_for_again():
    clock = Clock()
    core = SwitchMode(options("A", ["B"], peer_hold_time=20), clock=clock, wallclock=clock)
    core.switch_connected(PORTS)
    core.tick()
    data = core.codec.encode("bindings", "B", 5, clock(), bindings=[["10.0.3.7",
                                                                     mac_of("10.0.3.7")]])
    core.icc_datagram(data, B)
    core.icc_datagram(core.codec.encode("sync_end", "B", 6, clock(), count=3), B)  # 2 lost
    assert core.graceful.active and core.stats["sync_incomplete"] == 1
    clock.now += 0.1
    assert "sync_request" not in [body(s)["type"] for s in core.tick()
                                  if isinstance(s, IccSend)], "the rest may still be coming"
    clock.now += membership.SYNC_LATE_GRACE
    assert "sync_request" in [body(s)["type"] for s in core.tick() if isinstance(s, IccSend)]


def test_bindings_overtaken_by_their_sync_end_still_complete_the_sync():
    """UDP may reorder: the sync_end of a one-datagram sync arrives first."""
    clock = Clock()
    core = SwitchMode(options("A", ["B"], peer_hold_time=20), clock=clock, wallclock=clock)
    core.switch_connected(PORTS)
    core.tick()
    core.icc_datagram(core.codec.encode("sync_end", "B", 6, clock(), count=1), B)
    assert core.graceful.active
    data = core.codec.encode("bindings", "B", 5, clock(), bindings=[["10.0.3.7",
                                                                     mac_of("10.0.3.7")]])
    core.icc_datagram(data, B)
    clock.now += 0.1
    sends = [body(s)["type"] for s in core.tick() if isinstance(s, IccSend)]
    assert not core.graceful.active and "sync_request" not in sends


def test_a_peer_we_declared_down_is_asked_for_its_state_when_it_returns():
    clock = Clock()
    core = SwitchMode(options("A", ["B"], hello_interval=1, peer_hold_time=3), clock=clock,
                      wallclock=clock)
    core.switch_connected(PORTS)
    core.icc_datagram(core.codec.encode("hello", "B", 1, clock(), boot="b1"), B)
    clock.now += 5
    core.tick()
    assert not core.peers.get("B").up
    back = core.icc_datagram(core.codec.encode("hello", "B", 2, clock(), boot="b1"), B)
    assert "sync_request" in [body(s)["type"] for s in back if isinstance(s, IccSend)]

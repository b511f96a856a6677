"""Incremental reconciliation: audits whose cost follows what differs, on a fake flow table."""
from ipop_ryu.core import icc, pipeline, reconcile
from ipop_ryu.core.intents import (DeleteFlows, Flow, RequestAggregateStats, RequestFlowStats)
from ipop_ryu.core.switchmode import SwitchMode

from .fakeswitch import FakeSwitch
from .helpers import Clock, mac_of, options

PORTS = {1: "h3", 2: "h5", 10: "ipop-B"}


def remote_ip(n):
    return f"10.{64 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"


def loaded(n, **kw):
    """A core holding n remote entries, connected to a fake switch holding their flows."""
    clock = Clock()
    core = SwitchMode(options("A", ["B"], peer_hold_time=1000, arp_timeout=3600, **kw),
                      clock=clock, wallclock=clock)
    switch = FakeSwitch()
    switch.apply(core.switch_connected(PORTS))
    for i in range(n):
        switch.apply(core.neighbours._learn(remote_ip(i), mac_of(remote_ip(i)), "B", None,
                                            clock(), clock()))
    switch.answer(core)
    return core, switch, clock


def audit(core, switch, clock):
    """One whole audit; returns the flow intents the core sent besides its requests."""
    clock.now += reconcile.AUDIT_INTERVAL + 0.01
    switch.apply(core.tick())
    return switch.answer(core)


def responders(switch):
    return len(switch.select(pipeline.cookie("proxy_arp"), pipeline.PURPOSE_MASK))


def test_in_step_audit_is_one_small_request_per_purpose():
    core, switch, clock = loaded(5000)
    core.reconciler.hold_deletes = False
    requests = []
    clock.now += reconcile.AUDIT_INTERVAL + 0.01
    step = core.tick()
    requests += [i for i in step if isinstance(i, (RequestAggregateStats, RequestFlowStats))]
    switch.apply(step)
    assert all(isinstance(r, RequestAggregateStats) for r in requests)
    assert len(requests) <= len(pipeline.PURPOSES)
    assert switch.answer(core) == [], "nothing differs: nothing is sent"
    assert responders(switch) == 5000


def test_a_flow_removed_by_hand_is_found_by_slices_and_repaired():
    core, switch, clock = loaded(5000)
    core.reconciler.hold_deletes = False
    victim = pipeline.cookie("proxy_arp", remote_ip(1234))
    switch.apply([DeleteFlows(victim)])
    dumped = []
    original = core.flow_stats

    def counting(request, flows):
        dumped.append(len(flows))
        return original(request, flows)
    core.flow_stats = counting
    audit(core, switch, clock)
    assert switch.select(victim) and responders(switch) == 5000
    assert max(dumped) <= reconcile.SLICE_FLOWS, "only small slices are listed"
    assert sum(dumped) < 1000, "a few slices, not the whole table"
    assert core.stats["flows_repaired"] == 1
    # a flow with our cookie that no entry wants (left from an earlier run) is removed
    stale = pipeline.cookie("proxy_arp", "10.99.0.7")
    switch.apply([Flow(pipeline.ARP, 300, stale, (("arp_tpa", "10.99.0.7"),))])
    audit(core, switch, clock)
    assert not switch.select(stale) and responders(switch) == 5000
    assert sum(dumped) < 2000


def test_a_new_switch_gets_everything_without_listing_it():
    core, _, clock = loaded(3000)
    switch = FakeSwitch()                       # ovs-vswitchd restarted: an empty table
    switch.apply(core.switch_connected(PORTS))
    listed = []
    core.flow_stats = lambda request, flows: listed.append(request) or []
    switch.answer(core)
    assert responders(switch) == 3000 and not listed


def test_graceful_restart_keeps_old_flows_until_every_peer_synced():
    core, switch, clock = loaded(2000)
    # the controller restarts: a new core, an empty table, the switch keeps its flows
    fresh = SwitchMode(options("A", ["B"], peer_hold_time=1000, arp_timeout=3600),
                       clock=clock, wallclock=clock)
    assert fresh.graceful.active and fresh.reconciler.hold_deletes
    switch.apply(fresh.switch_connected(PORTS))
    switch.answer(fresh)
    for _ in range(3):
        audit(fresh, switch, clock)
    assert responders(switch) == 2000, "nothing deleted while waiting for the peers"
    # B resends its hosts (all but one, which left meanwhile) and says end of sync
    sync = [(remote_ip(i), mac_of(remote_ip(i))) for i in range(1, 2000)]
    seq = 10
    for batch in icc.bindings_batches(sync):
        seq += 1
        switch.apply(fresh.icc_datagram(
            fresh.codec.encode("bindings", "B", seq, clock(), bindings=batch),
            ("192.0.2.2", 30000)))
    assert fresh.graceful.active
    switch.apply(fresh.icc_datagram(fresh.codec.encode("sync_end", "B", seq + 1, clock(),
                                                       count=len(sync)), ("192.0.2.2", 30000)))
    clock.now += 0.1
    switch.apply(fresh.tick())
    assert not fresh.graceful.active
    switch.answer(fresh)
    assert responders(switch) == 1999
    assert not switch.select(pipeline.cookie("proxy_arp", remote_ip(0)))


def run_for(core, switch, clock, seconds):
    for _ in range(int(seconds * 10)):
        clock.now += 0.1
        switch.apply(core.tick())
        switch.answer(core)


def test_quiet_audits_back_off_and_a_difference_brings_them_back():
    core, switch, clock = loaded(100)
    core.reconciler.hold_deletes = False
    before = core.stats["flows_audits"]
    run_for(core, switch, clock, 60)
    assert core.reconciler.interval == reconcile.AUDIT_MAX
    assert core.stats["flows_audits"] - before <= 8, "2, 4, 8, 16 s apart, not every 2 s"
    switch.apply([DeleteFlows(pipeline.cookie("proxy_arp", remote_ip(7)))])
    for _ in range(int(reconcile.AUDIT_MAX + 1) * 10):
        run_for(core, switch, clock, 0.1)
        if responders(switch) == 100:
            break
    assert responders(switch) == 100, "repaired within AUDIT_MAX"
    assert core.reconciler.interval == reconcile.AUDIT_INTERVAL, "a difference: 2 s again"


def test_the_answer_counter_is_read_between_audits():
    core, switch, clock = loaded(10)
    core.stats["arp_answered_by_flow"] = 0
    reads = []
    core_reply = core.reconciler.aggregate_reply
    core.reconciler.aggregate_reply = lambda request, n, packets, now: \
        reads.append(request) or core_reply(request, n, packets + 5 * len(reads), now)
    run_for(core, switch, clock, 30)
    assert core.stats["arp_answered_by_flow"] >= 5 * 4, "read about every 5 s"

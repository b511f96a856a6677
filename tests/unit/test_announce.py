"""Proactive announcements: learned hosts announced, refreshed and withdrawn; pull mode."""
import json

from ipop_ryu.core import pipeline
from ipop_ryu.core.intents import DeleteFlows, IccSend

from .test_switchmode import PORTS_A, PORTS_B, deliver, make, of, responders
from .helpers import Clock, mac_of, who_has


def types(sends):
    return [json.loads(s.data[36:])["type"] for s in sends]


def pair(clock, **kw):
    return {"A": make("A", ["B"], PORTS_A, clock, peer_hold_time=1000, **kw),
            "B": make("B", ["A"], PORTS_B, clock, peer_hold_time=1000, **kw)}


def run(cores, clock, seconds):
    """Tick both cores for a while, delivering what they send; returns A's flow intents."""
    out = []
    for _ in range(int(seconds * 10)):
        clock.now += 0.1
        for core in cores.values():
            sends = core.tick()
            out += deliver(of(IccSend, sends), cores)
    return out


def test_a_learned_host_is_announced_and_answered_at_every_peer_before_anyone_asks():
    clock = Clock()
    cores = pair(clock)
    run(cores, clock, 1)
    cores["B"].packet_in(1, who_has("10.0.3.7", "10.0.3.104"))   # h7 speaks at B
    flows = run(cores, clock, 0.2)
    assert responders(flows, "10.0.3.7"), "A installed the responder within 0.2 s"
    entry = cores["A"].table.get("10.0.3.7", clock())
    assert entry.node == "B" and entry.mac == mac_of("10.0.3.7")
    sends = of(IccSend, cores["A"].packet_in(1, who_has("10.0.3.3", "10.0.3.7")))
    assert not sends, "no relay: A knows the host already"


def test_refresh_at_most_once_per_third_of_the_timeout_and_only_if_seen():
    clock = Clock()
    cores = pair(clock)            # arp_timeout 30: refresh after 10 s at the earliest
    run(cores, clock, 1)
    b = cores["B"]
    b.packet_in(1, who_has("10.0.3.7", "10.0.3.104"))
    run(cores, clock, 0.2)
    announced = b.stats["announced"]
    for _ in range(25):            # h7 keeps talking every second for 25 s
        b.packet_in(1, who_has("10.0.3.7", "10.0.3.104"))
        run(cores, clock, 1)
    assert b.stats["announced"] - announced == 2, "refreshed at ~10 s and ~20 s"
    assert cores["A"].table.get("10.0.3.7", clock()).expires_in(clock()) > 20
    run(cores, clock, 31)          # silent: B's entry ages out, A is told
    assert cores["A"].table.get("10.0.3.7", clock()) is None
    assert b.stats["withdrawn_sent"] == 1


def test_a_deleted_port_is_withdrawn_everywhere_within_a_second():
    clock = Clock()
    cores = pair(clock)
    run(cores, clock, 1)
    cores["B"].packet_in(2, who_has("10.0.3.104", "10.0.3.7"))
    run(cores, clock, 0.2)
    assert cores["A"].table.get("10.0.3.104", clock()) is not None
    cores["B"].ports_changed({k: v for k, v in PORTS_B.items() if k != 2})   # container gone
    flows = run(cores, clock, 0.3)
    assert cores["A"].table.get("10.0.3.104", clock()) is None
    assert set(pipeline.delete_arp_responder("10.0.3.104")) <= set(of(DeleteFlows, flows))


def test_a_withdrawal_from_a_site_that_does_not_own_the_host_is_ignored():
    clock = Clock()
    a = make("A", ["B", "C"], PORTS_A, clock, peer_hold_time=1000)
    a.icc_datagram(a.codec.encode("arp_reply", "C", 1, clock(), ip="10.0.3.9",
                                  mac=mac_of("10.0.3.9")), ("192.0.2.3", 30000))
    a.icc_datagram(a.codec.encode("withdraw", "B", 1, clock(), ips=["10.0.3.9", "bad"]),
                   ("192.0.2.2", 30000))
    assert a.table.get("10.0.3.9", clock()).node == "C"
    assert a.stats["icc_withdraw_invalid"] == 1


def test_pull_mode_announces_nothing():
    clock = Clock()
    cores = pair(clock, announce=False)
    run(cores, clock, 1)
    cores["B"].packet_in(1, who_has("10.0.3.7", "10.0.3.104"))
    sent = []
    for _ in range(20):
        clock.now += 0.1
        sent += types(of(IccSend, cores["B"].tick()))
    assert "bindings" not in sent and cores["A"].table.get("10.0.3.7", clock()) is None

"""The seed's steps 1-6 and the learned table, on two cores wired back to back (no switch)."""
import json

from ipop_ryu.core import arp, metrics, pipeline, status, switchmode
from ipop_ryu.core.intents import TABLE, DeleteFlows, Flow, IccSend, Output, PacketOut
from ipop_ryu.core.switchmode import SwitchMode

from .helpers import Clock, is_at, mac_of, options, who_has

PORTS_A = {1: "h3", 2: "h5", 10: "ipop-B", 0xFFFFFFFE: "br0"}
PORTS_B = {1: "h7", 2: "h104", 10: "ipop-A", 0xFFFFFFFE: "br0"}
ADDR = {"A": ("192.0.2.1", 30000), "B": ("192.0.2.2", 30000)}


def make(node, peers, ports, clock, **kw):
    core = SwitchMode(options(node, peers, arp_timeout=30, **kw), clock=clock, wallclock=clock)
    core.switch_connected(ports)
    return core


def of(kind, intents):
    return [i for i in intents if isinstance(i, kind)]


def deliver(sends, cores):
    """Carry ICC datagrams to the core they are addressed to; return what those cores do."""
    out = []
    for send in sends:
        node = next(n for n, a in ADDR.items() if a == send.addr)
        sender = next(n for n, a in ADDR.items() if n != node)
        out += cores[node].icc_datagram(send.data, (ADDR[sender][0], 40000))
    return out


def types(sends):
    """The ICC message types of IccSend intents, in order."""
    return [json.loads(s.data[36:])["type"] for s in sends]


def responders(intents, ip):
    return [f for f in of(Flow, intents) if f.cookie == pipeline.cookie("proxy_arp", ip)]


def test_seed_steps_one_to_six():
    clock = Clock()
    cores = {"A": make("A", ["B"], PORTS_A, clock), "B": make("B", ["A"], PORTS_B, clock)}
    a, b = cores["A"], cores["B"]

    # 1-2: 10.0.3.5 on A asks for 10.0.3.104: the datapath floods it on A's local ports and
    # copies it to A's controller, which relays it to B
    step = a.packet_in(2, who_has("10.0.3.5", "10.0.3.104"))
    assert not of(PacketOut, step), "the datapath has delivered it locally"
    sends = of(IccSend, step)
    assert [s.addr for s in sends] == [ADDR["B"]]

    # 3: B replays it as a real ARP request on its local ports only
    step = deliver(sends, cores)
    replay = of(PacketOut, step)[0]
    assert sorted(o.port for o in replay.actions) == [1, 2]
    request = arp.parse(replay.data)
    assert (request.op, request.spa, request.sha, request.tpa) == (
        arp.ARP_REQUEST, "10.0.3.5", mac_of("10.0.3.5"), "10.0.3.104")
    assert responders(step, "10.0.3.5"), "B learns the requester and proxies for it"

    # 4-5: the owner answers; B captures the reply and returns it over ICC, not as a frame
    step = b.packet_in(2, is_at("10.0.3.104", "10.0.3.5"))
    assert not of(PacketOut, step)
    sends = of(IccSend, step)
    assert len(sends) == 1 and b.stats["arp_answered_for_peers"] == 1

    # 6: A learns it, answers the requester with the owner's real MAC, installs the responder
    step = deliver(sends, cores)
    answer = of(PacketOut, step)[0]
    assert answer.actions == (Output(2),)
    reply = arp.parse(answer.data)
    assert (reply.op, reply.sha, reply.spa, reply.tpa, reply.eth_dst) == (
        arp.ARP_REPLY, mac_of("10.0.3.104"), "10.0.3.104", "10.0.3.5", mac_of("10.0.3.5"))
    assert responders(step, "10.0.3.104")
    assert a.table.get("10.0.3.104", clock()).node == "B"

    # later: another host on A is answered locally, with no ICC datagram
    step = a.packet_in(1, who_has("10.0.3.3", "10.0.3.104"))
    assert not of(IccSend, step)
    assert arp.parse(of(PacketOut, step)[0].data).sha == mac_of("10.0.3.104")
    assert a.stats["arp_answered_by_controller"] == 1


def test_owner_probe_and_gratuitous_are_never_answered():
    clock = Clock()
    a = make("A", ["B"], PORTS_A, clock)
    a.table.learn("10.0.3.7", mac_of("10.0.3.7"), "B", None, clock())
    for frame in (who_has("0.0.0.0", "10.0.3.7", sender_mac=mac_of("10.0.3.7")),
                  who_has("10.0.3.7", "10.0.3.7"),
                  who_has("10.0.3.9", "10.0.3.7", sender_mac=mac_of("10.0.3.7"))):
        step = a.packet_in(1, frame)
        assert not [s for s in of(IccSend, step) if b'"arp_request"' in s.data]
        assert all(arp.parse(p.data).op == arp.ARP_REQUEST for p in of(PacketOut, step))
    assert a.stats["arp_answered_by_controller"] == 0


def test_expiry_removes_entry_and_responder():
    clock = Clock()
    a = make("A", ["B"], PORTS_A, clock, peer_hold_time=100)
    step = a.icc_datagram(
        a.codec.encode("arp_reply", "B", 1, clock(), ip="10.0.3.7", mac=mac_of("10.0.3.7")),
        ("192.0.2.2", 30000))
    (responder,) = responders(step, "10.0.3.7")
    assert responder.hard_timeout == 30       # OVS drops it even on its own, never later
    clock.now += 29
    assert a.table.get("10.0.3.7", clock()) is not None
    assert not of(DeleteFlows, a.tick())
    clock.now += 1
    assert a.table.get("10.0.3.7", clock()) is None
    assert of(DeleteFlows, a.tick()) == pipeline.delete_arp_responder("10.0.3.7") + \
        pipeline.delete_learned_mac(mac_of("10.0.3.7"), (pipeline.FWD_ANY,))
    step = a.packet_in(1, who_has("10.0.3.3", "10.0.3.7"))
    assert a.stats["arp_answered_by_controller"] == 0 and of(IccSend, step)


def test_host_that_moves_here_loses_its_responder():
    clock = Clock()
    a = make("A", ["B"], PORTS_A, clock)
    a.table.learn("10.0.3.7", mac_of("10.0.3.7"), "B", None, clock())
    step = a.packet_in(2, who_has("10.0.3.7", "10.0.3.7"))      # gratuitous ARP on A
    deletes = of(DeleteFlows, step)
    assert set(pipeline.delete_arp_responder("10.0.3.7")) <= set(deletes)
    assert set(pipeline.delete_learned_mac(mac_of("10.0.3.7"))) <= set(deletes)
    assert a.table.get("10.0.3.7", clock()).local
    (announce,) = of(IccSend, step)
    assert b'"arp_reply"' in announce.data and b'"10.0.3.7"' in announce.data
    assert a.stats["announcements_sent"] == 1


def test_same_site_arp_is_left_to_the_datapath():
    clock = Clock()
    a = make("A", ["B"], PORTS_A, clock)
    a.packet_in(2, who_has("10.0.3.5", "10.0.3.3"))          # h5 asks; the datapath floods
    step = a.packet_in(1, is_at("10.0.3.3", "10.0.3.5"))     # h3 answers; the datapath delivers
    assert not of(PacketOut, step) and not of(IccSend, step)
    assert {e.ip for e in a.entries()} == {"10.0.3.3", "10.0.3.5"}, "both learned from copies"


def test_relay_is_sent_once_then_retried_with_backoff():
    clock = Clock()
    a = make("A", ["B"], PORTS_A, clock, peer_hold_time=100)
    requests = lambda intents: [s for s in of(IccSend, intents) if b'"arp_request"' in s.data]
    assert requests(a.packet_in(1, who_has("10.0.3.3", "10.0.3.104")))
    assert not requests(a.packet_in(2, who_has("10.0.3.5", "10.0.3.104")))
    sent_at = []
    for _ in range(80):                       # 8 s of ticks, as the shell does
        clock.now += 0.1
        if requests(a.tick()):
            sent_at.append(round(clock.now - 1000, 2))
    # 0.25, 0.5 and 1 s apart (on 0.1 s ticks); then the host's own next request
    assert sent_at == [0.3, 0.8, 1.8]
    assert a.stats["arp_relay_retries"] == 3
    assert requests(a.packet_in(1, who_has("10.0.3.3", "10.0.3.104"))), "a new round"


def test_retries_are_capped_under_a_flood_of_requests_for_absent_hosts():
    clock = Clock()
    a = make("A", ["B"], PORTS_A, clock, peer_hold_time=100, pending_timeout=60)
    absent = [f"10.0.3.{n}" for n in range(10, 250)] + [f"10.0.4.{n}" for n in range(1, 250)]
    relays = sum(len(of(IccSend, a.packet_in(1, who_has("10.0.3.3", ip)))) for ip in absent)
    assert relays == len(absent) == 489, "every first request is relayed"
    retries = 0
    for _ in range(30):                       # 3 s of ticks
        clock.now += 0.1
        retries += len([s for s in of(IccSend, a.tick()) if b'"arp_request"' in s.data])
    assert retries <= switchmode.RETRY_BUDGET * 4, "at most the budget per second, plus a burst"
    assert retries >= switchmode.RETRY_BUDGET * 2, "the budget is spent, not idle"
    # each target either had its retries or had them skipped (counted once)
    skipped = a.stats["arp_relay_retries_skipped"]
    assert skipped >= len(absent) - retries > 0
    assert status.stats(a)["arp"]["relay_retries_skipped"] == skipped
    assert f'ipop_arp_relay_retries_total{{node="A",outcome="skipped"}} {float(skipped)}' in \
        metrics.exposition(metrics.registry_for(a)).decode()
    # a host asking again gets a fresh relay even though its retries were skipped
    assert of(IccSend, a.packet_in(1, who_has("10.0.3.3", absent[-1])))


def test_peer_answers_at_once_for_its_own_known_host():
    clock = Clock()
    cores = {"A": make("A", ["B"], PORTS_A, clock), "B": make("B", ["A"], PORTS_B, clock)}
    cores["B"].packet_in(1, who_has("10.0.3.7", "10.0.3.104"))   # B learns 10.0.3.7 locally
    sends = of(IccSend, cores["A"].packet_in(1, who_has("10.0.3.3", "10.0.3.7")))
    step = deliver(sends, cores)
    assert not of(PacketOut, step), "no replay: B answers for its own host"
    replies = [s for s in of(IccSend, step) if b'"arp_reply"' in s.data]
    assert len(replies) == 1 and b'"ip":"10.0.3.7"' in replies[0].data
    step = deliver(replies, cores)
    assert arp.parse(of(PacketOut, step)[0].data).sha == mac_of("10.0.3.7")


def test_junk_from_anyone_is_counted_and_changes_nothing():
    clock = Clock()
    a = make("A", ["B"], PORTS_A, clock)
    forged = a.codec.encode("arp_reply", "C", 1, clock(), ip="10.0.3.7", mac=mac_of("10.0.3.7"))
    spoofed = a.codec.encode("arp_reply", "B", 1, clock(), ip="10.0.3.7", mac=mac_of("10.0.3.7"))
    for data, addr in [(b"", ("192.0.2.2", 1)), (b"junk" * 100, ("192.0.2.2", 1)),
                       (forged, ("192.0.2.3", 1)), (spoofed, ("192.0.2.99", 1))]:
        assert a.icc_datagram(data, addr) == []
    assert len(a.table) == 0
    assert a.stats["icc_dropped.truncated"] == 1 and a.stats["icc_dropped.bad_magic"] == 1
    assert a.stats["icc_dropped.unknown_peer"] == 2


def test_ports_and_split_horizon_flows():
    clock = Clock()
    a = make("A", ["B"], {1: "h3", 10: "ipop-B"}, clock)
    step = a.ports_changed({1: "h3", 2: "h5", 10: "ipop-B", 11: "ipop-C"})
    classify = [f for f in of(Flow, step) if f.table == pipeline.CLASSIFY]
    assert [f.match["in_port"] for f in classify] == [11]
    flood = {f.table: [o.port for o in f.actions] for f in of(Flow, step)
             if pipeline.purpose_of(f.cookie) == "flood"}
    assert flood == {pipeline.FLOOD: [1, 2, 10, 11], pipeline.FWD_LOCAL: [1, 2]}
    step = a.ports_changed({1: "h3", 2: "h5", 10: "ipop-B"})
    assert DeleteFlows(pipeline.cookie("classify", port=11)) in step


def test_icc_off_is_a_one_site_switch_with_local_proxy_arp():
    clock = Clock()
    a = SwitchMode(options("A", [], icc=False), clock=clock, wallclock=clock)
    a.switch_connected(PORTS_A)
    step = a.packet_in(1, who_has("10.0.3.3", "10.0.3.5"))
    assert not of(IccSend, step) and responders(step, "10.0.3.3")
    step = a.packet_in(2, who_has("10.0.3.5", "10.0.3.3"))
    assert arp.parse(of(PacketOut, step)[0].data).sha == mac_of("10.0.3.3")


def test_hellos_liveness_and_withdrawal():
    clock = Clock()
    pull = dict(hello_interval=1, peer_hold_time=3, announce=False)     # the seed's way
    cores = {"A": make("A", ["B"], PORTS_A, clock, **pull),
             "B": make("B", ["A"], PORTS_B, clock, **pull)}
    a, b = cores["A"], cores["B"]
    b.packet_in(1, who_has("10.0.3.7", "10.0.3.104"))          # B's local host
    hello = of(IccSend, b.tick())
    assert types(hello) == ["hello", "sync_request"], "a new controller asks for state"
    step = deliver(hello, cores)                                 # A hears B: B is up
    assert a.peers.get("B").up
    # A gives B its (empty) local entries, and asks for B's; B answers with a sync
    assert types(of(IccSend, step)) == ["sync_end", "sync_request"]
    step = deliver(of(IccSend, step), cores)
    # B has heard A now: h7's request for 10.0.3.104, relayed before A was up, is asked again
    assert types(of(IccSend, step)) == ["bindings", "sync_end", "arp_request"]
    step = deliver(of(IccSend, step), cores)
    assert a.table.get("10.0.3.7", clock()).node == "B", "state sync without ARP traffic"
    assert responders(step, "10.0.3.7"), "A answers locally for B's host"
    clock.now += 3.5                                             # B falls silent
    step = a.tick()
    assert not a.peers.get("B").up
    assert of(DeleteFlows, step) == pipeline.delete_arp_responder("10.0.3.7") + \
        pipeline.delete_learned_mac(mac_of("10.0.3.7"), (pipeline.FWD_ANY,)), \
        "nothing answers for B's host, nor sends its MAC to B's tunnel"
    assert a.table.get("10.0.3.7", clock()) is None
    b.members.boot = "rebooted"                                  # B restarts and says hello
    b.members.hellos.soon(clock())
    deliver(of(IccSend, b.tick()), cores)
    assert a.peers.get("B").up and a.stats["peer_down"] == 1


def test_restarted_peer_gets_our_entries_again():
    clock = Clock()
    a = make("A", ["B"], PORTS_A, clock)
    a.packet_in(1, who_has("10.0.3.3", "10.0.3.5"))
    hello = lambda boot, seq: a.codec.encode("hello", "B", seq, clock(), boot=boot)
    first = of(IccSend, a.icc_datagram(hello("one", 1), ("192.0.2.2", 30000)))
    assert types(first) == ["bindings", "sync_end", "sync_request", "arp_request"]
    assert b'"10.0.3.3"' in first[0].data
    assert of(IccSend, a.icc_datagram(hello("one", 2), ("192.0.2.2", 30000))) == []
    clock.now += 2                            # B restarts: it gets our hosts again
    again = of(IccSend, a.icc_datagram(hello("two", 3), ("192.0.2.2", 30000)))
    assert types(again) == ["bindings", "sync_end", "arp_request"]   # h3 still waits
    assert b'"10.0.3.3"' in again[0].data


def test_replayed_and_stale_datagrams_are_dropped():
    clock = Clock()
    a = make("A", ["B"], PORTS_A, clock)
    reply = lambda seq, ts: a.codec.encode("arp_reply", "B", seq, ts, ip="10.0.3.7",
                                            mac=mac_of("10.0.3.7"))
    b = ("192.0.2.2", 30000)
    accepted = lambda: a.stats["icc_received.arp_reply"]
    assert a.icc_datagram(reply(9000, clock()), b) and accepted() == 1
    assert a.icc_datagram(reply(9000, clock()), b) == []          # the same datagram again
    a.icc_datagram(reply(8998, clock()), b)                        # late but new: reordering
    assert accepted() == 2
    assert a.icc_datagram(reply(8998, clock()), b) == []
    assert a.icc_datagram(reply(9001, clock() - 31), b) == []     # older than the window
    assert a.icc_datagram(reply(9002, clock() + 31), b) == []     # from the future
    assert a.icc_datagram(reply(10, clock()), b) == []            # far below the window
    assert (a.stats["icc_dropped.replay"], a.stats["icc_dropped.stale"]) == (3, 2)


def test_answers_go_out_before_flows_and_refreshes_rearm_the_responder():
    clock = Clock()
    a = make("A", ["B"], PORTS_A, clock, peer_hold_time=1000)
    a.packet_in(2, who_has("10.0.3.5", "10.0.3.7"))
    reply = lambda seq: a.codec.encode("arp_reply", "B", seq, clock(), ip="10.0.3.7",
                                       mac=mac_of("10.0.3.7"))
    step = a.icc_datagram(reply(1), ("192.0.2.2", 30000))
    kinds = [type(i) for i in step]
    assert responders(step, "10.0.3.7") and kinds.index(PacketOut) < kinds.index(Flow)
    clock.now += 0.5                          # refreshed at once: no flow-mods
    assert of(Flow, a.icc_datagram(reply(2), ("192.0.2.2", 30000))) == []
    clock.now += 10                           # later: the flow must live as long as the entry
    (rearmed,) = responders(a.icc_datagram(reply(3), ("192.0.2.2", 30000)), "10.0.3.7")
    assert rearmed.hard_timeout == 30


def test_a_relay_that_arrives_before_the_bridge_is_replayed_when_it_connects():
    """Cold start: a peer's controller is up before its switch; the request it relays must
    not wait for the requester's next retry (0.25 s, then 0.5 s)."""
    clock = Clock()
    a = make("A", ["B"], PORTS_A, clock)
    b = SwitchMode(options("B", ["A"], arp_timeout=30), clock=clock, wallclock=clock)
    cores = {"A": a, "B": b}
    step = deliver(of(IccSend, a.packet_in(2, who_has("10.0.3.5", "10.0.3.104"))), cores)
    assert not of(PacketOut, step), "no bridge yet: nowhere to replay"
    clock.now += 0.1
    step = b.switch_connected(PORTS_B)
    (replay,) = of(PacketOut, step)
    request = arp.parse(replay.data)
    assert (request.spa, request.tpa) == ("10.0.3.5", "10.0.3.104")
    catch = [f for f in of(Flow, step)
             if f.cookie == pipeline.cookie("relay_reply", "10.0.3.5")]    # the requester's
    assert catch and step.index(catch[0]) < step.index(replay), "the catch flow goes first"
    sends = of(IccSend, b.packet_in(2, is_at("10.0.3.104", "10.0.3.5"), pipeline.CAUGHT))
    assert types(sends) == ["arp_reply"]
    # answered: a later reconnect replays nothing
    assert not of(PacketOut, b.switch_connected(PORTS_B))
    clock.now += 10     # a relay nobody answered expires with its pending_timeout
    deliver(of(IccSend, a.packet_in(2, who_has("10.0.3.5", "10.0.3.99"))), cores)
    clock.now += b.options.pending_timeout + 1
    assert not of(PacketOut, b.switch_connected(PORTS_B))


def test_one_catch_flow_per_requester_and_pending_timeout():
    """A stream of relays from one remote host costs one flow-mod per pending_timeout."""
    clock = Clock()
    b = make("B", ["A"], PORTS_B, clock)
    timeout = b.options.pending_timeout

    def relay(seq, target):
        return b.icc_datagram(b.codec.encode(
            "arp_request", "A", seq, clock(), sender_ip="10.0.3.5",
            sender_mac=mac_of("10.0.3.5"), target_ip=target), ("192.0.2.1", 30000))

    def catches(step):
        return [f for f in of(Flow, step) if pipeline.purpose_of(f.cookie) == "relay_reply"]
    (first,) = catches(relay(1, "10.0.3.200"))
    assert first.hard_timeout == 2 * timeout and first.metadata == (pipeline.CAUGHT,) * 2
    for seq in range(2, 12):
        clock.now += timeout / 20
        assert of(PacketOut, relay(seq, f"10.0.3.{200 + seq}")) and not catches(
            relay(100 + seq, f"10.0.3.{150 + seq}")), "covered by the first catch flow"
    clock.now += timeout
    assert catches(relay(50, "10.0.3.250")), "refreshed before it could expire mid-relay"


def test_a_caught_reply_answers_its_relay_over_icc_and_any_other_goes_on_as_a_frame():
    clock = Clock()
    b = make("B", ["A"], PORTS_B, clock)
    b.icc_datagram(b.codec.encode("arp_request", "A", 1, clock(), sender_ip="10.0.3.5",
                                  sender_mac=mac_of("10.0.3.5"), target_ip="10.0.3.104"),
                   ("192.0.2.1", 30000))
    answer = b.packet_in(2, is_at("10.0.3.104", "10.0.3.5"), pipeline.CAUGHT)
    assert types(of(IccSend, answer)) == ["arp_reply"] and not of(PacketOut, answer)
    # the same requester's liveness probe answered by another host: forwarded, not lost
    other = is_at("10.0.3.7", "10.0.3.5")
    step = b.packet_in(1, other, pipeline.CAUGHT)
    (forward,) = of(PacketOut, step)
    assert forward.data == other and [a.port for a in forward.actions] == [TABLE]
    assert not of(IccSend, step) and b.stats["arp_caught_forwarded"] == 1
    assert not of(PacketOut, b.packet_in(1, other)), "a copy: the datapath delivered it"


def test_a_peer_that_comes_up_is_asked_at_once_for_what_hosts_wait_for():
    """Cold start: A relayed before B's controller listened (lost); B's first hello brings
    the request to B at once, not at A's next retry (up to a second later)."""
    clock = Clock()
    a = make("A", ["B"], PORTS_A, clock)
    a.packet_in(2, who_has("10.0.3.5", "10.0.3.104"))          # relayed into the void
    clock.now += 0.1
    hello = a.codec.encode("hello", "B", 1, clock(), boot="b00b")
    asked = [s for s in of(IccSend, a.icc_datagram(hello, ("192.0.2.2", 30000)))
             if types([s]) == ["arp_request"]]
    assert len(asked) == 1 and json.loads(asked[0].data[36:])["target_ip"] == "10.0.3.104"
    assert a.stats["arp_relayed_to_arrived_peer"] == 1
    clock.now += a.options.pending_timeout + 1                   # nobody waits any more
    hello = a.codec.encode("hello", "B", 2, clock(), boot="b00c")   # B restarted
    assert not [s for s in of(IccSend, a.icc_datagram(hello, ("192.0.2.2", 30000)))
                if types([s]) == ["arp_request"]]

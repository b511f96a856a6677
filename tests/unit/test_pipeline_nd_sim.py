"""IPv6 ND on simulated flow tables: two sites back to back, frames in at ports, where they
come out and how they were rewritten; relays and DAD across sites through ICC."""
import json

import pytest

from ipop_ryu.core import nd, pipeline
from ipop_ryu.core.intents import CONTROLLER, Flow, IccSend, PacketOut

from .fakeoftable import ethernet, frame, to_nd_frame
from .helpers import Clock
from .simsite import SimSite

PORTS = {"A": {1: "h3", 2: "h5", 10: "ipop-B"}, "B": {1: "h7", 2: "h104", 10: "ipop-A"}}
ADDR = {"A": ("192.0.2.1", 30000), "B": ("192.0.2.2", 30000)}
H3, H5, H7 = "fd00:3::3", "fd00:3::5", "fd00:3::7"
LL7 = "fe80::ff:fe00:7"


def mac(ip):
    return "02:00:00:00:00:%02x" % int(ip.replace(".", ":").rsplit(":", 1)[1], 16)


class Site(SimSite):
    def __init__(self, name, clock, **kw):
        super().__init__(name, [n for n in PORTS if n != name], PORTS[name], clock, **kw)


@pytest.fixture
def sites():
    clock = Clock()
    return {name: Site(name, clock) for name in PORTS}, clock


def deliver(sends, sites):
    out = {}
    for send in sends:
        node = next(n for n, a in ADDR.items() if a == send.addr)
        sender = next(n for n in ADDR if n != node)
        out.setdefault(node, []).extend(sites[node].apply(
            sites[node].core.icc_datagram(send.data, (ADDR[sender][0], 40000))))
    return out


def of(kind, intents):
    return [i for i in intents if isinstance(i, kind)]


def types(sends):
    return [json.loads(s.data[36:])["type"] for s in sends]


def only(kind, intents):
    """The ICC sends of one message type (a first contact also starts syncs)."""
    return [s for s in of(IccSend, intents) if types([s]) == [kind]]


def ports(out):
    return sorted(p for p, _ in out if p != CONTROLLER)


def ns(src, target, lladdr=True):
    frame_ = nd.solicit(src, mac(src), target)
    if not lladdr:
        frame_ = nd.NdFrame(frame_.eth_src, frame_.eth_dst, src, frame_.dst, nd.NS, target, None)
    return nd.build(frame_)


def dad(prober_mac, target):
    group = nd.solicited_node(target)
    return nd.build(nd.NdFrame(prober_mac, nd.multicast_mac(group), "::", group, nd.NS,
                               target, None))


def learn_remote(site, ip, node="B"):
    site.apply(site.core.neighbours._learn(ip, mac(ip), node, None, site.core.clock(),
                                           site.core.clock()))


def test_a_local_multicast_ns_is_delivered_locally_with_a_metered_copy(sites):
    a = sites[0]["A"]
    out, _ = a.send(1, ns(H3, H5))
    assert ports(out) == [2], "the other local port only: never the overlay"
    assert [m for m, _ in a.table.to_controller] == [1], "through port 1's meter (ARP's)"


def test_multicast_ns_and_na_from_the_overlay_are_dropped(sites):
    a = sites[0]["A"]
    assert a.table.process(10, frame(ns(H7, H3))) == []
    assert a.table.process(10, frame(nd.build(nd.defend(H7, mac(H7))))) == []


@pytest.mark.parametrize("target", [H7, LL7])
def test_a_learned_remote_target_is_answered_in_the_datapath(sites, target):
    a = sites[0]["A"]
    learn_remote(a, target)
    out = a.table.process(2, frame(ns(H5, target)))
    assert [p for p, _ in out] == [2] and not a.table.to_controller
    (_, answer), = out
    na = to_nd_frame(answer)
    assert na == nd.advertise(target, mac(target), H5, mac(H5))
    assert nd.parse(nd.build(na)) == na, "the NA a real owner would send"


def test_a_dad_probe_is_never_answered_by_a_flow_and_the_controller_defends(sites):
    a = sites[0]["A"]
    learn_remote(a, H7)
    out, intents = a.send(1, dad("02:00:00:00:00:99", H7))
    assert ports(out) == [2], "delivered locally, not answered"
    (defence,) = of(PacketOut, intents)
    assert [o.port for o in defence.actions] == [1]
    na = nd.parse(defence.data)
    assert (na.type, na.dst, na.target, na.lladdr, na.flags) == (
        nd.NA, nd.ALL_NODES, H7, mac(H7), nd.FLAG_OVERRIDE)
    assert a.core.stats["host_conflict"] == 1 and a.core.stats["nd_dad_defended"] == 1


def test_the_owner_probing_for_its_own_address_is_not_defended(sites):
    a = sites[0]["A"]
    learn_remote(a, H7)
    _, intents = a.send(1, dad(mac(H7), H7))        # it moved here, same MAC
    assert not of(PacketOut, intents) and not a.core.stats["host_conflict"]


def test_an_ns_without_source_option_gets_an_na_without_target_option(sites):
    a = sites[0]["A"]
    learn_remote(a, H7)
    out, intents = a.send(2, ns(H5, H7, lladdr=False))
    assert ports(out) == [1], "no flow answers it"
    (answer,) = of(PacketOut, intents)
    assert nd.parse(answer.data) == nd.advertise(H7, mac(H7), H5, mac(H5), with_tlla=False)


def test_unicast_ns_is_forwarded_to_the_real_host(sites):
    a = sites[0]["A"]
    learn_remote(a, H7)
    a.table.process(10, ethernet(mac(H7), mac(H3), nd.ETH_TYPE_IPV6))      # H7's MAC seen
    nud = frame(nd.build(nd.NdFrame(mac(H3), mac(H7), H3, H7, nd.NS, H7, mac(H3))))
    out = a.table.process(1, nud)
    assert ports(out) == [10] and out[0][1]["icmpv6_type"] == nd.NS
    assert not a.table.to_controller


@pytest.mark.parametrize("kind, dst", [(133, "33:33:00:00:00:02"), (134, "33:33:00:00:00:01"),
                                       (143, "33:33:00:00:00:16")])
def test_rs_ra_and_mld_pass_as_any_frame(sites, kind, dst):
    a = sites[0]["A"]
    packet = dict(ethernet(mac(H3), dst, nd.ETH_TYPE_IPV6), ip_proto=nd.ICMPV6,
                  icmpv6_type=kind)
    assert ports(a.table.process(1, packet)) == [2, 10] and not a.table.to_controller


def test_an_unknown_target_is_relayed_replayed_and_answered(sites):
    (a, b), clock = (sites[0]["A"], sites[0]["B"]), sites[1]
    _, intents = a.send(2, ns(H5, H7))
    assert types(of(IccSend, intents)) == ["nd_request"]
    step = deliver(of(IccSend, intents), sites[0])["B"]
    (replay,) = of(PacketOut, step)
    assert nd.parse(replay.data) == nd.parse(ns(H5, H7)), "as the requester sent it"
    assert sorted(o.port for o in replay.actions) == [1, 2]
    # the owner's NA to the replayed NS reaches B's controller only
    out, intents = b.send(1, nd.build(nd.advertise(H7, mac(H7), H5, mac(H5))))
    assert ports(out) == [] and types(of(IccSend, intents)) == ["nd_reply"]
    step = deliver(of(IccSend, intents), sites[0])["A"]
    (answer,) = of(PacketOut, step)
    assert [o.port for o in answer.actions] == [2]
    assert nd.parse(answer.data) == nd.advertise(H7, mac(H7), H5, mac(H5))
    assert a.core.table.get(H7, clock()).node == "B"
    # from now on the datapath answers and nothing crosses
    out, intents = a.send(1, ns(H3, H7))
    assert [p for p, _ in out] == [1] and not of(IccSend, intents)


def test_dad_for_an_address_owned_at_another_site_fails_through_a_relay(sites):
    (a, b) = sites[0]["A"], sites[0]["B"]
    b.send(1, ns(H7, "fd00:3::104"))            # B learns its own H7 (announce off: pull)
    b.core.neighbours.announcer.enabled = False
    a.core.neighbours.table.remove(H7)          # A has not heard of it
    _, intents = a.send(1, dad("02:00:00:00:00:99", H7))
    sends = of(IccSend, intents)
    assert types(sends) == ["nd_request"] and json.loads(sends[0].data[36:])["sender_ip"] == "::"
    step = deliver(sends, sites[0])["B"]
    assert len(only("nd_reply", step)) == 1, "the owner's site answers at once"
    (defence,) = of(PacketOut, deliver(only("nd_reply", step), sites[0])["A"])
    assert [o.port for o in defence.actions] == [1]
    assert nd.parse(defence.data) == nd.defend(H7, mac(H7))
    assert a.core.stats["nd_dad_defended"] == 1


def test_dad_replayed_where_the_owner_is_not_known_yet(sites):
    (a, b) = sites[0]["A"], sites[0]["B"]
    _, intents = a.send(1, dad("02:00:00:00:00:99", H7))
    step = deliver(of(IccSend, intents), sites[0])["B"]
    (replay,) = of(PacketOut, step)
    assert nd.parse(replay.data).is_dad
    # H7 defends its address (to all-nodes): caught, it crosses as ICC only
    out, intents = b.send(1, nd.build(nd.defend(H7, mac(H7))))
    # (the answer to the relay, and the announcement an unsolicited NA makes at once)
    assert ports(out) == [] and len(only("nd_reply", intents)) == 2
    (defence,) = of(PacketOut, deliver(only("nd_reply", intents), sites[0])["A"])
    assert nd.parse(defence.data).target == H7 and a.core.stats["nd_dad_defended"] == 1


def test_a_free_address_passes_dad(sites):
    a = sites[0]["A"]
    _, intents = a.send(1, dad("02:00:00:00:00:99", "fd00:3::99"))
    step = deliver(of(IccSend, intents), sites[0])["B"]
    assert not only("nd_reply", step) and not a.core.stats["host_conflict"]


def test_the_responder_has_its_own_cookie_and_no_lookup_is_ambiguous(sites):
    a = sites[0]["A"]
    learn_remote(a, H7)
    learn_remote(a, "10.0.3.7")
    (responder,) = [f for f in a.table.flows.values()
                    if pipeline.purpose_of(f.cookie) == "proxy_nd"]
    assert responder.cookie == pipeline.cookie("proxy_nd", H7)
    assert responder.match["ipv6_nd_target"] == H7
    for port in (1, 2, 10):
        for data in (ns(H3, H7), ns(H3, LL7), ns(H3, H7, lladdr=False), dad(mac(H3), H7),
                     nd.build(nd.advertise(H3, mac(H3), H7, mac(H7))),
                     nd.build(nd.defend(H3, mac(H3)))):
            a.table.process(port, frame(data))      # asserts there is never a priority tie


def test_expired_and_withdrawn_responders_leave(sites):
    a, clock = sites[0]["A"], sites[1]
    learn_remote(a, H7)
    assert a.core.responder_count() == 1
    clock.now += 1000
    a.apply(a.core.tick())
    assert a.core.responder_count() == 0
    assert not [f for f in a.table.flows.values() if isinstance(f, Flow)
                and pipeline.purpose_of(f.cookie) == "proxy_nd"]


def test_a_router_owner_is_answered_with_the_router_flag_at_every_site(sites):
    (a, b), clock = (sites[0]["A"], sites[0]["B"]), sites[1]
    router = nd.NdFrame(mac(H7), nd.multicast_mac(nd.ALL_NODES), H7, nd.ALL_NODES, nd.NA, H7,
                        mac(H7), nd.FLAG_ROUTER | nd.FLAG_OVERRIDE)
    _, intents = b.send(1, nd.build(router))          # unsolicited: announced at once
    (claim,) = only("nd_reply", intents)
    assert json.loads(claim.data[36:])["router"] is True
    deliver([claim], sites[0])
    (_, answer), = a.table.process(2, frame(ns(H5, H7)))
    assert to_nd_frame(answer).flags == nd.FLAG_ROUTER | nd.FLAG_SOLICITED | nd.FLAG_OVERRIDE
    # a sync carries it too (a fourth element), and a later NA without it clears it
    assert (H7, mac(H7), 0, True, None) in b.core.neighbours.local_bindings(clock())
    b.send(1, nd.build(nd.advertise(H7, mac(H7), H3, mac(H3))))
    assert (H7, mac(H7), 0, False, None) in b.core.neighbours.local_bindings(clock())


def test_bindings_carry_the_router_flag_of_ipv6_owners():
    from ipop_ryu.core import icc
    from .helpers import KEY
    codec = icc.Codec(KEY)
    (batch,) = icc.bindings_batches([("fd00:3::1", "02:00:00:00:00:01", 5, True),
                                     ("10.0.3.1", "02:00:00:00:00:02", 0, False)])
    assert batch == [["fd00:3::1", "02:00:00:00:00:01", 5, 1], ["10.0.3.1", "02:00:00:00:00:02"]]
    message = codec.decode(codec.encode("bindings", "B", 1, 1.0, bindings=batch + [
        ["fd00:3::2", "02:00:00:00:00:03", 0, 2], ["10.0.3.3", "02:00:00:00:00:04", 0, 1]]))
    assert message["routers"] == {"fd00:3::1"} and message["invalid"] == 1


def test_the_catch_flow_goes_into_the_bridge_before_the_replay(sites):
    a = sites[0]["A"]
    _, intents = a.send(2, ns(H5, H7))
    step = pipeline.for_one_write(deliver(of(IccSend, intents), sites[0])["B"])
    kinds = [pipeline.purpose_of(i.cookie) if isinstance(i, Flow) else type(i).__name__
             for i in step]
    assert kinds.index("nd_relay_reply") < kinds.index("PacketOut"), kinds

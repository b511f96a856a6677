"""Site services on simulated flow tables: the anycast gateway on the bridge's own port, its
DHCP and router advertisements kept inside the site, and a lease known to the other site
from its ACK. Two sites back to back; the DHCP frames are a real exchange (dhcp_frames)."""
import ipaddress
import os
import random

import pytest

from ipop_ryu.core import arp, nd, pipeline
from ipop_ryu.core.intents import BRIDGE_LOCAL, CONTROLLER, IccSend, PacketOut
from ipop_ryu.core.switchmode import SwitchMode

from . import dhcp_frames
from .fakeoftable import ethernet, frame, icmpv6
from .helpers import Clock, mac_of, options, who_has
from .simsite import SimSite

GATEWAY, GATEWAY6, GATEWAY_MAC = "10.0.3.1", "fd00:3::1", "02:49:50:4f:50:01"
GATEWAY_LL = "fe80::49:50ff:fe4f:5001"
CLIENT_MAC, LEASED = "02:00:0a:00:03:07", "10.0.3.30"     # as in dhcp_frames
PORTS = {"A": {1: "c7", 2: "h5", 10: "ipop-B", BRIDGE_LOCAL: "br0"},
         "B": {1: "h9", 10: "ipop-A", BRIDGE_LOCAL: "br0"}}
ADDR = {"A": ("192.0.2.1", 30000), "B": ("192.0.2.2", 30000)}
OVERLAY = 10
SERVICES = dict(gateway=ipaddress.ip_interface(GATEWAY + "/24"),
                gateway6=ipaddress.ip_interface(GATEWAY6 + "/64"))


class Site(SimSite):
    def __init__(self, name, clock, **kw):
        super().__init__(name, [n for n in PORTS if n != name], PORTS[name], clock, **kw)

    def send(self, port, data, fields=None):
        """Where the datapath sends a frame (ports), and the core's intents for its copies."""
        out, intents = super().send(port, data, fields)
        return sorted(p for p, _ in out if p != CONTROLLER), intents

    def responders(self):
        return {pipeline.ip_of(f.cookie) for f in self.table.flows.values()
                if pipeline.purpose_of(f.cookie) == "proxy_arp"}


@pytest.fixture
def sites():
    clock = Clock()
    return {name: Site(name, clock, **SERVICES) for name in PORTS}, clock


def deliver(intents, sites, sender):
    """Carry the ICC sends of sender's intents to their peers; their intents back."""
    out = []
    for send in (i for i in intents if isinstance(i, IccSend)):
        node = next(n for n, a in ADDR.items() if a == send.addr)
        out += sites[node].apply(sites[node].core.icc_datagram(send.data,
                                                               (ADDR[sender][0], 40000)))
    return out


# ---- DHCP stays in the site ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["DISCOVER", "REQUEST", "RENEW", "RELEASE"])
def test_dhcp_from_a_container_reaches_the_gateway_alone(sites, name):
    site = sites[0]["A"]
    out, _ = site.send(1, getattr(dhcp_frames, name))
    assert out == [BRIDGE_LOCAL], "the site's own server only: never the overlay, no container"
    assert len(site.table.to_controller) == 1, "a copy: where the client is, its release"


@pytest.mark.parametrize("name", ["OFFER", "ACK", "RENEW_ACK"])
def test_dhcp_from_the_gateway_reaches_local_ports_only(sites, name):
    site = sites[0]["A"]
    site.send(1, dhcp_frames.DISCOVER)              # the client's MAC is learned on port 1
    out, _ = site.send(BRIDGE_LOCAL, getattr(dhcp_frames, name))
    assert out == [1]
    assert len(site.table.to_controller) == 1, "server replies are copied (leases)"


def test_a_broadcast_server_reply_floods_local_ports_only(sites):
    site = sites[0]["A"]
    offer = frame(dhcp_frames.OFFER)
    offer.update(eth_dst=arp.BROADCAST_MAC)
    out, _ = site.send(BRIDGE_LOCAL, dhcp_frames.OFFER, offer)
    assert out == [1, 2]


@pytest.mark.parametrize("name", ["DISCOVER", "REQUEST", "OFFER", "ACK", "RELEASE"])
def test_dhcp_from_the_overlay_is_dropped(sites, name):
    site = sites[0]["A"]
    out, intents = site.send(OVERLAY, getattr(dhcp_frames, name))
    assert out == [] and not site.table.to_controller and intents == []


def test_a_dhcp_server_in_a_container_is_heard_only_at_its_site(sites):
    site = sites[0]["A"]
    out, intents = site.send(2, dhcp_frames.ACK)
    assert out == [1] and not site.table.to_controller, "local only, never a lease"


# ---- router solicitations and advertisements --------------------------------------------------
def rs(src_mac):
    return icmpv6(src_mac, "33:33:00:00:00:02", "fe80::7", "ff02::2", 133)


def ra():
    return icmpv6(GATEWAY_MAC, "33:33:00:00:00:01", GATEWAY_LL, "ff02::1", 134)


def test_rs_reaches_the_gateway_and_ra_the_local_ports(sites):
    table = sites[0]["A"].table
    assert ports(table.process(1, rs(CLIENT_MAC))) == [BRIDGE_LOCAL]
    assert ports(table.process(BRIDGE_LOCAL, ra())) == [1, 2]
    rogue = dict(ra(), eth_src=mac_of("10.0.3.5"))
    assert ports(table.process(2, rogue)) == [1], "a container's RA stays in the site"
    assert not table.to_controller


def test_rs_and_ra_from_the_overlay_are_dropped(sites):
    table = sites[0]["A"].table
    assert table.process(OVERLAY, rs(mac_of("10.0.3.9"))) == []
    assert table.process(OVERLAY, dict(ra(), eth_src=mac_of("10.0.3.9"))) == []


def ports(out):
    return sorted(port for port, _ in out if port != CONTROLLER)


# ---- ARP and ND for the gateway ---------------------------------------------------------------
def test_arp_for_the_gateway_is_delivered_to_it_alone_and_never_relayed(sites):
    site = sites[0]["A"]
    out, intents = site.send(1, who_has("10.0.3.7", GATEWAY))
    assert out == [BRIDGE_LOCAL]
    assert not [i for i in intents if isinstance(i, (IccSend, PacketOut))], "never relayed"
    assert site.core.table.get(GATEWAY, site.core.clock()) is None
    assert site.core.table.get("10.0.3.7", site.core.clock()).port == 1, "the asker learned"
    reply = arp.build(arp.reply(GATEWAY, GATEWAY_MAC, "10.0.3.7", mac_of("10.0.3.7")))
    out, intents = site.send(BRIDGE_LOCAL, reply)
    assert out == [1] and not site.table.to_controller, "the gateway is never learned"


def test_a_probe_for_the_gateway_reaches_the_gateway(sites):
    out, intents = sites[0]["A"].send(1, who_has("0.0.0.0", GATEWAY, CLIENT_MAC))
    assert out == [BRIDGE_LOCAL] and not [i for i in intents if isinstance(i, IccSend)]


@pytest.mark.parametrize("target", [GATEWAY6, GATEWAY_LL])
def test_ns_for_the_gateway_is_delivered_to_it_alone_and_never_relayed(sites, target):
    site = sites[0]["A"]
    data = nd.build(nd.solicit("fd00:3::7", CLIENT_MAC, target))
    out, intents = site.send(1, data)
    assert out == [BRIDGE_LOCAL]
    assert not [i for i in intents if isinstance(i, (IccSend, PacketOut))]


def test_the_gateways_own_arp_is_local_and_never_punted(sites):
    site = sites[0]["A"]
    site.core.neighbours._learn("10.0.3.9", mac_of("10.0.3.9"), "B", None, 1000.0, 1000.0)
    out, intents = site.send(BRIDGE_LOCAL, arp.build(arp.request(GATEWAY, GATEWAY_MAC,
                                                                 "10.0.3.99")))
    assert out == [1, 2] and not site.table.to_controller, "local ports only, no relay"


@pytest.mark.parametrize("data", [
    who_has("10.0.3.9", GATEWAY),
    arp.build(arp.reply(GATEWAY, GATEWAY_MAC, "10.0.3.9", mac_of("10.0.3.9"))),
    arp.build(arp.request(GATEWAY, GATEWAY_MAC, "10.0.3.7")),
    nd.build(nd.solicit("fd00:3::9", mac_of("10.0.3.9"), GATEWAY6)),
    nd.build(nd.advertise(GATEWAY6, GATEWAY_MAC, "fd00:3::9", mac_of("10.0.3.9"))),
])
def test_gateway_arp_and_nd_from_the_overlay_is_dropped(sites, data):
    site = sites[0]["A"]
    out, intents = site.send(OVERLAY, data)
    assert out == [] and intents == []


def test_a_container_claiming_the_gateway_address_is_dropped(sites):
    site = sites[0]["A"]
    out, _ = site.send(2, who_has(GATEWAY, GATEWAY, mac_of("10.0.3.5")))
    assert out == [] and not site.table.to_controller
    na = nd.build(nd.defend(GATEWAY6, mac_of("10.0.3.5")))
    assert site.send(2, na)[0] == []


# ---- the gateway MAC ------------------------------------------------------------------------
def test_frames_to_the_gateway_mac_never_reach_the_overlay(sites):
    site = sites[0]["A"]
    to_gateway = ethernet(CLIENT_MAC, GATEWAY_MAC)
    assert ports(site.table.process(1, to_gateway)) == [BRIDGE_LOCAL], "before it spoke"
    site.table.process(BRIDGE_LOCAL, ethernet(GATEWAY_MAC, CLIENT_MAC))
    assert ports(site.table.process(1, to_gateway)) == [BRIDGE_LOCAL]
    assert site.table.process(OVERLAY, ethernet(mac_of("10.0.3.9"), GATEWAY_MAC)) == []


def test_the_gateway_mac_is_never_learned_from_the_overlay(sites):
    site = sites[0]["A"]
    assert site.table.process(OVERLAY, ethernet(GATEWAY_MAC, CLIENT_MAC)) == []
    assert site.table.process(OVERLAY, ethernet(GATEWAY_MAC, arp.BROADCAST_MAC)) == []
    learned = [f for f in site.table.flows.values()
               if pipeline.purpose_of(f.cookie) == "learned_mac"
               and f.match.get("eth_dst") == GATEWAY_MAC]
    assert learned == []
    assert ports(site.table.process(1, ethernet(CLIENT_MAC, GATEWAY_MAC))) == [BRIDGE_LOCAL]


def test_the_gateways_frames_never_reach_the_overlay(sites):
    site = sites[0]["A"]
    site.table.process(OVERLAY, ethernet(mac_of("10.0.3.9"), arp.BROADCAST_MAC))  # learned
    assert ports(site.table.process(BRIDGE_LOCAL, ethernet(GATEWAY_MAC, mac_of("10.0.3.9")))) \
        == [1, 2], "unknown here: flooded to local ports, never the tunnel"
    assert ports(site.table.process(BRIDGE_LOCAL, ethernet(GATEWAY_MAC, arp.BROADCAST_MAC))) \
        == [1, 2]


# ---- the controller never learns the gateway -------------------------------------------------
def test_a_peer_claiming_the_gateway_is_ignored_and_counted(sites):
    all_sites, clock = sites
    a = all_sites["A"]
    for seq, (ip, mac) in enumerate(((GATEWAY, mac_of("10.0.3.9")), ("10.0.3.9", GATEWAY_MAC),
                                     (GATEWAY_LL, mac_of("10.0.3.9"))), 1):
        claim = a.core.codec.encode("arp_reply" if "." in ip else "nd_reply", "B", seq, clock(),
                                    ip=ip, mac=mac)
        a.apply(a.core.icc_datagram(claim, ("192.0.2.2", 40000)))
    assert a.core.table.get(GATEWAY, clock()) is None and not a.responders()
    assert a.core.table.get("10.0.3.9", clock()) is None
    assert a.core.stats["gateway_not_learned"] == 3


# ---- leases ----------------------------------------------------------------------------------
def test_an_ack_is_announced_and_the_peer_answers_before_the_first_arp(sites):
    all_sites, clock = sites
    a, b = all_sites["A"], all_sites["B"]
    _, intents = a.send(1, dhcp_frames.REQUEST)
    assert intents == []
    out, intents = a.send(BRIDGE_LOCAL, dhcp_frames.ACK)
    assert out == [1], "the datapath delivered it: the controller's is a copy"
    entry = a.core.table.get(LEASED, clock())
    assert (entry.mac, entry.port, entry.local) == (CLIENT_MAC, 1, True)
    assert [i for i in intents if isinstance(i, IccSend)], "announced at once, no tick"
    deliver(intents, all_sites, "A")
    assert b.responders() == {LEASED}
    # B's host asks for the leased address: answered in B's datapath, nothing crosses
    out, intents = b.send(1, who_has("10.0.3.9", LEASED))
    assert out == [1] and not [i for i in intents if isinstance(i, IccSend)]


def test_a_renewal_announces_nothing_new(sites):
    all_sites, clock = sites
    a = all_sites["A"]
    a.send(1, dhcp_frames.REQUEST)
    a.send(BRIDGE_LOCAL, dhcp_frames.ACK)
    clock.now += 60
    _, intents = a.send(1, dhcp_frames.RENEW)
    _, intents = a.send(BRIDGE_LOCAL, dhcp_frames.RENEW_ACK)
    assert not [i for i in intents if isinstance(i, IccSend)]
    assert a.core.leases.table.get(LEASED).expires_at == clock() + 120


def test_a_release_withdraws_the_lease_everywhere(sites):
    all_sites, clock = sites
    a, b = all_sites["A"], all_sites["B"]
    a.send(1, dhcp_frames.REQUEST)
    deliver(a.send(BRIDGE_LOCAL, dhcp_frames.ACK)[1], all_sites, "A")
    _, intents = a.send(1, dhcp_frames.RELEASE)
    assert a.core.table.get(LEASED, clock()) is None
    clock.now += 0.2
    deliver(a.apply(a.core.tick()), all_sites, "A")
    assert b.core.table.get(LEASED, clock()) is None and b.responders() == set()


def test_an_expired_lease_is_withdrawn_everywhere(sites):
    all_sites, clock = sites
    a, b = all_sites["A"], all_sites["B"]
    a.send(1, dhcp_frames.REQUEST)
    deliver(a.send(BRIDGE_LOCAL, dhcp_frames.ACK)[1], all_sites, "A")
    clock.now += 119
    deliver(a.apply(a.core.tick()), all_sites, "A")
    assert b.responders() == {LEASED}
    clock.now += 1.5
    deliver(a.apply(a.core.tick()), all_sites, "A")
    assert a.core.table.get(LEASED, clock()) is None and b.responders() == set()
    assert a.core.stats["leases_expired"] == 1


def test_an_ack_from_a_container_is_never_a_lease(sites):
    a = sites[0]["A"]
    a.send(1, dhcp_frames.REQUEST)
    assert a.core.packet_in(2, dhcp_frames.ACK) == []
    assert a.core.leases.table.get(LEASED) is None and a.core.stats["dhcp_ignored"] == 1


# ---- bad input -------------------------------------------------------------------------------
def test_malformed_dhcp_is_dropped_and_counted(sites):
    core = sites[0]["A"].core
    rng = random.Random(20)
    ack = dhcp_frames.ACK
    bad = [ack[:n] for n in range(42, len(ack), 7)]
    bad += [ack[:rng.randrange(42, len(ack))] + os.urandom(rng.randrange(0, 40))
            for _ in range(200)]
    bad += [bytes(b ^ (rng.randrange(256) if rng.random() < 0.05 else 0) for b in ack)
            for _ in range(200)]
    for data in bad:
        assert isinstance(core.packet_in(BRIDGE_LOCAL, data), list)
    assert core.stats["dhcp_malformed"] > 50


def test_without_a_gateway_the_pipeline_is_as_before():
    clock = Clock()
    core = SwitchMode(options("A", ["B"]), clock=clock, wallclock=clock)
    flows = core.switch_connected(PORTS["A"])
    purposes = {pipeline.purpose_of(f.cookie) for f in flows if hasattr(f, "cookie")}
    assert not purposes & {"gateway_in", "gateway_out", "gateway_mac", "services_drop",
                           "services_local"}
    assert core.leases is None


def test_the_services_flows_are_audited_like_the_rest():
    """A site's audit finds its services flows in place, and puts back one removed by hand."""
    from ipop_ryu.core import reconcile
    from ipop_ryu.core.intents import DeleteFlows
    from .fakeswitch import FakeSwitch
    clock = Clock()
    core = SwitchMode(options("A", ["B"], peer_hold_time=1000, **SERVICES), clock=clock,
                      wallclock=clock)
    switch = FakeSwitch()
    switch.apply(core.switch_connected(PORTS["A"]))
    switch.answer(core)
    core.reconciler.hold_deletes = False

    def audit():
        clock.now += reconcile.AUDIT_INTERVAL + 0.01
        switch.apply(core.tick())
        return [i for i in switch.answer(core) if not isinstance(i, IccSend)]
    assert audit() == []
    gateway_mac = pipeline.cookie("gateway_mac")
    switch.apply([DeleteFlows(gateway_mac, pipeline.PURPOSE_MASK)])
    assert not switch.select(gateway_mac, pipeline.PURPOSE_MASK)
    for _ in range(3):                  # the audit under way, then the next one
        audit()
    assert switch.select(gateway_mac, pipeline.PURPOSE_MASK) and \
        core.stats["flows_repaired"] == 1


def hellos(intents):
    return [i for i in intents if isinstance(i, IccSend) and b'"hello"' in i.data]


def test_a_peer_with_another_gateway_is_reported_not_fought():
    clock = Clock()
    a = Site("A", clock, **SERVICES)
    out = []

    def hears(b, times=1):
        """A hears b's hellos (each B a fresh instance: its sequence numbers follow the
        clock, so a later one is no replay)."""
        for _ in range(times):
            clock.now += 10
            for send in hellos(b.core.tick()):
                out.extend(a.core.icc_datagram(send.data, ("192.0.2.2", 40000)))
    hears(Site("B", clock))                  # no services (or from before them): nothing
    assert a.core.gateway.mismatched == {}
    clock.now += 1
    hears(Site("B", clock, gateway=SERVICES["gateway"], gateway_mac="02:49:50:4f:50:02"), 2)
    assert a.core.stats["gateway_mismatch"] == 1, "reported once, not at every hello"
    assert a.core.gateway.mismatched == {"B": {
        "gateway_mac": ("02:49:50:4f:50:02", GATEWAY_MAC),
        "gateway6": (None, GATEWAY6 + "/64")}}
    assert not [i for i in out if not isinstance(i, IccSend)], "nothing changes in the bridge"
    clock.now += 1
    hears(Site("B", clock, **SERVICES))
    assert a.core.gateway.mismatched == {}

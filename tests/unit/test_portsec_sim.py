"""Port security (`port_security = dhcp`) on the simulated flow table: a port speaks only for
what its MAC leased; the rest of its ARP and ND is dropped in the datapath, counted, never
learned or announced; DHCP and address-less probes always pass."""
import dataclasses
import ipaddress

from ipop_ryu.core import arp, nd
from ipop_ryu.core.config import link_local_of, site_mac_of, slaac_of
from ipop_ryu.core.intents import BRIDGE_LOCAL, CONTROLLER, DeleteFlows, Flow, IccSend
from ipop_ryu.core.switchmode import SwitchMode

from .fakeoftable import FakeOFTable, ethernet, frame, nd_fields
from .helpers import Clock, mac_of, options, who_has

PORTS = {1: "c33", 2: "c34", 10: "ipop-B"}
C33, C34 = "10.0.3.33", "10.0.3.34"
GW6 = ipaddress.ip_interface("fd00:3::1/64")


def bridge(**kw):
    clock = Clock()
    core = SwitchMode(options("A", ["B"], peer_hold_time=1000, port_security="dhcp",
                              gateway=ipaddress.ip_interface("10.0.3.1/24"), gateway6=GW6,
                              **kw), clock=clock, wallclock=clock)
    table = FakeOFTable()
    table.apply(core.switch_connected(PORTS))
    return core, table, clock


def ports(out):
    return sorted(port for port, _ in out if port != CONTROLLER)


def flows(intents):
    return [i for i in intents if isinstance(i, (Flow, DeleteFlows))]


def garp(ip, mac=None):
    return frame(who_has(ip, ip, mac or mac_of(ip)))


def dhcp_discover(mac):
    return {**ethernet(mac, arp.BROADCAST_MAC), "ip_proto": 17, "ipv4_src": "0.0.0.0",
            "ipv4_dst": "255.255.255.255", "udp_src": 68, "udp_dst": 67}


def dropped(core, table):
    core.clock.now += 1                     # the counters are read once a second
    table.apply(core.tick())
    table.answer(core)
    return core.stats["port_security_dropped"]


def test_before_a_lease_only_dhcp_and_probes_pass():
    core, table, clock = bridge()
    assert ports(table.process(1, dhcp_discover(mac_of(C33)))) == [BRIDGE_LOCAL], \
        "DHCP passes (to the site's server only)"
    table.to_controller.clear()
    assert table.process(1, garp(C33)) == [], "no lease: its ARP is dropped"
    assert not table.to_controller, "... before anything could learn from it"
    probe = frame(who_has("0.0.0.0", C33, mac_of(C33)))
    assert ports(table.process(1, probe)) == [2], "an RFC 5227 probe claims nothing"
    dad = nd.build(nd.solicit("::", mac_of(C33), slaac_of(GW6.network, mac_of(C33))))
    assert ports(table.process(1, nd_fields(nd.parse(dad)))) == [2], "DAD passes"
    na = nd.build(nd.advertise(link_local_of(mac_of(C33)), mac_of(C33), "ff02::1",
                               "33:33:00:00:00:01"))
    assert table.process(1, nd_fields(nd.parse(na))) == []
    assert dropped(core, table) == 2


def test_a_lease_allows_its_address_and_another_address_is_dropped_and_counted():
    core, table, clock = bridge()
    table.apply(core.lease_granted(C33, mac_of(C33), 1))
    assert ports(table.process(1, garp(C33))) == [2] and len(table.to_controller) == 1
    assert table.process(1, garp(C34, mac_of(C33))) == [], "another address: dropped"
    assert table.process(1, garp(C33, "02:00:00:00:66:66")) == [], "its address, another MAC"
    assert table.process(2, garp(C33, mac_of(C34))) == [], "c34 claiming c33's address"
    assert dropped(core, table) == 3
    assert core.portsec.status()["dropped_by_port"] == {"c33": 2, "c34": 1}
    # the IPv6 addresses its MAC forms (SLAAC): its NA passes, another's does not
    mine = slaac_of(GW6.network, mac_of(C33))
    na = nd.build(nd.advertise(mine, mac_of(C33), "ff02::1", "33:33:00:00:00:01"))
    assert ports(table.process(1, nd_fields(nd.parse(na)))) == [2]
    assert table.process(2, nd_fields(nd.parse(na))) == []
    assert dropped(core, table) == 4
    # the bridge restarts: its flows (and their counts) start again, the counters do not
    table = FakeOFTable()
    table.apply(core.switch_connected(PORTS))
    assert table.process(2, garp(C33, mac_of(C34))) == []
    assert dropped(core, table) == 5


def test_a_spoofed_claim_is_never_learned_nor_announced():
    core, table, clock = bridge()
    table.apply(core.lease_granted(C33, mac_of(C33), 1))
    table.apply(core.packet_in(1, who_has(C33, C33)))              # c33 speaks: learned
    clock.now += 1
    table.apply(core.tick())
    # a frame of c34's claiming c33 that left before the drop flows: the controller refuses it
    out = core.packet_in(2, who_has(C33, C33, mac_of(C34)))
    assert not [i for i in out if isinstance(i, IccSend)]
    assert core.table.get(C33, clock()).mac == mac_of(C33)
    assert core.stats["port_security_refused"] == 1


def test_a_released_lease_revokes_and_a_new_holder_takes_it():
    core, table, clock = bridge()
    table.apply(core.lease_granted(C33, mac_of(C33), 1))
    assert ports(table.process(1, garp(C33))) == [2]
    table.apply(core.lease_ended(C33, mac_of(C33)))
    assert table.process(1, garp(C33)) == [], "released: no longer c33's to claim"
    table.apply(core.lease_granted(C33, mac_of(C34), 2))
    assert ports(table.process(2, garp(C33, mac_of(C34)))) == [1]
    assert not flows(core.lease_granted(C33, mac_of(C34), 2)), "a renewal changes no flow"


def test_a_port_that_leaves_takes_its_leases_and_a_reused_number_starts_bare():
    core, table, clock = bridge()
    table.apply(core.lease_granted(C33, mac_of(C33), 1))
    table.apply(core.ports_changed({2: "c34", 10: "ipop-B"}))
    assert not [f for f in table.flows.values() if f.match.get("in_port") == 1]
    table.apply(core.ports_changed({1: "c99", 2: "c34", 10: "ipop-B"}))    # OVS reuses 1
    assert table.process(1, garp(C33)) == [], "the old lease does not come with the number"
    assert ports(table.process(1, dhcp_discover(mac_of(C33)))) == [BRIDGE_LOCAL]


def test_static_hosts_and_the_site_port_speak_for_their_own_address():
    site = "10.0.3.2"
    core, table, clock = bridge(site_address=site,
                                static_hosts=(("02:00:00:00:03:09", "10.0.3.9"),))
    assert ports(table.process(1, garp("10.0.3.9", "02:00:00:00:03:09"))) == [2]
    assert ports(table.process(2, garp(site, site_mac_of(site)))) == [1]
    assert table.process(1, garp("10.0.3.9", mac_of(C33))) == [], "its address, not its MAC"


def test_the_flows_survive_an_audit():
    """The reconciler audits our flows as the bridge should hold them, leases included."""
    core, table, clock = bridge()
    table.apply(core.lease_granted(C33, mac_of(C33), 1))
    before = set(table.flows)
    for _ in range(50):
        clock.now += 1
        table.apply(core.tick())
        table.answer(core)
    assert set(table.flows) >= before
    assert ports(table.process(1, garp(C33))) == [2]


def test_without_port_security_nothing_changes():
    clock = Clock()
    core = SwitchMode(options("A", ["B"], peer_hold_time=1000), clock=clock, wallclock=clock)
    table = FakeOFTable()
    table.apply(core.switch_connected(PORTS))
    assert ports(table.process(2, garp(C33))) == [1]
    assert not flows(core.lease_granted(C33, mac_of(C33), 1))


def test_every_port_security_intent_goes_to_the_wire():
    """Allows, drops, the exact delete of one allow, a port's delete and the counter request,
    through the same translation the app uses (templates included)."""
    from ipop_ryu.core import pipeline_portsec
    from ipop_ryu.ofp.ryu13 import to_wire
    from .test_ofp import FakeDatapath
    core, table, clock = bridge()
    granted = core.lease_granted(C33, mac_of(C33), 1)
    intents = flows(core.portsec.flows() + granted + core.lease_ended(C33, mac_of(C33)) +
                    pipeline_portsec.delete_port(1)) + [core.portsec.counter_request()]
    assert any(type(i).__name__ == "DeleteFlows" and i.match_items for i in intents)
    datapath = FakeDatapath()
    for intent in intents:
        assert to_wire(datapath, intent) and all(to_wire(datapath, intent))


def test_a_real_dhcp_exchange_opens_the_port_names_the_host_and_its_release_closes_it():
    """udhcpc (hostname c7) on port 1 gets 10.0.3.30 from dnsmasq (frames captured): the ACK
    the bridge copies lets port 1 speak for it, c7 goes out with the announcement, and the
    RELEASE takes both back."""
    from ipop_ryu.core import icc
    from . import dhcp_frames
    core, table, clock = bridge()
    client = "02:00:0a:00:03:07"
    table.apply(core.packet_in(1, dhcp_frames.REQUEST))
    out = core.packet_in(BRIDGE_LOCAL, dhcp_frames.ACK)
    table.apply(out)
    assert ports(table.process(1, garp("10.0.3.30", client))) == [2]
    clock.now += 1
    sent = [icc.parse_payload(i.data[len(icc.MAGIC) + icc.SIG_LEN:])
            for i in out + core.tick() if isinstance(i, IccSend)]
    assert any(m.type == "bindings" and m["names"] == {"10.0.3.30": "c7"} for m in sent)
    table.apply(core.packet_in(1, dhcp_frames.RELEASE))
    assert table.process(1, garp("10.0.3.30", client)) == []
    assert core.table.get("10.0.3.30", clock()) is None


def test_the_drops_show_in_stats_metrics_and_ipop_ryu_stats():
    from ipop_ryu.cli import status as cli_status
    from ipop_ryu.core import metrics, status
    core, table, clock = bridge()
    table.apply(core.lease_granted(C33, mac_of(C33), 1))
    table.process(2, garp(C33, mac_of(C34)))
    table.process(2, garp(C33, mac_of(C34)))
    assert dropped(core, table) == 2
    core.neighbours.names.claim("10.0.3.70", "c70", "B", 1.0)
    core.neighbours.names.claim("10.0.3.71", "-x", "B", 1.0)
    s = status.stats(core)
    assert s["port_security"] == {"mode": "dhcp", "dropped": 2, "refused": 0, "leases": 1,
                                  "restored": 0, "dropped_by_port": {"c33": 0, "c34": 2}}
    assert s["names"]["known"] == 1 and s["names"]["refused"]["invalid"] == 1
    text = metrics.exposition(metrics.registry_for(core)).decode()
    assert 'ipop_port_security_dropped_total{node="A",port="c34"} 2.0' in text
    assert 'ipop_names_refused_total{node="A",reason="invalid"} 1.0' in text
    rendered = cli_status.render_stats(s)
    assert "port security       1 leases; dropped 2 (c34 2), refused 0" in rendered
    assert "names               1 known, 1 in the hosts file; conflicts 0; refused invalid 1" \
        in rendered


def test_leases_from_dnsmasqs_file_speak_until_renewed_or_run_out():
    """The controller restarted, its containers did not: their leases (dnsmasq's file) may
    speak with their own MAC from any local port until a DHCP exchange pins the port."""
    core, table, clock = bridge()
    now = clock()                       # the wall clock too, here
    text = (f"{int(now) + 60} {mac_of(C33)} {C33} c33 01:{mac_of(C33)}\n"
            f"{int(now) - 5} {mac_of(C34)} {C34} * *\n"               # ran out already
            "duid 00:01:00:01:2c:00:00:00:02:00:00:00:00:01\n"
            "0 02:00:00:00:00:09 fd00:3::9 c9 *\n"                       # DHCPv6: not ours
            "junk line\n")
    table.apply(core.restore_leases(text))
    assert core.stats["leases_restored"] == 1 and core.stats["lease_file_unreadable_lines"] == 1
    assert ports(table.process(1, garp(C33))) == [2]
    assert ports(table.process(2, garp(C33))) == [1], "its port is not known yet"
    assert table.process(2, garp(C33, mac_of(C34))) == [], "but only with its own MAC"
    assert table.process(2, garp(C34)) == [], "an expired lease gives nothing"
    table.apply(core.lease_granted(C33, mac_of(C33), 1))          # it renews on port 1
    assert table.process(2, garp(C33)) == [], "pinned to its port now"
    assert ports(table.process(1, garp(C33))) == [2]
    core2, table2, clock2 = bridge()
    table2.apply(core2.restore_leases(text))
    clock2.now += 61
    table2.apply(core2.tick())
    assert table2.process(1, garp(C33)) == [], "not renewed: it runs out"


def test_a_lease_that_ended_while_the_controller_was_away_is_audited_away():
    core, table, clock = bridge()
    table.apply(core.lease_granted(C33, mac_of(C33), 1))
    assert ports(table.process(1, garp(C33))) == [2]
    # a new controller on the same bridge, knowing no lease (nor any lease file)
    clock2 = Clock(clock() + 1)
    again = SwitchMode(dataclasses.replace(core.options, peer_hold_time=20), clock=clock2,
                       wallclock=clock2)
    table.apply(again.switch_connected(PORTS))
    for _ in range(120):                 # past the graceful restart: stale flows go
        clock2.now += 1
        table.apply(again.tick())
        table.answer(again)
    assert not again.graceful.active
    assert table.process(1, garp(C33)) == [], "its allow went with the audit"
    assert ports(table.process(1, frame(who_has("0.0.0.0", C33, mac_of(C33))))) == [2]


def ipv4(src, mac, dst="10.0.3.1", dst_mac="02:49:50:4f:50:01"):
    return {**ethernet(mac, dst_mac), "ip_proto": 1, "ipv4_src": src, "ipv4_dst": dst}


def ipv6(src, mac, dst="fd00:3::1", dst_mac="02:49:50:4f:50:01"):
    return {**ethernet(mac, dst_mac, nd.ETH_TYPE_IPV6), "ip_proto": 58, "icmpv6_type": 128,
            "ipv6_src": src, "ipv6_dst": dst}


def test_ip_from_a_port_only_from_what_it_leased():
    """A source guard: before its lease a port's IP is dropped (the gateway MAC is known to
    all: a spoofed source would reach the NAT), after it only from its address and MAC."""
    core, table, clock = bridge()
    to_c34 = dict(dst=C34, dst_mac=mac_of(C34))
    table.apply(core.lease_granted(C34, mac_of(C34), 2))
    table.process(2, ipv4(C34, mac_of(C34)))                     # c34's MAC learned
    assert table.process(1, ipv4(C33, mac_of(C33), **to_c34)) == [], "no lease yet"
    table.apply(core.lease_granted(C33, mac_of(C33), 1))
    assert ports(table.process(1, ipv4(C33, mac_of(C33), **to_c34))) == [2]
    assert table.process(1, ipv4(C34, mac_of(C33), **to_c34)) == [], "another's source"
    assert table.process(1, ipv4(C33, "02:00:00:00:66:66", **to_c34)) == [], "another MAC"
    mine = slaac_of(GW6.network, mac_of(C33))
    six = dict(dst=slaac_of(GW6.network, mac_of(C34)), dst_mac=mac_of(C34))
    assert ports(table.process(1, ipv6(mine, mac_of(C33), **six))) == [2]
    assert ports(table.process(1, ipv6(link_local_of(mac_of(C33)), mac_of(C33), **six))) == [2]
    assert table.process(1, ipv6("fd00:3::99", mac_of(C33), **six)) == []
    # an NA from its own source for another's target is still a claim: dropped
    na = nd.build(nd.advertise(slaac_of(GW6.network, mac_of(C34)), mac_of(C33), "ff02::1",
                               "33:33:00:00:00:01"))
    spoof = dict(nd_fields(nd.parse(na)), ipv6_src=mine)
    assert table.process(1, spoof) == []
    assert dropped(core, table) == 5


def test_the_site_port_routes_any_source_but_claims_only_its_own_address():
    """The host's answers from the gateway address and the NAT's traffic back from the
    internet leave by the site port: any IP source from its MAC; its ARP is checked."""
    site = "10.0.3.2"
    core, table, clock = bridge(site_address=site)
    table.apply(core.lease_granted(C34, mac_of(C34), 2))
    table.process(2, ipv4(C34, mac_of(C34)))                       # c34's MAC learned
    to_c34 = dict(dst=C34, dst_mac=mac_of(C34))
    for source in ("10.0.3.1", "198.51.100.1", site):
        assert ports(table.process(1, ipv4(source, site_mac_of(site), **to_c34))) == [2]
    assert table.process(1, garp("10.0.3.1", site_mac_of(site))) == [], "the gateway: no"
    assert table.process(1, ipv4("198.51.100.1", mac_of(C33), **to_c34)) == [], \
        "another MAC is no router"

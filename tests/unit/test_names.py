"""Hosts' names across sites (issue 20): which names are believed, which wins a name, what the
hosts file for dnsmasq says."""
import ipaddress
from collections import Counter

from ipop_ryu.core import icc
from ipop_ryu.core.addr import Subnets
from ipop_ryu.core.config import Options, Peer
from ipop_ryu.core.intents import IccSend, WriteFile
from ipop_ryu.core.names import Names, dns_label
from ipop_ryu.core.switchmode import SwitchMode

from .helpers import KEY, Clock, mac_of

HOSTS_DIR = "/nonexistent/hosts"      # the core only asks; the app writes
B, C = ("192.0.2.2", 30000), ("192.0.2.3", 30000)


def test_a_name_is_one_dns_label():
    for good, canonical in (("c7", "c7"), ("Web-1", "web-1"), ("7", "7"),
                            ("a" * 63, "a" * 63)):
        assert dns_label(good) == canonical
    for bad in ("", "-c7", "c7-", "c_7", "c7.lxc", "a" * 64, "c 7", "ç7", "c7\n",
                "c7\n10.0.3.9 gw", None, 7):
        assert dns_label(bad) is None, bad


def test_the_later_claim_wins_a_name_whatever_order_it_arrives_in():
    for order in ((("10.0.3.7", "B", 100.0), ("10.0.3.70", "C", 200.0)),
                  (("10.0.3.70", "C", 200.0), ("10.0.3.7", "B", 100.0))):
        names = Names("A", "lxc", Counter())
        for ip, node, since in order:
            names.claim(ip, "c7", node, since)
        assert names.owner("c7") == "10.0.3.70"
        assert names.hosts_lines() == ["10.0.3.70 c7 c7.lxc"]
        assert names.stats["names_conflict"] == 1
    names.claim("10.0.3.70", "c7", "C", 300.0)     # a refresh: the claim keeps its time
    names.claim("10.0.3.7", "c7", "B", 250.0)      # ... so this one stays the older
    assert names.owner("c7") == "10.0.3.70"
    names.drop("10.0.3.70")
    assert names.hosts_lines() == ["10.0.3.7 c7 c7.lxc"], "the other claimant takes it over"


def test_our_own_names_stay_out_of_the_file_and_keep_theirs_from_it():
    names = Names("A", "lxc", Counter())
    names.claim("10.0.3.3", "c3", "A", 100.0)          # our lease: our dnsmasq answers it
    names.claim("10.0.3.70", "c7", "C", 100.0)
    assert names.hosts_lines() == ["10.0.3.70 c7 c7.lxc"]
    names.claim("10.0.3.71", "c3", "C", 50.0)          # older than ours: ours holds it
    assert names.hosts_lines() == ["10.0.3.70 c7 c7.lxc"]
    names.claim("10.0.3.72", "c3", "B", 150.0)         # newer: the name is B's everywhere
    assert names.hosts_lines() == ["10.0.3.72 c3 c3.lxc", "10.0.3.70 c7 c7.lxc"]


def site(node="A"):
    clock = Clock(1000.0)
    peers = (Peer("B", *B, allowed_ips=Subnets(["10.0.3.64/27"])),
             Peer("C", *C, allowed_ips=Subnets(["10.0.3.96/27"])))
    options = Options(node_id=node, icc_key=KEY, peers=peers, peer_hold_time=1000,
                      gateway=ipaddress.ip_interface("10.0.3.1/24"),
                      own=Peer(node, "192.0.2.1", 30000,
                               allowed_ips=Subnets(["10.0.3.32/27"])),
                      dns_hosts_dir=HOSTS_DIR)
    core = SwitchMode(options, clock=clock, wallclock=clock)
    core.switch_connected({1: "c3", 10: "ipop-B", 11: "ipop-C"})
    return core, clock


def hosts_file(core):
    writes = [i for i in core.tick() if isinstance(i, WriteFile)]
    assert len(writes) <= 1
    return writes[0] if writes else None


def bindings(core, clock, node, addr, items, names):
    data = core.codec.encode("bindings", node, int(clock() * 1000), clock(),
                             bindings=[[ip, mac_of(ip)] for ip in items], names=names)
    return core.icc_datagram(data, addr)


def test_names_from_peers_make_the_hosts_file():
    core, clock = site()
    first = hosts_file(core)
    assert first.path == f"{HOSTS_DIR}/overlay" and first.text.count("\n") == 1, \
        "at start: an empty file (no comment but the header), whatever an old run left"
    assert hosts_file(core) is None, "unchanged: not written again"
    bindings(core, clock, "B", B, ["10.0.3.70", "10.0.3.71"],
             {"10.0.3.70": "c70", "10.0.3.71": "C71"})
    lines = hosts_file(core).text.splitlines()[1:]
    assert lines == ["10.0.3.70 c70 c70.lxc", "10.0.3.71 c71 c71.lxc"]
    withdraw = core.codec.encode("withdraw", "B", int(clock() * 1000) + 1, clock(),
                                 ips=["10.0.3.70"])
    core.icc_datagram(withdraw, B)
    assert hosts_file(core).text.splitlines()[1:] == ["10.0.3.71 c71 c71.lxc"]


def test_a_name_is_believed_only_from_the_site_that_may_claim_its_address():
    core, clock = site()
    hosts_file(core)
    bindings(core, clock, "C", C, ["10.0.3.70", "10.0.3.100"],
             {"10.0.3.70": "c70", "10.0.3.100": "c100"})     # .70 is B's to claim, not C's
    assert hosts_file(core).text.splitlines()[1:] == ["10.0.3.100 c100 c100.lxc"]
    assert core.stats["names_refused.not_allowed"] == 1
    assert core.table.get("10.0.3.70", clock()) is None


def test_an_invalid_name_is_refused_and_counted_but_its_host_is_learned():
    core, clock = site()
    hosts_file(core)
    bindings(core, clock, "B", B, ["10.0.3.70", "10.0.3.71"],
             {"10.0.3.70": "evil host; rm", "10.0.3.71": "x" * 64})
    assert core.stats["names_refused.invalid"] == 2
    assert core.table.get("10.0.3.70", clock()) is not None
    assert hosts_file(core) is None
    reply = core.codec.encode("arp_reply", "B", int(clock() * 1000) + 5, clock(),
                              ip="10.0.3.72", mac=mac_of("10.0.3.72"), name="-bad")
    core.icc_datagram(reply, B)
    assert core.stats["names_refused.invalid"] == 3
    assert core.table.get("10.0.3.72", clock()) is not None


def test_a_host_that_moves_loses_its_old_name_unless_its_new_claim_brings_one():
    core, clock = site()
    peers = {p.name: Peer(p.name, p.host, p.port) for p in core.options.peers}   # any address
    core.members.peers.get("B").peer = peers["B"]
    core.members.peers.get("C").peer = peers["C"]
    bindings(core, clock, "B", B, ["10.0.3.70"], {"10.0.3.70": "c70"})
    assert core.neighbours.names.name_of("10.0.3.70") == "c70"
    clock.now += 5
    reply = core.codec.encode("arp_reply", "C", int(clock() * 1000), clock(),
                              ip="10.0.3.70", mac=mac_of("10.0.3.70"))   # an older site: no name
    core.icc_datagram(reply, C)
    assert core.table.get("10.0.3.70", clock()).node == "C"
    assert core.neighbours.names.name_of("10.0.3.70") is None


def test_a_local_name_goes_out_with_its_host():
    core, clock = site()
    core.tick()
    ip = "10.0.3.33"
    core.neighbours._learn(ip, mac_of(ip), "A", 1, clock(), clock())
    core.neighbours.local_name(ip, "C33", clock())
    clock.now += 1
    sent = [icc.parse_payload(i.data[len(icc.MAGIC) + icc.SIG_LEN:])
            for i in core.tick() if isinstance(i, IccSend)]
    announced = [m for m in sent if m.type == "bindings"]
    assert announced and all(m["names"] == {ip: "c33"} for m in announced)
    assert core.neighbours.local_bindings(clock())[0][4] == "c33", "syncs carry it too"
    assert hosts_file(core) is None or ip not in hosts_file(core).text, \
        "our own host: our dnsmasq answers for its lease"

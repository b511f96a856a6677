"""Datapath first: a site's LAN never waits for its controller; hosts announced before anyone
asks (announce on) or relayed on demand (announce off)."""
import contextlib
import datetime
import os
import re
import signal
import subprocess
import time

import pytest

from ipop_ryu.core import pipeline, reconcile
from ipop_ryu.lab import netns
from ipop_ryu.lab.topology import mesh, seed_two_sites
from ipop_ryu.lab.traffic import arping, flush_arp, ping

from .util import arp_table, first_seen, flows, icc_captures, stats, wait_for


@contextlib.contextmanager
def stopped(site):
    """SIGSTOP the site's controller (the pid the lab started) for the block."""
    os.kill(site.controller_pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(site.controller_pid, signal.SIGCONT)


def speak(host):
    """Make a host send one ordinary ARP request, so its site learns it. The target is not a
    host address (never relayed, so peers learn nothing from a relay), and it is not a
    gratuitous ARP (announced even in pull mode, as a move would be)."""
    host.exec(["arping", "-c", "1", "-w", "1", "-i", "eth0", "127.0.0.2"], check=False)


def resolves(host, ip, mac):
    flush_arp(host)
    result = arping(host, ip, timeout=2)
    return result.ok and result.mac == mac


def test_same_site_resolution_with_the_controller_killed_or_stopped(lab_factory):
    lab = lab_factory(seed_two_sites())
    h3, h5 = lab.hosts["h3"], lab.hosts["h5"]
    lab.stop_controller("A")
    for _ in range(3):                                    # caches flushed repeatedly
        assert resolves(h5, h3.ip, h3.mac) and resolves(h3, h5.ip, h5.mac)
    flush_arp(h5)
    assert ping(h5, h3.ip).ok
    lab.start_controller("A")
    with stopped(lab.sites["A"]):
        for _ in range(3):
            assert resolves(h5, h3.ip, h3.mac)
        flush_arp(h3)
        assert ping(h3, h5.ip).ok


def responder_expires_at(site, ip):
    """When the site's responder flow for ip expires by OVS's own account (its hard_timeout
    less the duration it has lived), on this clock; None when there is no such flow."""
    read_at = time.monotonic()
    found = flows(site, "proxy_arp", ip)
    if not found:
        return None
    hard = int(re.search(r"hard_timeout=(\d+)", found[0]).group(1))
    lived = float(re.search(r"duration=([\d.]+)s", found[0]).group(1))
    return read_at + hard - lived


def test_learned_remote_hosts_answered_headless_until_their_timeout(lab_factory,
                                                                       record_property):
    lab = lab_factory(seed_two_sites(arp_timeout=12))
    a, h5, h7 = lab.sites["A"], lab.hosts["h5"], lab.hosts["h7"]
    speak(h7)
    wait_for(lambda: flows(a, "proxy_arp", h7.ip), 5, "A learned h7 (announced)")
    assert ping(h5, h7.ip).ok
    asked = time.monotonic()
    expires_in = arp_table(a)[h7.ip]["expires_in"]
    entry_expires = (asked + expires_in, time.monotonic() + expires_in)  # (REST's round trip)
    lab.stop_controller("A")
    flow_expires = responder_expires_at(a, h7.ip)
    # the flow dies with the entry: its hard timeout is the entry's life in whole seconds
    assert entry_expires[0] - 1.1 <= flow_expires <= entry_expires[1] + 0.1, \
        (entry_expires, flow_expires)
    assert resolves(h5, h7.ip, h7.mac), "answered by A's responder flow, A's controller dead"
    assert ping(h5, h7.ip).ok, "established traffic keeps flowing"
    # answered until the entry's timeout, then never (no stale answer past arp_timeout): when
    # OVS drops the flow, read from OVS itself (not from ARP attempts that take their time)
    def gone_at():
        looked = time.monotonic()
        return None if responder_expires_at(a, h7.ip) else looked
    gone = wait_for(gone_at, 60, "the responder flow's expiry", interval=0.05)
    record_property("flow_removed_after_expiry_s", round(gone - flow_expires, 2))
    assert -0.5 <= gone - flow_expires <= 1.5, (gone, flow_expires)
    assert not resolves(h5, h7.ip, h7.mac), "nothing else answers for it"


@pytest.mark.parametrize("announce", ["true", "false"])
def test_a_new_peer_host_reaches_a_host_behind_a_dead_controller(lab_factory, announce):
    lab = lab_factory(seed_two_sites(extra_options={"announce": announce}))
    h3, h7, b = lab.hosts["h3"], lab.hosts["h7"], lab.sites["B"]
    # each site has had the other's (still empty) state sync first: a sync that starts
    # after h3 spoke would carry h3 to B even in pull mode, and the point is that B lacks it
    for site in lab.sites.values():
        wait_for(lambda site=site: stats(site)["sync"]["ends_received"] >= 1, 10,
                 f"{site.name}'s first state sync from its peer")
    speak(h3)
    speak(h7)
    if announce == "true":
        wait_for(lambda: h3.ip in arp_table(b), 5, "B learned h3 from A's announcement")
        wait_for(lambda: h7.ip in arp_table(lab.sites["A"]), 5, "A learned h7")
    lab.stop_controller("A")
    result = ping(h7, h3.ip, count=3, timeout=6)
    if announce == "true":
        assert result.ok, result.output                 # h7 never talked to h3 before
        assert stats(b)["arp"]["relayed_to_peers"] == 0
    else:
        assert result.received == 0, "pull mode: B relays to the dead controller, no answer"
        assert "10.0.3.3" not in arp_table(b)


def test_a_ping_at_50_per_second_loses_at_most_one_echo_across_a_controller_restart(
        lab_factory, record_property):
    lab = lab_factory(seed_two_sites())
    h5, h7 = lab.hosts["h5"], lab.hosts["h7"]
    assert ping(h5, h7.ip).ok
    pinger = subprocess.Popen(netns.exec_argv(h5.ns, ["ping", "-n", "-i", "0.02", "-c", "400",
                                                      h7.ip]),
                              stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)                      # (the ping runs; nothing to wait for)
        lab.stop_controller("A")
        lab.start_controller("A")            # waits until the bridge is connected again
        out = pinger.communicate(timeout=30)[0]
    finally:
        netns.terminate(pinger)
    sent, received = map(int, re.search(r"(\d+) packets transmitted, (\d+) received",
                                        out).groups())
    record_property("echoes_lost", sent - received)
    assert sent == 400 and sent - received <= 1, out[-300:]


def port_deleted_at(site, port, since):
    """When the site's ovs-vswitchd deleted the port, by its own log's timestamp (UTC)."""
    with open(site.ovs.path("ovs-vswitchd", "log")) as log:
        log.seek(since)
        for line in log:
            if f"deleted interface {port} on port" in line:
                stamp = line.split("|", 1)[0]
                return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
    return None


def test_a_deleted_port_is_withdrawn_everywhere_within_a_second(lab_factory, record_property):
    lab = lab_factory(mesh(3, 1))
    sites = list(lab.sites.values())
    b, peers = sites[1], [sites[0], sites[2]]
    host = next(iter(b.hosts.values()))
    speak(host)
    wait_for(lambda: all(host.ip in arp_table(s) for s in sites), 5, "everyone learned it")
    mark = os.path.getsize(b.ovs.path("ovs-vswitchd", "log"))
    # from OVS deleting the port to B's withdrawal reaching each peer, by vswitchd's and the
    # kernel's timestamps (not around ovs-vsctl and REST calls, slow on a loaded machine)
    with contextlib.ExitStack() as stack:
        news = icc_captures(lab, stack, b.name, [s.name for s in peers])
        b.vsctl("del-port", b.bridge, host.port)                  # the container stops
        wait_for(lambda: all(host.ip not in arp_table(s) and not flows(s, "proxy_arp", host.ip)
                             for s in peers), 10, "withdrawn at every peer")
    deleted = wait_for(lambda: port_deleted_at(b, host.port, mark), 10, "vswitchd's log line")
    told = {name: first_seen(cap, [b'"withdraw"', host.ip.encode()], deleted)
            for name, cap in news.items()}
    assert None not in told.values(), (deleted, told)
    took = max(told.values()) - deleted
    record_property("withdrawn_after_s", round(took, 2))
    assert took < 1.0, f"{took:.2f}s: {told} after {deleted}"


@pytest.mark.parametrize("announce", ["true", "false"])
def test_both_announce_modes_end_to_end_on_three_sites(lab_factory, announce):
    lab = lab_factory(mesh(3, 2, extra_options={"announce": announce}))
    hosts = list(lab.hosts.values())
    for host in hosts:
        speak(host)
    if announce == "true":
        wait_for(lambda: all(len(arp_table(s)) == len(hosts) for s in lab.sites.values()),
                 5, "every site knows every host")
    with contextlib.ExitStack() as stack:                # the VXLAN overlay, at every site
        caps = [stack.enter_context(lab.capture(s.name, "ul0", "udp port 4789"))
                for s in lab.sites.values()]
        for src in hosts:
            for dst in hosts:
                if src is not dst:
                    assert ping(src, dst.ip, count=1).ok, (src.name, dst.name)
    relayed = sum(stats(s)["arp"]["relayed_to_peers"] for s in lab.sites.values())
    assert (relayed == 0) == (announce == "true"), relayed
    icmp = sum(c.count(lambda p: p.get("inner", {}).get("proto") == 1) for c in caps)
    assert icmp > 0, "the capture sees the overlay"
    arp_frames = sum(c.count(lambda p: p.get("inner", {}).get("ethertype") == 0x0806)
                     for c in caps)
    assert arp_frames == 0, "no ARP frame crosses the overlay in either mode"


def test_a_responder_removed_by_hand_is_repaired_by_the_audit(lab_factory):
    lab = lab_factory(seed_two_sites())
    a, h7 = lab.sites["A"], lab.hosts["h7"]
    speak(h7)
    wait_for(lambda: flows(a, "proxy_arp", h7.ip), 5, "A's responder for h7")
    cookie = f"cookie={pipeline.cookie('proxy_arp', h7.ip):#x}/-1"
    # what an audit puts back: "repaired" in a slice that still has flows, "reinstalled"
    # in one found empty (as this one is: h7's is A's only responder)
    def put_back():
        counted = stats(a)["flows"]
        return counted["audits"], counted["repaired"] + counted["reinstalled"]
    audits, before = put_back()
    a.ofctl("del-flows", a.bridge, cookie)
    assert not flows(a, "proxy_arp", h7.ip)
    # found by an audit (at most AUDIT_MAX apart when quiet: tests/unit/test_reconcile.py),
    # not by any traffic or sync: nothing else happens on the lab meanwhile
    wait_for(lambda: flows(a, "proxy_arp", h7.ip), 3 * reconcile.AUDIT_MAX, "repaired",
             interval=0.2)
    audits_after, after = put_back()
    assert audits_after > audits and after == before + 1, stats(a)["flows"]

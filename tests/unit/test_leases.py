"""The lease table and the lease watch: ACK, renewal, release, decline, expiry."""
import math
from collections import Counter

from ipop_ryu.core import dhcp
from ipop_ryu.core.intents import BRIDGE_LOCAL
from ipop_ryu.core.leases import CHANGED, NEW, RENEWED, LeaseTable, LeaseWatch
from ipop_ryu.core.ports import BridgePorts

from . import dhcp_frames
from .helpers import Clock

MAC, OTHER = "02:00:0a:00:03:07", "02:00:0a:00:03:08"


def test_ack_renew_and_a_new_port():
    table = LeaseTable()
    table.client_spoke(MAC, 1, 1000.0)
    assert table.ack("10.0.3.30", MAC, 120, "c7", 1000.0) == (NEW, [])
    lease = table.get("10.0.3.30")
    assert (lease.mac, lease.port, lease.hostname, lease.expires_at) == (MAC, 1, "c7", 1120.0)
    assert table.ack("10.0.3.30", MAC, 120, None, 1060.0) == (RENEWED, [])
    assert table.get("10.0.3.30").expires_at == 1180.0 and table.get("10.0.3.30").hostname == "c7"
    table.client_spoke(MAC, 4, 1070.0)
    assert table.ack("10.0.3.30", MAC, 120, None, 1070.0)[0] == CHANGED
    assert table.get("10.0.3.30").port == 4


def test_an_ack_ends_the_leases_it_replaces():
    table = LeaseTable()
    table.ack("10.0.3.30", MAC, 120, None, 1000.0)
    table.ack("10.0.3.31", OTHER, 120, None, 1000.0)
    what, ended = table.ack("10.0.3.31", MAC, 120, None, 1010.0)
    assert what == NEW and sorted((l.ip, l.mac) for l in ended) == [
        ("10.0.3.30", MAC), ("10.0.3.31", OTHER)]
    assert len(table) == 1


def test_release_only_by_the_holder():
    table = LeaseTable()
    table.ack("10.0.3.30", MAC, 120, None, 1000.0)
    assert table.release("10.0.3.30", OTHER) is None and len(table) == 1
    assert table.release("10.0.3.30", MAC).ip == "10.0.3.30" and len(table) == 0
    assert table.release("10.0.3.30", MAC) is None


def test_expiry_and_infinite_leases():
    table = LeaseTable()
    table.ack("10.0.3.30", MAC, 120, None, 1000.0)
    table.ack("10.0.3.31", OTHER, dhcp.INFINITE, None, 1000.0)
    assert table.get("10.0.3.31").expires_at == math.inf
    assert table.expire(1119.9) == []
    assert [l.ip for l in table.expire(1120.0)] == ["10.0.3.30"]
    assert table.expire(1e12) == [] and len(table) == 1


class FakeNeighbours:
    def __init__(self):
        self.calls = []

    def learn_lease(self, ip, mac, port, now):
        self.calls.append(("learn", ip, mac, port))
        return ["learned"]

    def withdraw_local(self, ip, mac, now):
        self.calls.append(("withdraw", ip, mac))
        return ["withdrawn"]


def watch():
    ports = BridgePorts(lambda name: name.startswith("ipop"))
    ports.set({1: "c7", 10: "ipop-B", BRIDGE_LOCAL: "br0"})
    clock, stats, neighbours = Clock(), Counter(), FakeNeighbours()
    return LeaseWatch(stats, clock, ports, neighbours), neighbours, stats, clock


def test_the_watch_learns_from_the_ack_of_a_request_it_saw():
    leases, neighbours, stats, clock = watch()
    assert leases.packet_in(1, dhcp_frames.REQUEST) == []
    assert leases.packet_in(BRIDGE_LOCAL, dhcp_frames.ACK) == ["learned"]
    assert neighbours.calls == [("learn", "10.0.3.30", MAC, 1)]
    clock.now += 60
    leases.packet_in(1, dhcp_frames.RENEW)
    assert leases.packet_in(BRIDGE_LOCAL, dhcp_frames.RENEW_ACK) == ["learned"]
    assert stats["leases_new"] == 1 and stats["leases_renewed"] == 1
    assert leases.packet_in(1, dhcp_frames.RELEASE) == ["withdrawn"]
    assert neighbours.calls[-1] == ("withdraw", "10.0.3.30", MAC)
    assert stats["leases_released"] == 1 and len(leases.table) == 0


def test_the_watch_withdraws_an_expired_lease():
    leases, neighbours, stats, clock = watch()
    leases.packet_in(1, dhcp_frames.REQUEST)
    leases.packet_in(BRIDGE_LOCAL, dhcp_frames.ACK)
    clock.now += 119
    assert leases.tick(clock()) == []
    clock.now += 1.5
    assert leases.tick(clock()) == ["withdrawn"] and stats["leases_expired"] == 1


def test_an_ack_whose_request_went_unseen_is_kept_but_not_learned():
    leases, neighbours, stats, _ = watch()
    assert leases.packet_in(BRIDGE_LOCAL, dhcp_frames.ACK) == []
    assert leases.table.get("10.0.3.30") is not None and neighbours.calls == []
    assert stats["lease_port_unknown"] == 1


def test_replies_only_from_the_gateway_requests_only_from_local_ports():
    leases, neighbours, stats, _ = watch()
    leases.packet_in(1, dhcp_frames.REQUEST)
    assert leases.packet_in(1, dhcp_frames.ACK) == []             # a container's server
    assert leases.packet_in(BRIDGE_LOCAL, dhcp_frames.RELEASE) == []
    assert leases.packet_in(10, dhcp_frames.ACK) == []
    assert neighbours.calls == [] and stats["dhcp_ignored"] == 3


def test_a_decline_withdraws():
    leases, neighbours, stats, _ = watch()
    leases.packet_in(1, dhcp_frames.REQUEST)
    leases.packet_in(BRIDGE_LOCAL, dhcp_frames.ACK)
    decline = bytearray(dhcp_frames.REQUEST)
    start = 14 + 20 + 8 + dhcp.BOOTP_FIXED + 4
    assert decline[start:start + 3] == b"\x35\x01\x03"
    decline[start + 2] = dhcp.DECLINE
    # the IPv4 header is untouched (its checksum holds); UDP's is not checked
    assert leases.packet_in(1, bytes(decline)) == ["withdrawn"]
    assert stats["leases_declined"] == 1


def test_not_dhcp_is_none_and_malformed_is_counted():
    leases, _, stats, _ = watch()
    from .helpers import who_has
    assert leases.packet_in(1, who_has("10.0.3.7", "10.0.3.1")) is None
    assert leases.packet_in(BRIDGE_LOCAL, dhcp_frames.ACK[:200]) == []
    assert stats["dhcp_malformed"] == 1

"""Parsing what OVS says about a site's data path; the fixtures are real outputs of OVS 3.1
(userspace datapath), captured on a lab site: ofproto/trace of a frame to a learned remote MAC
(a kernel VXLAN device as port 101), to an unknown MAC (flooded), to a flow left pointing at
port 99, and to an OVS VXLAN port (120) with no underlay bridge, with br-phy but no neighbour,
and working; tnl/neigh/show and ovs/route/lookup."""
import os

import pytest

from ipop_ryu.host import datapath

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "ovs")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


def outputs(name):
    found = datapath.parse_trace(fixture(name), "br0")
    return [(o.port, o.notes) for o in found.outputs], found.datapath_actions


def test_a_learned_mac_leaves_by_one_port():
    assert outputs("trace_kernel_vxlan.txt") == ([("101", [])], "1")


def test_an_unknown_mac_is_flooded_to_every_other_port():
    assert outputs("trace_flood.txt") == (
        [("1", ["skipping output to input port"]), ("2", []), ("101", [])], "3,1")


def test_a_flow_to_a_port_that_is_gone():
    assert outputs("trace_nonexistent.txt") == ([("99", ["Nonexistent output port"])], "drop")


@pytest.mark.parametrize("name, notes, actions", [
    ("trace_tunnel_no_route.txt", ["output to native tunnel", "native tunnel routing failed"],
     "drop"),
    ("trace_tunnel_neigh_miss.txt", [
        "output to native tunnel", "tunneling to 192.0.2.2 via br-phy",
        "neighbor cache miss for 192.0.2.2 on bridge br-phy, sending ARP request"], "drop"),
])
def test_an_ovs_tunnel_that_cannot_send(name, notes, actions):
    assert outputs(name) == ([("120", notes)], actions)


def test_an_ovs_tunnel_that_sends_and_its_underlay_bridge_is_not_an_output_of_br0():
    (port, notes), = outputs("trace_tunnel_ok.txt")[0]
    assert port == "120" and notes[-1].startswith("tunneling from 52:9c:4a:9d:a2:48 192.0.2.1")
    assert outputs("trace_tunnel_ok.txt")[1].startswith("tnl_push(tnl_port(5),")
    underlay = datapath.parse_trace(fixture("trace_tunnel_ok.txt"), "br-phy")
    assert underlay.outputs == [], "br-phy forwards by NORMAL: no output action of its own"


def test_neighbours():
    assert datapath.parse_neighbours(fixture("neigh_empty.txt")) == []
    assert datapath.parse_neighbours(fixture("neigh_one.txt")) == [
        datapath.Neighbour("192.0.2.2", "de:88:4b:3c:2b:27", "br-phy")]


def test_route_lookup():
    route = datapath.parse_route_lookup(fixture("route_lookup_br_phy.txt"))
    assert route == {"src": "192.0.2.1", "gateway": "::", "dev": "br-phy"}
    assert datapath.next_hop(route, "192.0.2.2") == "192.0.2.2", "connected: the remote itself"
    assert datapath.next_hop({"gateway": "192.0.2.254", "dev": "br-phy"}, "198.51.100.7") == \
        "192.0.2.254"
    assert datapath.parse_route_lookup(fixture("route_lookup_ul0.txt"))["dev"] == "ul0"
    assert datapath.parse_route_lookup(fixture("route_lookup_not_found.txt")) is None


def test_tunnel_overhead():
    assert datapath.tunnel_overhead("vxlan", "192.0.2.2") == 50
    assert datapath.tunnel_overhead("geneve", "2001:db8::2") == 70
    assert datapath.tunnel_overhead("gre", "192.0.2.2") == 38

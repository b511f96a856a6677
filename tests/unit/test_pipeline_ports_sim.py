"""No flow keeps pointing at a port or a site that is gone, on simulated flow tables: ports
deleted, replaced or down (learned flows included), their hosts withdrawn everywhere, and
hosts that move between sites forwarded to their new site at once."""
import pytest

from ipop_ryu.core import pipeline
from ipop_ryu.core.intents import CONTROLLER, DeleteFlows, Flow, IccSend, Output
from ipop_ryu.core.switchmode import SwitchMode

from .fakeoftable import FakeOFTable, ethernet, frame
from .helpers import Clock, mac_of, options, who_has

PORTS = {"A": {1: "h3", 2: "h5", 10: "ipop-B", 11: "ipop-C"},
         "B": {1: "h7", 2: "h104", 10: "ipop-A", 11: "ipop-C"},
         "C": {1: "h9", 10: "ipop-A", 11: "ipop-B"}}
ADDR = {"A": "192.0.2.1", "B": "192.0.2.2", "C": "192.0.2.3"}
TO_B, TO_C = 10, 11          # A's tunnels
MOVER = "10.0.3.104"         # h104, on B's port 2


class Site:
    def __init__(self, name, clock):
        self.name = name
        self.core = SwitchMode(options(name, [n for n in PORTS if n != name],
                                       peer_hold_time=1000), clock=clock, wallclock=clock)
        self.table = FakeOFTable()
        self.ports = dict(PORTS[name])
        self.outbox = []
        self.apply(self.core.switch_connected(self.ports))

    def apply(self, intents):
        self.table.apply([i for i in intents if isinstance(i, (Flow, DeleteFlows))])
        self.outbox += [i for i in intents if isinstance(i, IccSend)]
        return intents

    def ports_changed(self, down=()):
        if down:
            return self.apply(self.core.ports_changed(self.ports, down))
        return self.apply(self.core.ports_changed(self.ports))

    def send(self, port, data):
        """A host's ARP frame: through the datapath, and the controller's copy to the core."""
        self.table.punted_metadata.clear()
        out = self.table.process(port, frame(data))
        for metadata in list(self.table.punted_metadata):
            self.apply(self.core.packet_in(port, data, metadata))
        return out

    def outputs_to(self, port):
        """Our flows (learned ones included) that still send frames to port."""
        return [f for f in self.table.flows.values()
                if Output(port) in f.actions and pipeline.purpose_of(f.cookie) is not None]

    def learned_for(self, mac):
        return [f for f in self.table.flows.values()
                if pipeline.purpose_of(f.cookie) == "learned_mac" and f.match["eth_dst"] == mac]


class World:
    def __init__(self, names=tuple(PORTS)):
        self.clock = Clock()
        self.sites = {name: Site(name, self.clock) for name in names}
        self.run(1)                    # hellos: every peer up

    def __getitem__(self, name):
        return self.sites[name]

    def pump(self):
        """Carry every ICC datagram to its site, and what that causes, until quiet."""
        for _ in range(100):
            sends = [(site.name, s) for site in self.sites.values() for s in site.outbox]
            if not sends:
                return
            for site in self.sites.values():
                site.outbox = []
            for sender, send in sends:
                to = next(n for n, ip in ADDR.items() if ip == send.addr[0])
                if to in self.sites:
                    self.sites[to].apply(self.sites[to].core.icc_datagram(
                        send.data, (ADDR[sender], 40000)))
        raise AssertionError("ICC never quiet")

    def run(self, seconds):
        for _ in range(int(seconds * 10)):
            self.clock.now += 0.1
            for site in self.sites.values():
                site.apply(site.core.tick())
            self.pump()


def ports(out):
    return sorted(port for port, _ in out if port != CONTROLLER)


def test_a_deleted_port_takes_the_flows_learned_behind_it():
    a = Site("A", Clock())
    h3, h5 = mac_of("10.0.3.3"), mac_of("10.0.3.5")
    a.table.process(2, ethernet(h5, h3))                     # the datapath learns h5 on 2
    assert ports(a.table.process(1, ethernet(h3, h5))) == [2]
    del a.ports[2]
    a.ports_changed()
    assert a.outputs_to(2) == [], "no flow outputs to the deleted port"
    assert ports(a.table.process(1, ethernet(h3, h5))) == [TO_B, TO_C], "flooded, not lost"


@pytest.mark.parametrize("how", ["one port list", "delete, then add"])
def test_a_replaced_overlay_port_takes_its_learned_flows_and_the_new_one_is_used(how):
    """ipop-B deleted and added again: OVS gives it a new number (10 -> 12)."""
    a = Site("A", Clock())
    h3, h7 = mac_of("10.0.3.3"), mac_of("10.0.3.7")
    a.table.process(TO_B, ethernet(h7, h3))                  # B's host seen through ipop-B
    assert ports(a.table.process(1, ethernet(h3, h7))) == [TO_B]
    del a.ports[TO_B]
    if how == "delete, then add":
        a.ports_changed()
    a.ports[12] = "ipop-B"
    a.ports_changed()
    assert a.outputs_to(TO_B) == []
    assert ports(a.table.process(1, ethernet(h3, h7))) == [2, 11, 12], "flooded, new port too"
    a.table.process(12, ethernet(h7, h3))                    # its answer, on the new port
    assert ports(a.table.process(1, ethernet(h3, h7))) == [12]
    assert ports(a.table.process(12, ethernet(h7, "02:00:00:00:99:99"))) == [1, 2], \
        "classified as overlay: split horizon"


def test_a_port_that_goes_link_down_withdraws_its_host_everywhere_and_is_relearned_when_back():
    world = World(("A", "B"))
    a, b = world["A"], world["B"]
    h7, h104 = mac_of("10.0.3.7"), mac_of(MOVER)
    b.send(2, who_has(MOVER, "10.0.3.7"))                    # h104 speaks: learned, announced
    world.run(0.3)
    assert a.core.table.get(MOVER, world.clock()) is not None and MOVER in a.table.proxied
    assert ports(b.table.process(1, ethernet(h7, h104))) == [2]

    b.ports_changed(down={2})        # its container killed: the port stays, LINK_DOWN
    world.run(0.3)
    assert b.outputs_to(2) == [], "nothing learned behind the down port is used"
    assert b.core.table.get(MOVER, world.clock()) is None
    assert a.core.table.get(MOVER, world.clock()) is None, "withdrawn at the peer"
    assert MOVER not in a.table.proxied, "and no longer answered there"

    b.ports_changed()                # the same port, LINK_UP again
    world.run(0.3)
    assert a.core.table.get(MOVER, world.clock()) is None, "not back before it speaks"
    b.send(2, who_has(MOVER, "10.0.3.7"))
    world.run(0.3)
    assert b.core.table.get(MOVER, world.clock()).port == 2
    assert MOVER in a.table.proxied
    assert ports(b.table.process(1, ethernet(h7, h104))) == [2]


def learn_mover_at_b(world):
    """h104 speaks at B, every site learns it; A's datapath learns it behind ipop-B (A's host
    pings it)."""
    a, b = world["A"], world["B"]
    b.send(2, who_has(MOVER, "10.0.3.7"))
    world.run(0.3)
    assert all(site.core.table.get(MOVER, world.clock()).node == "B"
               for site in world.sites.values())
    a.table.process(TO_B, ethernet(mac_of(MOVER), mac_of("10.0.3.3")))
    assert ports(a.table.process(1, ethernet(mac_of("10.0.3.3"), mac_of(MOVER)))) == [TO_B]


def leave_b(world):
    del world["B"].ports[2]
    world["B"].ports_changed()
    world.run(0.3)


def arrive_at_c(world):
    c = world["C"]
    c.ports[2] = "h104"
    c.ports_changed()
    c.send(2, who_has(MOVER, MOVER))                         # one gratuitous ARP
    world.pump()


@pytest.mark.parametrize("order", ["withdrawal first", "claim first"])
def test_a_host_that_moves_between_sites_is_forwarded_to_its_new_site_at_once(order):
    """h104 leaves B (its port removed) and appears at C with the same MAC and address while
    A's host sends to it: A's datapath must not keep sending it into B's tunnel (the traffic
    itself would keep that learned flow alive)."""
    world = World()
    a = world["A"]
    h3, h104 = mac_of("10.0.3.3"), mac_of(MOVER)
    learn_mover_at_b(world)
    steps = [leave_b, arrive_at_c] if order == "withdrawal first" else [arrive_at_c, leave_b]
    for step in steps:
        step(world)
    world.run(0.3)
    assert a.core.table.get(MOVER, world.clock()).node == "C"
    assert [f for f in a.learned_for(h104) if Output(TO_B) in f.actions] == [], \
        "no learned flow sends the MAC to its old site"
    assert TO_C in ports(a.table.process(1, ethernet(h3, h104))), "it reaches the new site"
    a.table.process(TO_C, ethernet(h104, h3))                # its answer, from C
    assert ports(a.table.process(1, ethernet(h3, h104))) == [TO_C]


def test_a_host_of_a_site_that_went_down_is_forwarded_where_it_reappears():
    """B falls silent (its hosts withdrawn at A), then h104 is claimed by C: a new entry at
    A, so no move is seen there; B's tunnel must not keep its MAC."""
    world = World()
    a = world["A"]
    learn_mover_at_b(world)
    del world.sites["B"]             # gone: it hears and says nothing more
    a.apply(a.core.neighbours.peer_down("B"))       # (what A's liveness check decides)
    assert a.core.table.get(MOVER, world.clock()) is None
    arrive_at_c(world)
    assert a.core.table.get(MOVER, world.clock()).node == "C"
    assert TO_C in ports(a.table.process(1, ethernet(mac_of("10.0.3.3"), mac_of(MOVER))))


def test_a_learned_flow_that_comes_back_right_after_its_delete_is_deleted_again():
    """OVS reruns `learn` for frames it had not accounted for when a flow-mod makes it
    revalidate: h104's last echo replies through B's tunnel teach A's datapath the old place
    again just after the move's delete, and the pings would keep that flow alive."""
    world = World()
    a = world["A"]
    h3, h104 = mac_of("10.0.3.3"), mac_of(MOVER)
    learn_mover_at_b(world)
    leave_b(world)
    arrive_at_c(world)
    assert a.learned_for(h104) == []
    a.table.process(TO_B, ethernet(h104, h3))                # relearned from before the move
    world.run(1.2)
    assert [f for f in a.learned_for(h104) if Output(TO_B) in f.actions] == []
    assert TO_C in ports(a.table.process(1, ethernet(h3, h104)))

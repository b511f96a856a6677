"""The pipeline on a simulated flow table: where a frame comes out, and how it was rewritten."""
from ipop_ryu.core import arp, pipeline
from ipop_ryu.core.intents import CONTROLLER, PacketOut
from ipop_ryu.core.switchmode import SwitchMode

from .fakeoftable import FakeOFTable, ethernet, frame
from .helpers import Clock, is_at, mac_of, options, who_has

PORTS = {1: "h3", 2: "h5", 10: "ipop-B", 11: "ipop-C"}
LOCAL, OVERLAY = (1, 2), (10, 11)


def bridge(**kw):
    clock = Clock()
    core = SwitchMode(options("A", ["B", "C"], peer_hold_time=1000, **kw), clock=clock,
                      wallclock=clock)
    table = FakeOFTable()
    table.apply(core.switch_connected(PORTS))
    return core, table, clock


def ports(out):
    return sorted(port for port, _ in out if port != CONTROLLER)


def test_local_broadcast_arp_is_delivered_locally_with_a_metered_copy_to_the_controller():
    _, table, _ = bridge()
    out = table.process(1, frame(who_has("10.0.3.3", "10.0.3.5")))
    assert ports(out) == [2], "the other local port only: never the overlay"
    assert [meter for meter, _ in table.to_controller] == [1], "through port 1's meter"


def test_broadcast_arp_from_the_overlay_is_dropped():
    _, table, _ = bridge()
    assert table.process(10, frame(who_has("10.0.3.7", "10.0.3.3"))) == []


def test_a_learned_remote_target_is_answered_in_the_datapath():
    core, table, clock = bridge()
    table.apply(core.neighbours._learn("10.0.3.7", mac_of("10.0.3.7"), "B", None, clock(),
                                       clock()))
    out = table.process(2, frame(who_has("10.0.3.5", "10.0.3.7")))
    assert [port for port, _ in out] == [2] and not table.to_controller
    (_, answer), = out
    assert answer == {"eth_src": mac_of("10.0.3.7"), "eth_dst": mac_of("10.0.3.5"),
                      "eth_type": arp.ETH_TYPE_ARP, "arp_op": arp.ARP_REPLY,
                      "arp_sha": mac_of("10.0.3.7"), "arp_spa": "10.0.3.7",
                      "arp_tha": mac_of("10.0.3.5"), "arp_tpa": "10.0.3.5"}


def test_the_owners_own_broadcasts_are_never_answered():
    core, table, clock = bridge()
    table.apply(core.neighbours._learn("10.0.3.7", mac_of("10.0.3.7"), "B", None, clock(),
                                       clock()))
    out = table.process(1, frame(who_has("10.0.3.7", "10.0.3.7")))   # it moved here: GARP
    assert ports(out) == [2] and len(table.to_controller) == 1
    out = table.process(1, frame(who_has("0.0.0.0", "10.0.3.7", mac_of("10.0.3.7"))))
    assert ports(out) == [2], "a probe is delivered, not answered"


def test_local_replies_go_to_the_requester_and_a_copy_to_the_controller():
    _, table, _ = bridge()
    table.process(2, frame(who_has("10.0.3.5", "10.0.3.3")))          # h5 asks (learned)
    table.to_controller.clear()
    out = table.process(1, frame(is_at("10.0.3.3", "10.0.3.5")))
    assert ports(out) == [2] and len(table.to_controller) == 1


def test_the_owners_reply_to_a_replayed_request_goes_to_the_controller_only():
    core, table, clock = bridge()
    relay = core.codec.encode("arp_request", "B", 1, clock(), sender_ip="10.0.3.7",
                              sender_mac=mac_of("10.0.3.7"), target_ip="10.0.3.3")
    step = core.icc_datagram(relay, ("192.0.2.2", 30000))
    table.apply(step)
    (replay,) = [i for i in step if isinstance(i, PacketOut)]
    assert ports(table.packet_out(replay)) == [1, 2]
    table.to_controller.clear()
    reply = frame(is_at("10.0.3.3", "10.0.3.7"))
    out = table.process(1, reply)
    assert ports(out) == [] and len(table.to_controller) == 1, "it crosses as ICC only"
    metadata = table.punted_metadata[-1]
    assert metadata & pipeline.CAUGHT, "marked: the controller knows it was not delivered"
    answer = core.packet_in(1, arp.build(arp.reply("10.0.3.3", mac_of("10.0.3.3"), "10.0.3.7",
                                                   mac_of("10.0.3.7"))), metadata)
    assert not [i for i in answer if isinstance(i, PacketOut)]


def test_a_caught_reply_that_answers_no_relay_is_forwarded_by_the_controller():
    """A liveness probe's reply to a remote host whose requests are replayed here: the catch
    flow takes it, the controller puts it back into the pipeline, it reaches the overlay."""
    core, table, clock = bridge()
    table.process(10, ethernet(mac_of("10.0.3.7"), mac_of("10.0.3.3")))     # B's host seen
    relay = core.codec.encode("arp_request", "B", 1, clock(), sender_ip="10.0.3.7",
                              sender_mac=mac_of("10.0.3.7"), target_ip="10.0.3.99")
    table.apply(core.icc_datagram(relay, ("192.0.2.2", 30000)))
    data = arp.build(arp.reply("10.0.3.5", mac_of("10.0.3.5"), "10.0.3.7", mac_of("10.0.3.7")))
    assert ports(table.process(2, frame(data))) == []
    step = core.packet_in(2, data, table.punted_metadata[-1])
    (forward,) = [i for i in step if isinstance(i, PacketOut)]
    assert ports(table.packet_out(forward)) == [10], "on to the host that asked, once"


def test_unicast_arp_is_forwarded_to_the_learned_port():
    _, table, _ = bridge()
    table.process(10, ethernet(mac_of("10.0.3.7"), mac_of("10.0.3.3")))     # B's host seen
    probe = frame(is_at("10.0.3.3", "10.0.3.7"))
    probe.update(arp_op=arp.ARP_REQUEST)                     # a unicast liveness probe
    assert ports(table.process(1, probe)) == [10]


def test_split_horizon_and_mac_learning():
    _, table, _ = bridge()
    unknown = "02:00:00:00:99:99"
    assert ports(table.process(10, ethernet(mac_of("10.0.3.7"), unknown))) == [1, 2], \
        "from the overlay: local ports only, never another overlay port"
    assert ports(table.process(1, ethernet(mac_of("10.0.3.3"), unknown))) == [2, 10, 11]
    table.process(2, ethernet(mac_of("10.0.3.5"), unknown))
    assert ports(table.process(1, ethernet(mac_of("10.0.3.3"), mac_of("10.0.3.5")))) == [2]
    assert ports(table.process(10, ethernet(mac_of("10.0.3.7"), mac_of("10.0.3.5")))) == [2]


def test_every_flow_is_one_of_ours_and_no_lookup_is_ambiguous():
    core, table, clock = bridge()
    table.apply(core.neighbours._learn("10.0.3.7", mac_of("10.0.3.7"), "B", None, clock(),
                                       clock()))
    assert all(pipeline.purpose_of(f.cookie) for f in table.flows.values())
    for port in LOCAL + OVERLAY:
        for packet in (frame(who_has("10.0.3.3", "10.0.3.7")),
                       frame(is_at("10.0.3.7", "10.0.3.3")),
                       ethernet(mac_of("10.0.3.9"), "ff:ff:ff:ff:ff:ff")):
            table.process(port, packet)        # asserts there is never a priority tie

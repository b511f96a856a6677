"""Local and overlay ports of the bridge."""
from ipop_ryu.core.config import Options
from ipop_ryu.core.intents import Output
from ipop_ryu.core.ports import BridgePorts


def test_ports_are_classified_and_floods_skip_the_in_port():
    ports = BridgePorts(Options(node_id="A").is_overlay_port)
    ports.set({1: "h3", 2: "h5", 10: "ipop-B", 0xFFFFFFFE: "br0"})
    assert (ports.local, ports.overlay) == ([1, 2], [10])
    assert ports.is_local(1) and not ports.is_local(10) and not ports.is_local(99)
    assert ports.flood_from(1) == (Output(2),)
    assert ports.flood_from(None) == (Output(1), Output(2))     # from the controller
    assert ports.flood_from(10) == (Output(1), Output(2))

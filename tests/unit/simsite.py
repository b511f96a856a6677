"""One site of a simulated overlay: a core and its fake flow table, frames sent in at a port
with the copies the datapath punts handed to the core (as the app would)."""
from ipop_ryu.core.intents import IccSend, PacketOut
from ipop_ryu.core.switchmode import SwitchMode

from .fakeoftable import FakeOFTable, frame
from .helpers import options


class SimSite:
    def __init__(self, name, peers, ports, clock, **kw):
        self.core = SwitchMode(options(name, peers, peer_hold_time=1000, **kw), clock=clock,
                               wallclock=clock)
        self.table = FakeOFTable()
        self.apply(self.core.switch_connected(ports))

    def apply(self, intents):
        self.table.apply([i for i in intents if not isinstance(i, (PacketOut, IccSend))])
        return intents

    def send(self, port, data, fields=None):
        """A host's frame (fields: as the datapath sees it, when frame() cannot tell):
        through the datapath, and the controller's copies to the core. Returns the
        datapath's outputs and the core's intents."""
        self.table.to_controller.clear()
        self.table.punted_metadata.clear()
        out = self.table.process(port, fields or frame(data))
        intents = []
        for metadata in self.table.punted_metadata:     # as the packet-in carries it
            intents += self.apply(self.core.packet_in(port, data, metadata))
        return out, intents

"""The bridge's ports: which lead to hosts here (local) and which to other sites (overlay).

A port whose link is down (a killed container's veth: OVS keeps the port, LINK_DOWN) counts
as gone until it comes back: nothing can reach a host behind it.
"""
from typing import Dict, Iterable, List, Tuple

from .intents import Output

MAX_OFPORT = 0xFFFFFF00       # above are reserved ports (LOCAL, CONTROLLER...)


class BridgePorts:
    def __init__(self, is_overlay_port):
        self._is_overlay = is_overlay_port
        self.names: Dict[int, str] = {}          # the live ports
        self.down: Dict[int, str] = {}           # on the bridge, link down
        self.local: List[int] = []
        self.overlay: List[int] = []
        self._flood: Dict = {}

    def set(self, names: Dict[int, str], down: Iterable[int] = ()):
        """names: every port of the bridge; down: those whose link is down."""
        down = set(down)
        self.names = {n: name for n, name in names.items() if n not in down}
        self.down = {n: name for n, name in names.items() if n in down}
        self.overlay = sorted(n for n, name in self.names.items() if self._is_overlay(name))
        self.local = sorted(n for n, name in self.names.items()
                            if n < MAX_OFPORT and not self._is_overlay(name))
        # in_port (None: from the controller) -> outputs to the other local ports (hot path)
        self._flood = {p: tuple(Output(q) for q in self.local if q != p)
                       for p in [None] + self.local}

    def __contains__(self, port) -> bool:
        return port in self.names

    def is_local(self, port) -> bool:
        return port in self.names and port not in self.overlay

    def flood_from(self, in_port) -> Tuple[Output, ...]:
        """Outputs that flood a frame to every local port but the one it came from."""
        ports = self._flood.get(in_port)
        if ports is None:
            ports = tuple(Output(p) for p in self.local if p != in_port)
        return ports

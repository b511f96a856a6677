"""Port security (`port_security = dhcp`): which addresses each local port may speak for.

A lease makes its address the port's (the port its client's DHCP request came in on); a
release, an expiry or another client's lease of the address takes it away again, and a port
that leaves the bridge loses all of its. Leases from dnsmasq's lease file (read at start: the
controller restarted, its clients did not) are bound to their MAC on any local port until the
client's next DHCP exchange pins its port, or they run out. Static hosts (static_hosts, and
the site port's own site_address) may speak for their address from any local port, with their
own MAC only; the site port routes for the segment, so its IP may carry any source (its ARP
and ND claims are checked as any host's).
Each IPv4 address held brings its MAC's SLAAC addresses (EUI-64: fe80::/64 and gateway6's
prefix), since those follow from the MAC as the lease follows from DHCP.

The datapath enforces it (pipeline_portsec); this keeps what the bridge should hold, gives the
changes as flows, says whether a punted frame is permitted (frames in flight before the flows)
and turns the drop flows' packet counts into counters.
"""
import ipaddress
from collections import Counter
from typing import Dict, Iterable, List, Optional, Set, Tuple

from . import pipeline_portsec
from .config import Options, link_local_of, site_mac_of, slaac_of
from .intents import Flow

PORT_MASK = 0xFFFFFFFF                 # a per-port cookie's subject

Hold = Tuple[int, str, str, str]    # (port, mac, ip, the IPv4 address of its lease)


class PortSecurity:
    def __init__(self, options: Options, stats: Counter, ports):
        self.enabled = options.port_security == "dhcp"
        self.stats, self.ports = stats, ports
        self.prefix6 = options.gateway6.network if options.gateway6 is not None else None
        static = list(options.static_hosts)
        self.router = None           # (mac, address) of the site port, which routes
        if options.site_address is not None:
            self.router = (site_mac_of(options.site_address), options.site_address)
            static.append(self.router)
        self.static: Tuple[Tuple[str, str], ...] = tuple(static)
        self.leases: Dict[str, Tuple[int, str]] = {}      # ip -> (port, mac)
        self.restored: Dict[str, Tuple[str, float]] = {}  # ip -> (mac, until), from the file
        self._held: Optional[Set[Hold]] = None             # holds(), until a change
        self.installed: Set[Flow] = set()
        self.dropped: Dict[int, int] = {}                  # port -> packets, all time
        self._counted: Dict[int, int] = {}                 # port -> the flows' last count

    # ---- what the ports may say ----------------------------------------------------------
    def lease(self, ip: str, mac: str, port: int):
        self.leases[ip] = (port, mac)
        self.restored.pop(ip, None)
        self._held = None

    def revoke(self, ip: str):
        self.leases.pop(ip, None)
        self.restored.pop(ip, None)
        self._held = None

    def restore(self, ip: str, mac: str, until: float):
        if ip not in self.leases:
            self.restored[ip] = (mac, until)
            self._held = None

    def expire(self, now: float) -> bool:
        """Restored leases that ran out without a renewal go; True if any did."""
        gone = [ip for ip, (_, until) in self.restored.items() if until <= now]
        for ip in gone:
            del self.restored[ip]
        if gone:
            self._held = None
        return bool(gone)

    def drop_gone_ports(self):
        self._held = None
        for ip, (port, _) in list(self.leases.items()):
            if port not in self.ports.local:
                del self.leases[ip]
        for port in list(self._counted):
            if port not in self.ports.local:
                del self._counted[port]

    def _addresses(self, mac: str, ip: str) -> List[str]:
        found = [ip, link_local_of(mac)]
        if self.prefix6 is not None:
            found.append(slaac_of(self.prefix6, mac))
        return found

    def holds(self) -> List[Hold]:
        out = set()
        for ip, (port, mac) in self.leases.items():
            if port in self.ports.local:
                out.update((port, mac, address, ip) for address in self._addresses(mac, ip))
        for mac, ip in self.static + tuple((mac, ip) for ip, (mac, _) in self.restored.items()):
            for port in self.ports.local:
                out.update((port, mac, address, ip) for address in self._addresses(mac, ip))
        return sorted(out)

    def permits(self, port: int, ip: str, mac: str) -> bool:
        """May port speak for ip as mac? (Unsecured: yes.)"""
        if not self.enabled or port not in self.ports.local:    # (the gateway's own port too)
            return True
        if self._held is None:
            self._held = {hold[:3] for hold in self.holds()}
            self._held_v6 = {(p, a) for p, _, a in self._held if ":" in a}
        address = str(ipaddress.ip_address(ip))
        if ":" in address:   # ND's flows check the address, not the MAC (a NA may carry none)
            return (port, address) in self._held_v6
        return (port, mac, address) in self._held

    # ---- the flows ------------------------------------------------------------------------
    def flows(self) -> List[Flow]:
        if not self.enabled:
            return []
        return pipeline_portsec.flows_for(self.ports.local, self.holds(), self.router)

    def mark_installed(self):
        """The bridge was given flows() whole (a connect, a port change)."""
        self.installed = set(self.flows())

    def changes(self) -> list:
        """The flows that make the bridge hold what the leases say now: new allows first,
        then the deletes of the old (a renewed lease's flow is never briefly missing)."""
        wanted = set(self.flows())
        added = sorted(wanted - self.installed, key=_order)
        removed = sorted(self.installed - wanted, key=_order)
        self.installed = wanted
        return added + [pipeline_portsec.delete_flow(f) for f in removed]

    def delete_ports(self, ports: Iterable[int]) -> list:
        return [d for port in sorted(ports) for d in pipeline_portsec.delete_port(port)] \
            if self.enabled else []

    # ---- counters -------------------------------------------------------------------------
    def counter_request(self):
        return pipeline_portsec.DROP_COUNTERS if self.enabled else None

    def counted(self, flows) -> None:
        """The drop flows' (cookie, table, priority, n_packets): each port's drops, all time
        (a flow put in again starts from 0: what it had counted is kept)."""
        now: Dict[int, int] = Counter()
        for cookie_value, _, _, packets in flows:
            now[cookie_value & PORT_MASK] += packets
        for port, packets in now.items():
            last = self._counted.get(port, 0)
            gained = packets - last if packets >= last else packets
            self.dropped[port] = self.dropped.get(port, 0) + gained
            self._counted[port] = packets
        self.stats["port_security_dropped"] = sum(self.dropped.values())

    def status(self) -> dict:
        names = self.ports.names
        return {"mode": "dhcp" if self.enabled else "none",
                "dropped": sum(self.dropped.values()),
                "dropped_by_port": {names.get(port, str(port)): n
                                    for port, n in sorted(self.dropped.items())},
                "refused": self.stats["port_security_refused"],
                "leases": len(self.leases), "restored": len(self.restored)}

    def port_of(self, ip: str) -> Optional[int]:
        held = self.leases.get(ip)
        return held[0] if held else None


def _order(built: Flow):
    return (built.priority, built.cookie, built.match_items)

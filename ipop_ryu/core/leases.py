"""DHCP leases the site's own server grants, learned from the bridge (a copy of each DHCP
frame: the server's replies from the bridge's own port, the clients' requests from theirs).

A lease is known to the overlay at once: its ACK makes the client a local host, announced to
every peer as a gratuitous ARP would (neighbours.learn_lease), before the client has sent
a single ARP. A release, a decline or an expiry without renewal withdraws it.

    LeaseTable   the leases and where each client was last heard (pure bookkeeping)
    LeaseWatch   DHCP copies in, intents out (through neighbours)
"""
import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from . import dhcp
from .intents import BRIDGE_LOCAL
from .timers import Every

LOG = logging.getLogger("ipop_ryu")

NEW, RENEWED, CHANGED = "new", "renewed", "changed"
CLIENT_MEMORY = 120.0         # how long the port a client spoke from is kept without a lease
EXPIRY_SWEEP = 1.0


@dataclass
class Lease:
    ip: str
    mac: str
    expires_at: float         # math.inf: an infinite lease
    hostname: Optional[str] = None
    port: Optional[int] = None


class LeaseTable:
    def __init__(self):
        self.by_ip: Dict[str, Lease] = {}
        self._clients: Dict[str, Tuple[int, float]] = {}     # mac -> (port, when heard)

    def __len__(self):
        return len(self.by_ip)

    def get(self, ip: str) -> Optional[Lease]:
        return self.by_ip.get(ip)

    def client_spoke(self, mac: str, port: int, now: float):
        """A client's request came in on port: its ACK will be for a host there."""
        self._clients[mac] = (port, now)

    def port_of(self, mac: str) -> Optional[int]:
        heard = self._clients.get(mac)
        return heard[0] if heard else None

    def ack(self, ip: str, mac: str, seconds: int, hostname: Optional[str], now: float) \
            -> Tuple[str, List[Lease]]:
        """The server granted ip to mac for seconds (dhcp.INFINITE: forever). Returns NEW,
        RENEWED (same client, same address) or CHANGED (same client, new port or name), and
        the leases this one ends: the address another client held, the address this client
        held before."""
        ended = [lease for lease in self.by_ip.values()
                 if lease.mac == mac and lease.ip != ip]
        old = self.by_ip.get(ip)
        if old is not None and old.mac != mac:
            ended.append(old)
            old = None
        for lease in ended:
            del self.by_ip[lease.ip]
        expires = math.inf if seconds == dhcp.INFINITE else now + seconds
        port = self.port_of(mac)
        lease = Lease(ip, mac, expires, hostname or (old.hostname if old else None),
                      port if port is not None else (old.port if old else None))
        self.by_ip[ip] = lease
        if old is None:
            return NEW, ended
        same = (old.port, old.hostname) == (lease.port, lease.hostname)
        return (RENEWED if same else CHANGED), ended

    def release(self, ip: str, mac: str) -> Optional[Lease]:
        """The client gave ip back (only the holder can)."""
        lease = self.by_ip.get(ip)
        if lease is None or lease.mac != mac:
            return None
        return self.by_ip.pop(ip)

    def expire(self, now: float) -> List[Lease]:
        gone = [lease for lease in self.by_ip.values() if lease.expires_at <= now]
        for lease in gone:
            del self.by_ip[lease.ip]
        for mac, (_, heard) in list(self._clients.items()):
            if now - heard > CLIENT_MEMORY and not any(
                    lease.mac == mac for lease in self.by_ip.values()):
                del self._clients[mac]
        return gone


class LeaseWatch:
    """neighbours: learn_lease(ip, mac, port, now) and withdraw_local(ip, mac, now)."""

    def __init__(self, stats: Counter, clock, ports, neighbours):
        self.stats, self.clock, self.ports, self.neighbours = stats, clock, ports, neighbours
        self.table = LeaseTable()
        self._sweep = Every(EXPIRY_SWEEP)

    def packet_in(self, in_port, data: bytes) -> Optional[list]:
        """The intents for a DHCP copy, or None when data is not DHCP (for the rest of the
        punt path). A malformed one is dropped and counted."""
        try:
            frame = dhcp.parse(data)
        except dhcp.Malformed as exc:
            self.stats["dhcp_malformed"] += 1
            LOG.debug("malformed DHCP frame from port %s dropped: %s", in_port, exc)
            return []
        if frame is None:
            return None
        self.stats[f"dhcp_{frame.kind}"] += 1
        now = self.clock()
        if frame.op == dhcp.BOOTREQUEST and in_port in self.ports.local:
            return self._from_client(frame, in_port, now)
        if frame.op == dhcp.BOOTREPLY and in_port == BRIDGE_LOCAL:
            return self._from_server(frame, now)
        self.stats["dhcp_ignored"] += 1       # a reply from a container, a request from us
        return []

    def _from_client(self, frame: dhcp.DhcpFrame, port: int, now: float) -> list:
        self.table.client_spoke(frame.chaddr, port, now)
        if frame.message_type == dhcp.RELEASE:
            return self._end(self.table.release(frame.ciaddr, frame.chaddr), "released", now)
        if frame.message_type == dhcp.DECLINE and frame.requested_ip:
            # the client found its address in use: it is not the client's
            return self._end(self.table.release(frame.requested_ip, frame.chaddr), "declined",
                             now)
        return []

    def _from_server(self, frame: dhcp.DhcpFrame, now: float) -> list:
        if frame.message_type != dhcp.ACK or frame.yiaddr == "0.0.0.0":
            return []                    # an offer, a NAK, an ACK to INFORM: no lease
        seconds = frame.lease_time if frame.lease_time is not None else dhcp.INFINITE
        what, ended = self.table.ack(frame.yiaddr, frame.chaddr, seconds, frame.hostname, now)
        out = []
        for lease in ended:
            out += self._end(lease, "replaced", now)
        lease = self.table.get(frame.yiaddr)
        self.stats[f"leases_{what}"] += 1
        if lease.port is None or lease.port not in self.ports.local:
            # its request went unseen (we restarted in between): learned when it speaks
            self.stats["lease_port_unknown"] += 1
            return out
        if what == NEW:
            LOG.info("lease: %s to %s on %s for %s", lease.ip, lease.mac,
                     self.ports.names.get(lease.port, lease.port),
                     "ever" if lease.expires_at == math.inf else f"{seconds}s")
        return out + self.neighbours.learn_lease(lease.ip, lease.mac, lease.port, now)

    def _end(self, lease: Optional[Lease], why: str, now: float) -> list:
        if lease is None:
            return []
        self.stats[f"leases_{why}"] += 1
        LOG.info("lease %s of %s %s: withdrawn", lease.ip, lease.mac, why)
        return self.neighbours.withdraw_local(lease.ip, lease.mac, now)

    def tick(self, now: float) -> list:
        if not self._sweep.due(now):
            return []
        out = []
        for lease in self.table.expire(now):
            out += self._end(lease, "expired", now)
        return out

"""Neighbour-resolution families: what ARP (here) and IPv6 ND (family_nd.py) each know.

The neighbours logic (learning, relaying, answering, moves and conflicts) is the same for
both; a family supplies the rest behind one interface:

    parse(frame)            a punted frame as a Sighting, or None
    answer(owner, waiting)  the frame a waiting local host gets for an owner at another site
    replay(ip, mac, target) a request as the remote requester would send it on our LAN
    remind(ip, mac)         tells local hosts that ip is now at mac (ARP: gratuitous request)
    defend(owner)           the answer to a probe for an owned address (ND's DAD only)
    responders              the proxy flows the bridge should hold (`install`, `remove`, and
                            the reconciler's KeyedSources), relay catch flows
    request_type/reply_type the ICC messages that carry it between sites
"""
from dataclasses import dataclass
from typing import Dict, List, Optional

from . import arp, pipeline
from .addr import Subnets, ipv4_int
from .intents import Output, PacketOut
from .reconcile import KeyedSource


@dataclass(frozen=True)
class Sighting:
    """A punted ARP or ND frame, as the neighbours logic sees it."""
    family: "Family"
    request: bool            # a who-has / NS (else an is-at / NA)
    resolve: bool            # a broadcast or multicast request (else unicast: liveness)
    sender_ip: str           # who speaks for itself (an NA: its target); unspecified if none
    sender_mac: str
    target: str
    to_mac: str              # whom a reply is for (ARP: tha; an NA: its Ethernet destination)
    probe: bool              # no address yet: an RFC 5227 probe, a DAD NS (source ::)
    gratuitous: bool         # announcing its own address (unsolicited)
    eth_src: str
    bare: bool = False       # an NS without a source link-layer option
    router: bool = False     # an NA with the router flag


@dataclass(frozen=True)
class Requester:
    """A local host waiting for an answer from another site (ip unspecified: a DAD probe)."""
    ip: str
    mac: str
    port: int
    until: float
    bare: bool = False


class Family:
    name = ""
    request_type = reply_type = ""
    unspecified = ""
    defends_probes = False
    catch_per_requester = False   # one catch flow per remote requester (else per target)
    never_learned = Subnets(())
    purposes = ()            # the keyed flow purposes of its responders

    def __init__(self):
        self.responders: Dict[str, float] = {}   # ip -> when OVS drops its responder flow

    def host_address(self, ip: str) -> bool:
        return ip not in self.never_learned

    def defend(self, owner_ip: str, owner_mac: str) -> Optional[bytes]:
        return None

    def learned_router(self, ip: str, router: bool) -> bool:
        """An owner's answer said whether it is a router (ND only): True if that changed."""
        return False

    def claim(self, ip: str, mac: str) -> dict:
        """The fields of a reply_type message claiming ip at mac."""
        return {"ip": ip, "mac": mac}

    def is_router(self, ip: str) -> bool:
        return False

    def sources(self, build) -> Dict[str, KeyedSource]:
        """build(ip) -> the flows of ip's responder (in `purposes` order), or []."""
        def source(index):
            return KeyedSource(
                subjects=lambda: map(self.subject, self.responders),
                count=lambda: len(self.responders),
                wants=lambda low: self.ip_of(low) in self.responders,
                build=lambda low: (build(self.ip_of(low)) or [None] * len(self.purposes))[index],
                table=pipeline.ARP)
        return {purpose: source(n) for n, purpose in enumerate(self.purposes)}

    def answer_out(self, frame: bytes, port) -> PacketOut:
        return PacketOut(frame, (Output(port),))


class ArpFamily(Family):
    name = "arp"
    request_type, reply_type = "arp_request", "arp_reply"
    unspecified = arp.UNSPECIFIED_IP
    never_learned = Subnets(("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3", "255.255.255.255/32"))
    purposes = ("proxy_arp", "proxy_arp_guard")
    catch_per_requester = True

    @staticmethod
    def owns(ip: str) -> bool:
        return "." in ip

    def parse(self, data: bytes) -> Optional[Sighting]:
        frame = arp.parse(data)
        if frame is None:
            return None
        return Sighting(self, frame.op == arp.ARP_REQUEST, frame.is_broadcast, frame.spa,
                        frame.sha, frame.tpa, frame.tha, frame.is_probe, frame.is_gratuitous,
                        frame.eth_src)

    def answer(self, ip: str, mac: str, waiting: Requester) -> bytes:
        return arp.build(arp.reply(ip, mac, waiting.ip, waiting.mac))

    def replay(self, sender_ip: str, sender_mac: str, target: str) -> bytes:
        return arp.build(arp.request(sender_ip, sender_mac, target))

    def remind(self, ip: str, mac: str) -> bytes:
        return arp.build(arp.request(ip, mac, ip))

    # ---- flows --------------------------------------------------------------------------------
    subject = staticmethod(ipv4_int)

    @staticmethod
    def ip_of(low: int) -> str:
        return pipeline.ip_of(low)

    def install(self, ip: str, mac: str, hard_timeout: int, now: float) -> List:
        self.responders[ip] = now + hard_timeout
        return pipeline.install_arp_responder(ip, mac, hard_timeout)

    def remove(self, ip: str) -> List:
        self.responders.pop(ip, None)
        return pipeline.delete_arp_responder(ip)

    def relay_catch(self, target: str, requester: str, mac: str, hard_timeout: int):
        """The requester's: every local reply to it goes to the controller, marked CAUGHT."""
        return pipeline.install_relay_reply_punt(requester, mac, hard_timeout)

    def delete_relay_catch(self, target: str) -> list:
        return []                # the requester's catch flow times out by itself


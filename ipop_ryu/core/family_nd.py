"""The IPv6 Neighbor Discovery family (RFC 4861, DAD of RFC 4862): ND behind the interface
of family.py, with its flows from pipeline_nd.py.

What differs from ARP:
- the requester's address comes from the NS's IPv6 source and its MAC from the source
  link-layer option (the Ethernet source when there is none); an NA speaks for its target;
- an NS without a source link-layer option is answered (by the controller) with an NA
  without a target one, as RFC 4861 7.2.4 has the owner do for a unicast answer;
- duplicate address detection crosses sites: a DAD probe (source ::) for an address owned
  elsewhere is defended with the NA its owner would send (to all-nodes, override, not
  solicited), from the table or after a relay; an address nobody owns passes. A flow never
  answers a DAD probe (its nonce would become a bogus target link-layer address);
- the router flag of an owner's NA is kept, carried in `nd_reply` (`router`) and bindings
  (a fourth element, 1), and set in the answers for it at every site.
"""
from typing import List, Optional, Set

from . import nd, pipeline_nd
from .addr import Subnets
from .family import Family, Requester, Sighting


class NdFamily(Family):
    name = "nd"
    request_type, reply_type = "nd_request", "nd_reply"
    unspecified = nd.UNSPECIFIED
    defends_probes = True
    never_learned = Subnets(("::/128", "::1/128", "ff00::/8", "::ffff:0:0/96"))
    purposes = ("proxy_nd",)

    def __init__(self):
        super().__init__()
        self.subjects = pipeline_nd.Subjects()
        self.routers: Set[str] = set()      # owners whose NA said "router"

    @staticmethod
    def owns(ip: str) -> bool:
        return ":" in ip

    def parse(self, data: bytes) -> Optional[Sighting]:
        frame = nd.parse(data)
        if frame is None:
            return None
        mac = frame.lladdr or frame.eth_src
        if frame.type == nd.NS:
            return Sighting(self, True, frame.is_multicast, frame.src, mac, frame.target,
                            frame.eth_dst, frame.is_dad, False, frame.eth_src,
                            bare=frame.lladdr is None)
        return Sighting(self, False, frame.is_multicast, frame.target, mac, frame.target,
                        frame.eth_dst, False, not frame.flags & nd.FLAG_SOLICITED,
                        frame.eth_src, router=bool(frame.flags & nd.FLAG_ROUTER))

    def answer(self, ip: str, mac: str, waiting: Requester) -> bytes:
        if waiting.ip == nd.UNSPECIFIED:
            return self.defend(ip, mac)
        return nd.build(nd.advertise(ip, mac, waiting.ip, waiting.mac, ip in self.routers,
                                     with_tlla=not waiting.bare))

    def defend(self, owner_ip: str, owner_mac: str) -> bytes:
        return nd.build(nd.defend(owner_ip, owner_mac, owner_ip in self.routers))

    def replay(self, sender_ip: str, sender_mac: str, target: str) -> bytes:
        solicit = nd.solicit(sender_ip, sender_mac, target)
        if sender_ip == nd.UNSPECIFIED:          # a DAD probe has no source link-layer option
            solicit = nd.NdFrame(solicit.eth_src, solicit.eth_dst, solicit.src, solicit.dst,
                                 nd.NS, target, None)
        return nd.build(solicit)

    def remind(self, ip: str, mac: str) -> bytes:
        return self.defend(ip, mac)              # an unsolicited NA with override

    def learned_router(self, ip: str, router: bool) -> bool:
        if router == (ip in self.routers):
            return False
        (self.routers.add if router else self.routers.discard)(ip)
        return True

    def claim(self, ip: str, mac: str) -> dict:
        return {"ip": ip, "mac": mac, **({"router": True} if ip in self.routers else {})}

    def is_router(self, ip: str) -> bool:
        return ip in self.routers

    # ---- flows --------------------------------------------------------------------------------
    def subject(self, ip: str) -> int:
        return self.subjects.of_ip[ip]

    def ip_of(self, low: int) -> Optional[str]:
        return self.subjects.ip_of.get(low)

    def install(self, ip: str, mac: str, hard_timeout: int, now: float) -> List:
        self.responders[ip] = now + hard_timeout
        return [pipeline_nd.install_nd_responder(ip, mac, self.subjects.take(ip), hard_timeout,
                                                 ip in self.routers)]

    def remove(self, ip: str) -> List:
        self.responders.pop(ip, None)
        subject = self.subjects.of_ip.get(ip)
        if subject is None:
            return []
        self.subjects.release(ip)
        return pipeline_nd.delete_nd_responder(subject)

    def relay_catch(self, target: str, requester: str, mac: str, hard_timeout: int):
        to = pipeline_nd.ALL_NODES_MAC if requester == nd.UNSPECIFIED else mac
        return pipeline_nd.install_relay_reply_punt(target, to, hard_timeout)

    def delete_relay_catch(self, target: str) -> list:
        return [pipeline_nd.delete_relay_reply_punt(target)]

"""The IPv6 Neighbor Discovery flows of the pipeline (the ND family; pipeline.py has ARP's).

    ARP        multicast NS/NA from the overlay dropped (ND crosses sites only as ICC);
               a DAD probe (source ::) and an NS without a source link-layer option are
               delivered locally and copied to PUNT, never answered by a flow; any other
               multicast NS for a learned remote target is answered by its responder; the
               rest of the local multicast NS/NA is delivered locally with a copy to PUNT;
               unicast NAs are forwarded and copied; unicast NS (neighbour unreachability
               detection) go on to LEARN like any frame and reach the real host
    ND_ANSWER  completes an answer: the owner's MAC into the target link-layer option,
               out of the port the NS came in on

A responder answers as the owner would (RFC 4861 7.2.4): the NS becomes a solicited NA in
place, Ethernet and IPv6 addresses swapped, flags S and O (R for a router owner), its source
link-layer option turned into the target one. OVS takes `set_field:...->nd_tll` (and a move
into it) only in a flow whose match says icmpv6_type=136, hence the second table. RS, RA,
MLD and every other ICMPv6 message pass through the pipeline as any frame.
"""
from typing import Dict, List

from . import pipeline
from .intents import IN_PORT, DeleteFlows, Flow, Move, Output, Resubmit, SetField
from .nd import ALL_NODES, ETH_TYPE_IPV6, FLAG_OVERRIDE, FLAG_ROUTER, FLAG_SOLICITED, \
    ICMPV6, NA, NS, OPT_TLLA, UNSPECIFIED, multicast_mac
from .pipeline import (ARP, CAUGHT, DELIVER_LOCALLY, FROM_LOCAL, FROM_OVERLAY, FWD_ANY, METADATA_MASK,
                       ND_ANSWER, PRIO_DROP, PRIO_GUARD, PRIO_PORT, PRIO_PUNT, PRIO_RELAY_REPLY,
                       PRIO_RESPONDER, PUNT, cookie, flow)

GROUP = ("01:00:00:00:00:00", "01:00:00:00:00:00")     # eth_dst: the I/G (multicast) bit
NO_LLADDR = "00:00:00:00:00:00"                        # how OVS sees an absent option
ALL_NODES_MAC = multicast_mac(ALL_NODES)
_LOCAL = {"metadata": (FROM_LOCAL, METADATA_MASK)}
_OVERLAY = {"metadata": (FROM_OVERLAY, METADATA_MASK)}


def _nd(kind: int) -> dict:
    return {"eth_type": ETH_TYPE_IPV6, "ip_proto": ICMPV6, "icmpv6_type": kind}


def base_flows(learn: list) -> List[Flow]:
    """learn: the MAC-learning actions local frames carry (pipeline's)."""
    punt, local_ns = cookie("nd_punt"), {**_LOCAL, **_nd(NS), "eth_dst": GROUP}
    deliver = learn + DELIVER_LOCALLY
    return [
        flow(ARP, PRIO_DROP, cookie("overlay_nd_drop"), {**_OVERLAY, **_nd(kind),
                                                         "eth_dst": GROUP})
        for kind in (NS, NA)
    ] + [
        # never answered by a flow: DAD probes, and an NS without a source link-layer
        # option (the controller answers it with an NA without a target one)
        flow(ARP, PRIO_GUARD, punt, {**local_ns, "ipv6_src": UNSPECIFIED}, deliver, goto=PUNT),
        flow(ARP, PRIO_GUARD - 5, punt, {**local_ns, "ipv6_nd_sll": NO_LLADDR}, deliver,
             goto=PUNT),
        flow(ARP, PRIO_PUNT, punt, local_ns, deliver, goto=PUNT),
        # unsolicited NAs (to all-nodes): local only; solicited ones forwarded; both copied
        flow(ARP, PRIO_PUNT + 10, punt, {**_LOCAL, **_nd(NA), "eth_dst": GROUP}, deliver,
             goto=PUNT),
        flow(ARP, PRIO_PUNT, punt, {**_LOCAL, **_nd(NA)}, learn + [Resubmit(FWD_ANY)],
             goto=PUNT),
        flow(ND_ANSWER, PRIO_PORT, cookie("nd_answer"), _nd(NA),
             [Move("eth_src", "ipv6_nd_tll", 48), Output(IN_PORT)]),
    ]


def install_nd_responder(ip: str, mac: str, subject: int, hard_timeout: int = 0,
                         router: bool = False) -> Flow:
    """Answer a multicast NS for ip from a local port in the datapath, as mac would."""
    flags = FLAG_SOLICITED | FLAG_OVERRIDE | (FLAG_ROUTER if router else 0)
    return flow(
        ARP, PRIO_RESPONDER, cookie("proxy_nd", low=subject),
        {**_LOCAL, **_nd(NS), "eth_dst": GROUP, "ipv6_nd_target": ip},
        [Move("eth_src", "eth_dst", 48), SetField("eth_src", mac),
         Move("ipv6_src", "ipv6_dst", 128), SetField("ipv6_src", ip),
         SetField("icmpv6_type", NA), SetField("nd_reserved", flags << 24),
         SetField("nd_options_type", OPT_TLLA)],
        goto=ND_ANSWER, hard_timeout=hard_timeout)


def delete_nd_responder(subject: int) -> List[DeleteFlows]:
    return [DeleteFlows(cookie("proxy_nd", low=subject))]


def install_relay_reply_punt(target: str, requester_mac: str, hard_timeout: int) -> Flow:
    """While an NS from another site is replayed here, the owner's NA to it goes to the
    controller only, marked CAUGHT (as ARP's catch flow does). The NA defending an address
    (DAD) goes to all-nodes: pass its MAC."""
    return flow(ARP, PRIO_RELAY_REPLY, cookie("nd_relay_reply", target),
                {**_LOCAL, **_nd(NA), "ipv6_nd_target": target, "eth_dst": requester_mac},
                metadata=(CAUGHT, CAUGHT), goto=PUNT, hard_timeout=hard_timeout)


def delete_relay_reply_punt(target: str) -> DeleteFlows:
    """By cookie and target: two targets may share a cookie (CRC-32)."""
    return DeleteFlows(cookie("nd_relay_reply", target), table=ARP,
                       match_items=tuple(sorted({**_nd(NA), "ipv6_nd_target": target}.items())))


class Subjects:
    """The cookie subject of each IPv6 address with a flow: its CRC-32, or on a collision
    the next value no other address holds. Stable for an address while it has a flow, and
    the same after a restart unless two addresses collide (then an audit repairs)."""

    def __init__(self):
        self.of_ip: Dict[str, int] = {}
        self.ip_of: Dict[int, str] = {}

    def take(self, ip: str) -> int:
        subject = self.of_ip.get(ip)
        if subject is None:
            subject = pipeline.v6_subject(ip)
            while subject in self.ip_of:
                subject = (subject + 1) & 0xFFFFFFFF
            self.of_ip[ip], self.ip_of[subject] = subject, ip
        return subject

    def release(self, ip: str):
        subject = self.of_ip.pop(ip, None)
        if subject is not None:
            del self.ip_of[subject]

"""The site-services flows of the pipeline: an anycast gateway on the bridge's own port
(OFPP_LOCAL, as lxcbr0 carried 10.0.3.1), its DHCP server and router advertisements, all
kept inside the site (pipeline.py has the rest; these exist only when `gateway` is set).

    ARP        from the overlay: anything from or to the gateway MAC, ARP/ND about a gateway
               address, DHCP and RS/RA, dropped (the same gateway answers at every site);
               from the bridge's own port: to local ports only, never punted (the controller
               never learns the gateway), except DHCP replies, copied to the controller (a
               lease is announced from its ACK); from local ports: ARP/NS for a gateway
               address, DHCP requests and RS to the bridge's own port only (ARP/ND and DHCP
               with a copy to the controller, which learns the sender and never relays), a
               claim of a gateway address dropped, DHCP replies and RAs from a container
               delivered to local ports only
    FWD_ANY    the gateway MAC -> the bridge's own port, before any learned MAC

The frames the site host sends from its own address (site_address) come from a port of
their own and are a host's like any other.
"""
from typing import List

from .arp import ETH_TYPE_ARP
from .config import Options
from .intents import BRIDGE_LOCAL, Flow, Output, Resubmit
from .nd import ETH_TYPE_IPV6, ICMPV6, NA, NS
from .pipeline import (ARP, DELIVER_LOCALLY, FROM_LOCAL, FROM_OVERLAY, FWD_ANY, FWD_LOCAL,
                       METADATA_MASK, PRIO_DROP, PUNT, cookie, flow)

ETH_TYPE_IPV4, UDP = 0x0800, 17
DHCP_SERVER, DHCP_CLIENT = 67, 68
RS, RA = 133, 134
# above every flow of pipeline.py and pipeline_nd.py in their table (the overlay drops above
# theirs too, which drop broadcast ARP and multicast ND only)
PRIO_FROM_GATEWAY, PRIO_CLAIM_DROP, PRIO_TO_GATEWAY, PRIO_CONTAINED = 395, 393, 392, 390
PRIO_GATEWAY_MAC = 150                       # over learned MACs (pipeline.PRIO_PORT)
_LOCAL = {"metadata": (FROM_LOCAL, METADATA_MASK)}
_OVERLAY = {"metadata": (FROM_OVERLAY, METADATA_MASK)}
TO_GATEWAY = Output(BRIDGE_LOCAL)


def _udp_to(port: int) -> dict:
    return {"eth_type": ETH_TYPE_IPV4, "ip_proto": UDP, "udp_dst": port}


def _icmpv6(kind: int) -> dict:
    return {"eth_type": ETH_TYPE_IPV6, "ip_proto": ICMPV6, "icmpv6_type": kind}


def _nd_about(kind: int, target: str) -> dict:
    return {**_icmpv6(kind), "ipv6_nd_target": target}


def base_flows(options: Options, learn: list) -> List[Flow]:
    """learn: the MAC-learning actions local frames carry (pipeline's). None without a
    gateway: the site then has no services and the pipeline is as before."""
    if not options.site_services:
        return []
    ip, mac = str(options.gateway.ip), options.gateway_mac
    v6 = [str(options.gateway6.ip), options.gateway_link_local] if options.gateway6 else []
    drop, inward, outward = cookie("services_drop"), cookie("gateway_in"), cookie("gateway_out")
    contained = cookie("services_local")
    return [
        # from the overlay: nothing of any site's gateway, no DHCP, no RS/RA
        flow(ARP, PRIO_DROP + 40, drop, {**_OVERLAY, "eth_src": mac}),
        flow(ARP, PRIO_DROP + 35, drop, {**_OVERLAY, "eth_dst": mac}),
        flow(ARP, PRIO_DROP + 31, drop, {**_OVERLAY, "eth_type": ETH_TYPE_ARP, "arp_spa": ip}),
        flow(ARP, PRIO_DROP + 30, drop, {**_OVERLAY, "eth_type": ETH_TYPE_ARP, "arp_tpa": ip}),
    ] + [
        flow(ARP, PRIO_DROP + 30, drop, {**_OVERLAY, **_nd_about(kind, address)})
        for address in v6 for kind in (NS, NA)
    ] + [
        flow(ARP, PRIO_DROP + 20, drop, {**_OVERLAY, **match})
        for match in (_udp_to(DHCP_SERVER), _udp_to(DHCP_CLIENT), _icmpv6(RS), _icmpv6(RA))
    ] + [
        # the gateway's own frames stay here; its DHCP replies are leases to learn
        flow(ARP, PRIO_FROM_GATEWAY + 1, outward, {"in_port": BRIDGE_LOCAL,
                                                   **_udp_to(DHCP_CLIENT)},
             learn + [Resubmit(FWD_LOCAL)], goto=PUNT),
        flow(ARP, PRIO_FROM_GATEWAY, outward, {"in_port": BRIDGE_LOCAL},
             learn + [Resubmit(FWD_LOCAL)]),
        # what local hosts send the gateway reaches it alone
        flow(ARP, PRIO_TO_GATEWAY, inward, {**_LOCAL, "eth_type": ETH_TYPE_ARP, "arp_tpa": ip},
             learn + [TO_GATEWAY], goto=PUNT),
        flow(ARP, PRIO_TO_GATEWAY, inward, {**_LOCAL, **_udp_to(DHCP_SERVER)},
             learn + [TO_GATEWAY], goto=PUNT),
        flow(ARP, PRIO_TO_GATEWAY, inward, {**_LOCAL, **_icmpv6(RS)}, learn + [TO_GATEWAY]),
    ] + [
        flow(ARP, PRIO_TO_GATEWAY, inward, {**_LOCAL, **_nd_about(NS, address)},
             learn + [TO_GATEWAY], goto=PUNT)
        for address in v6
    ] + [
        # a local host claiming a gateway address speaks for nobody
        flow(ARP, PRIO_CLAIM_DROP, drop, {**_LOCAL, "eth_type": ETH_TYPE_ARP, "arp_spa": ip}),
    ] + [
        flow(ARP, PRIO_CLAIM_DROP, drop, {**_LOCAL, **_nd_about(NA, address)})
        for address in v6
    ] + [
        flow(ARP, PRIO_CONTAINED, contained, {**_LOCAL, **match}, learn + DELIVER_LOCALLY)
        for match in (_udp_to(DHCP_CLIENT), _icmpv6(RA))
    ] + [
        flow(FWD_ANY, PRIO_GATEWAY_MAC, cookie("gateway_mac"), {"eth_dst": mac}, [TO_GATEWAY]),
    ]

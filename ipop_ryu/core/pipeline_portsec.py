"""Port security's flows (`port_security = dhcp`), in CLASSIFY, where a local frame enters.

A local port speaks only for the addresses its host leased (or a static reservation holds):
its ARP must carry a leased address as sender (arp_spa) with the MAC it was leased to
(arp_sha), its NS a leased IPv6 source, its NA a leased target; everything else of its ARP and
ND is dropped here, before the pipeline learns from it or copies it to the controller, so it is
never learned, relayed or announced. Its other IP packets must come from a leased address and
its MAC (a source guard: no spoofed source reaches the gateway's NAT). Address-less frames
pass: a DHCP request from 0.0.0.0, an RFC 5227 ARP probe (sender 0.0.0.0) and IPv6 from ::
(DAD's NS and MLD) claim nothing. So before its lease a port gets only DHCP (and DAD) through.
As Neutron's ARP spoofing protection (per-port allows on arp_spa and nd_target, then drop)
and OVN's port_security (arp.sha and arp.spa, nd.target, ip4.src/ip6.src, DHCP and DAD).

    PRIO_ALLOW        in_port=P + an allowed ARP/ND claim -> LOCAL, on to ARP as any local
                      frame
    PRIO_DROP         in_port=P + ARP, NS or NA -> dropped (counted: the port's drops)
    PRIO_SOURCE       in_port=P + a leased IPv4/IPv6 source and its MAC, DHCP from 0.0.0.0,
                      IPv6 from :: -> LOCAL, on to ARP
    PRIO_ROUTER       in_port=P + the site port's MAC: any IP source (it routes) -> LOCAL
    PRIO_SOURCE_DROP  in_port=P + any other IPv4 or IPv6 -> dropped (counted too)

ND is IPv6 too: its claims are decided above the source guard (an NA from a leased source for
another's target is dropped).

Both sit above the port's other classify flows (overlay ports are never secured). The probe
allows carry purpose port_security and the port, the drops port_security_drop and the port;
the allows of a lease carry port_security_lease and the leased IPv4 address (its IPv6 ones
too), so an audit finds the flows of a lease that ended while the controller was away. A port
that leaves takes all of its flows (OVS reuses port numbers).
"""
from typing import Iterable, List, Tuple

from .arp import ETH_TYPE_ARP, UNSPECIFIED_IP
from .intents import DeleteFlows, Flow, RequestFlowStats
from .nd import ETH_TYPE_IPV6, ICMPV6, NA, NS, UNSPECIFIED
from .pipeline import ARP, CLASSIFY, FROM_LOCAL, METADATA_MASK, PURPOSE_MASK, cookie, flow

# above classify's per-port (100) and default (10) flows
PRIO_ALLOW, PRIO_DROP, PRIO_SOURCE, PRIO_SOURCE_DROP = 160, 150, 140, 130
PRIO_ROUTER = PRIO_SOURCE - 1          # under its own address's allow (both pass it)
ETH_TYPE_IPV4, UDP, DHCP_CLIENT, DHCP_SERVER = 0x0800, 17, 68, 67
_LOCAL = dict(metadata=(FROM_LOCAL, METADATA_MASK), goto=ARP)


def _nd(kind: int) -> dict:
    return {"eth_type": ETH_TYPE_IPV6, "ip_proto": ICMPV6, "icmpv6_type": kind}


def _allow(port: int, match: dict, priority: int = PRIO_ALLOW) -> Flow:
    return flow(CLASSIFY, priority, cookie("port_security", port=port),
                {"in_port": port, **match}, **_LOCAL)


def port_flows(port: int) -> List[Flow]:
    """A secured port's drops, and the probes that claim nothing."""
    drop = cookie("port_security_drop", port=port)
    return [flow(CLASSIFY, PRIO_DROP, drop, {"in_port": port, "eth_type": ETH_TYPE_ARP}),
            flow(CLASSIFY, PRIO_DROP, drop, {"in_port": port, **_nd(NS)}),
            flow(CLASSIFY, PRIO_DROP, drop, {"in_port": port, **_nd(NA)}),
            flow(CLASSIFY, PRIO_SOURCE_DROP, drop, {"in_port": port, "eth_type": ETH_TYPE_IPV4}),
            flow(CLASSIFY, PRIO_SOURCE_DROP, drop, {"in_port": port, "eth_type": ETH_TYPE_IPV6}),
            _allow(port, {"eth_type": ETH_TYPE_ARP, "arp_spa": UNSPECIFIED_IP}),
            _allow(port, {**_nd(NS), "ipv6_src": UNSPECIFIED}),
            _allow(port, {"eth_type": ETH_TYPE_IPV4, "ip_proto": UDP, "ipv4_src": UNSPECIFIED_IP,
                          "udp_src": DHCP_CLIENT, "udp_dst": DHCP_SERVER}, PRIO_SOURCE),
            _allow(port, {"eth_type": ETH_TYPE_IPV6, "ipv6_src": UNSPECIFIED}, PRIO_SOURCE)]


def allow_flows(port: int, mac: str, ip: str, lease: str) -> List[Flow]:
    """What port may say for ip, held by mac under the lease of IPv4 address lease."""
    tag = cookie("port_security_lease", lease)
    local = {"in_port": port}
    if ":" not in ip:
        claims = [{"eth_type": ETH_TYPE_ARP, "arp_spa": ip, "arp_sha": mac}]
        source = {"eth_type": ETH_TYPE_IPV4, "ipv4_src": ip, "eth_src": mac}
    else:
        claims = [{**_nd(NS), "ipv6_src": ip}, {**_nd(NA), "ipv6_nd_target": ip}]
        source = {"eth_type": ETH_TYPE_IPV6, "ipv6_src": ip, "eth_src": mac}
    return [flow(CLASSIFY, PRIO_ALLOW, tag, {**local, **claim}, **_LOCAL) for claim in claims] \
        + [flow(CLASSIFY, PRIO_SOURCE, tag, {**local, **source}, **_LOCAL)]


def router_flows(port: int, mac: str, lease: str) -> List[Flow]:
    """The site port (mac) routes for the segment: the host's replies from the gateway
    address and the internet's traffic back through the NAT leave by it, so any IP source
    from its MAC passes (its ARP and ND claims are checked as any host's)."""
    tag = cookie("port_security_lease", lease)
    return [flow(CLASSIFY, PRIO_ROUTER, tag, {"in_port": port, "eth_type": kind,
                                              "eth_src": mac}, **_LOCAL)
            for kind in (ETH_TYPE_IPV4, ETH_TYPE_IPV6)]


def flows_for(ports: Iterable[int], holds: Iterable[Tuple[int, str, str, str]],
              router: Tuple[str, str] = None) -> List[Flow]:
    """Every port's drops and probes, each (port, mac, ip, lease) it holds, and router (mac,
    lease): the site port's, on every port."""
    out = [f for port in sorted(ports) for f in port_flows(port)]
    for port, mac, ip, lease in sorted(holds):
        out += allow_flows(port, mac, ip, lease)
    if router is not None:
        out += [f for port in sorted(ports) for f in router_flows(port, *router)]
    return out


def delete_port(port: int) -> List[DeleteFlows]:
    return [DeleteFlows(cookie("port_security", port=port)),
            DeleteFlows(cookie("port_security_drop", port=port)),
            DeleteFlows(cookie("port_security_lease"), PURPOSE_MASK, CLASSIFY,
                        (("in_port", port),))]


def delete_flow(built: Flow) -> DeleteFlows:
    """Exactly this flow (its cookie, table and whole match: a non-strict delete)."""
    return DeleteFlows(built.cookie, table=built.table, match_items=built.match_items)


DROP_COUNTERS = RequestFlowStats(cookie("port_security_drop"), PURPOSE_MASK, CLASSIFY)

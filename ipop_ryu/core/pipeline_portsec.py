"""Port security's flows (`port_security = dhcp`), in CLASSIFY, where a local frame enters.

A local port speaks only for the addresses its host leased (or a static reservation holds):
its ARP must carry a leased address as sender (arp_spa) with the MAC it was leased to
(arp_sha), its NS a leased IPv6 source, its NA a leased target; everything else of its ARP and
ND is dropped here, before the pipeline learns from it or copies it to the controller, so it is
never learned, relayed or announced. Address-less probes pass: an RFC 5227 ARP probe (sender
0.0.0.0) and a DAD NS (source ::) claim nothing. DHCP is neither ARP nor ND: it always passes.
As Neutron's ARP spoofing protection (per-port allows on arp_spa and nd_target, then drop)
and OVN's port_security (arp.sha and arp.spa, nd.target, DAD from ::).

    PRIO_ALLOW  in_port=P + an allowed claim -> classified LOCAL, on to ARP as any local frame
    PRIO_DROP   in_port=P + ARP, NS or NA    -> dropped; its packet count is the port's drops

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

PRIO_ALLOW, PRIO_DROP = 160, 150       # above classify's per-port (100) and default (10)
_LOCAL = dict(metadata=(FROM_LOCAL, METADATA_MASK), goto=ARP)


def _nd(kind: int) -> dict:
    return {"eth_type": ETH_TYPE_IPV6, "ip_proto": ICMPV6, "icmpv6_type": kind}


def _allow(port: int, match: dict) -> Flow:
    return flow(CLASSIFY, PRIO_ALLOW, cookie("port_security", port=port),
                {"in_port": port, **match}, **_LOCAL)


def port_flows(port: int) -> List[Flow]:
    """A secured port's drops, and the probes that claim nothing."""
    drop = cookie("port_security_drop", port=port)
    return [flow(CLASSIFY, PRIO_DROP, drop, {"in_port": port, "eth_type": ETH_TYPE_ARP}),
            flow(CLASSIFY, PRIO_DROP, drop, {"in_port": port, **_nd(NS)}),
            flow(CLASSIFY, PRIO_DROP, drop, {"in_port": port, **_nd(NA)}),
            _allow(port, {"eth_type": ETH_TYPE_ARP, "arp_spa": UNSPECIFIED_IP}),
            _allow(port, {**_nd(NS), "ipv6_src": UNSPECIFIED})]


def allow_flows(port: int, mac: str, ip: str, lease: str) -> List[Flow]:
    """What port may say for ip, held by mac under the lease of IPv4 address lease."""
    tag = cookie("port_security_lease", lease)
    local = {"in_port": port}
    if ":" not in ip:
        return [flow(CLASSIFY, PRIO_ALLOW, tag,
                     {**local, "eth_type": ETH_TYPE_ARP, "arp_spa": ip, "arp_sha": mac},
                     **_LOCAL)]
    return [flow(CLASSIFY, PRIO_ALLOW, tag, {**local, **_nd(NS), "ipv6_src": ip}, **_LOCAL),
            flow(CLASSIFY, PRIO_ALLOW, tag, {**local, **_nd(NA), "ipv6_nd_target": ip},
                 **_LOCAL)]


def flows_for(ports: Iterable[int], holds: Iterable[Tuple[int, str, str, str]]) -> List[Flow]:
    """Every port's drops and probes, and each (port, mac, ip, lease) it holds."""
    out = [f for port in sorted(ports) for f in port_flows(port)]
    for port, mac, ip, lease in sorted(holds):
        out += allow_flows(port, mac, ip, lease)
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

"""The OpenFlow pipeline as data: tables, cookies and one named builder per flow purpose.

    table 0 CLASSIFY   in_port -> metadata LOCAL or OVERLAY; packet-outs from the controller
                       skip straight to FWD_ANY (never learned from, never punted again)
    table 1 ARP        overlay broadcast ARP dropped; proxy-ARP responders and their guards;
                       local broadcast ARP and local ARP replies punted; the rest -> LEARN
    table 2 LEARN      OVS `learn` writes eth_src -> in_port into FWD_ANY (and, for local
                       ports, into FWD_LOCAL); local frames -> FWD_ANY, overlay -> FWD_LOCAL
    table 3 FWD_ANY    learned MACs on any port; miss -> FLOOD
    table 4 FWD_LOCAL  learned MACs on local ports only (split horizon); miss -> FLOOD
    table 5 FLOOD      from a local port: every other port; from an overlay port: local ports only
    table 6 PUNT       to the controller through a per-port OpenFlow meter, so one host's ARP
                       storm cannot starve the controller for the others

Cookie layout (64 bits): 0x4950 ("IP") | purpose (8 bits) << 32 | IPv4 address for the
per-address flows, so `ovs-ofctl dump-flows br0 cookie=0x4950000400000000/0xffffffff00000000`
lists every proxy-ARP responder and `cookie=0x495000040a000307/-1` the one for 10.0.3.7.
"""
import socket
from typing import Iterable, List

from .addr import ipv4_int
from .arp import BROADCAST_MAC, ETH_TYPE_ARP, ARP_REPLY, ARP_REQUEST, UNSPECIFIED_IP
from .intents import (CONTROLLER, IN_PORT, DeleteFlows, DeleteMeter, Flow, Learn, Meter, Move,
                      Output, SetField, flow)

CLASSIFY, ARP, LEARN, FWD_ANY, FWD_LOCAL, FLOOD, PUNT = range(7)
TABLE_NAMES = {CLASSIFY: "classify", ARP: "arp", LEARN: "learn", FWD_ANY: "fwd_any",
               FWD_LOCAL: "fwd_local", FLOOD: "flood", PUNT: "punt"}

# metadata written in CLASSIFY: where the frame entered the bridge
FROM_LOCAL, FROM_OVERLAY = 1, 2
METADATA_MASK = 0xFF

COOKIE_TAG = 0x4950 << 48
COOKIE_TAG_MASK = 0xFFFF << 48
PURPOSE_MASK = 0xFFFFFFFF << 32

# purpose -> (number, what `ipop-ryu flows` and the README call it)
PURPOSES = {
    "classify": (0x01, "port classification: local or overlay"),
    "arp_punt": (0x02, "ARP to the controller"),
    "overlay_arp_drop": (0x03, "broadcast ARP from the overlay dropped"),
    "proxy_arp": (0x04, "proxy-ARP responder (answers in the datapath)"),
    "proxy_arp_guard": (0x05, "owner's own ARP to the controller, never proxied"),
    "learn": (0x06, "MAC learning"),
    "learned_mac": (0x07, "learned MAC -> port (written by OVS learn)"),
    "flood": (0x08, "broadcast / unknown unicast, split horizon"),
    "default": (0x09, "table defaults and misses"),
    "punt_meter": (0x0A, "ARP punt through the port's meter"),
}


def cookie(purpose: str, ip: str = None, port: int = 0) -> int:
    """Our cookie for purpose; per-address flows carry the IPv4 address, per-port ones the port."""
    low = ipv4_int(ip) if ip else port
    if low is None:
        raise ValueError(f"not an IPv4 address: {ip!r}")
    return COOKIE_TAG | PURPOSES[purpose][0] << 32 | low


def purpose_of(cookie_value: int):
    """Name of the purpose a cookie of ours encodes, or None for a foreign flow."""
    if cookie_value & COOKIE_TAG_MASK != COOKIE_TAG:
        return None
    number = cookie_value >> 32 & 0xFF
    return next((name for name, (n, _) in PURPOSES.items() if n == number), None)


def ip_of(cookie_value: int) -> str:
    """The IPv4 address a per-address cookie carries."""
    return socket.inet_ntoa((cookie_value & 0xFFFFFFFF).to_bytes(4, "big"))


def _from(origin):
    return {"metadata": (origin, METADATA_MASK)}


LEARNED_MAC_IDLE_TIMEOUT = 300
PRIO_GUARD, PRIO_RESPONDER, PRIO_PUNT, PRIO_DROP, PRIO_PORT = 310, 300, 200, 400, 100
TO_CONTROLLER = Output(CONTROLLER)
SHARED_METER = 65000          # ports without a meter of their own (port numbers >= this)


def base_flows(punt_rate: int = 0) -> List[Flow]:
    """Everything that does not depend on ports or learned addresses."""
    arp, bcast = {"eth_type": ETH_TYPE_ARP}, {"eth_dst": BROADCAST_MAC}
    learn_any = Learn(FWD_ANY, PRIO_PORT, cookie("learned_mac"), LEARNED_MAC_IDLE_TIMEOUT)
    learn_local = Learn(FWD_LOCAL, PRIO_PORT, cookie("learned_mac"), LEARNED_MAC_IDLE_TIMEOUT)
    default = cookie("default")
    return [
        # CLASSIFY: ports are LOCAL unless classify_overlay_ports() says otherwise
        flow(CLASSIFY, 10, default, {}, metadata=(FROM_LOCAL, METADATA_MASK), goto=ARP),
        flow(CLASSIFY, 200, default, {"in_port": CONTROLLER},
             metadata=(FROM_LOCAL, METADATA_MASK), goto=FWD_ANY),
        # ARP: broadcasts cross sites only as ICC messages
        flow(ARP, PRIO_DROP, cookie("overlay_arp_drop"), {**_from(FROM_OVERLAY), **arp, **bcast}),
        # RFC 5227 probes are never proxied (a moving host must not see a conflict)
        flow(ARP, PRIO_GUARD, cookie("arp_punt"),
             {**_from(FROM_LOCAL), **arp, **bcast, "arp_spa": UNSPECIFIED_IP}, goto=PUNT),
        flow(ARP, PRIO_PUNT, cookie("arp_punt"), {**_from(FROM_LOCAL), **arp, **bcast}, goto=PUNT),
        # replies from local hosts: may answer a request relayed from another site
        flow(ARP, PRIO_PUNT, cookie("arp_punt"),
             {**_from(FROM_LOCAL), **arp, "arp_op": ARP_REPLY}, goto=PUNT),
        flow(ARP, 0, default, goto=LEARN),
        # LEARN
        flow(LEARN, PRIO_PORT, cookie("learn"), _from(FROM_LOCAL),
             [learn_any, learn_local], goto=FWD_ANY),
        flow(LEARN, PRIO_PORT, cookie("learn"), _from(FROM_OVERLAY), [learn_any], goto=FWD_LOCAL),
        flow(LEARN, 0, default),
        flow(FWD_ANY, 0, default, goto=FLOOD),
        flow(FWD_LOCAL, 0, default, goto=FLOOD),
        flow(FLOOD, 0, default),
        flow(PUNT, 0, default, {}, [TO_CONTROLLER],
             meter=SHARED_METER if punt_rate else None),
    ]


def punt_meters(punt_rate: int) -> List[Meter]:
    return [Meter(SHARED_METER, punt_rate, punt_rate)] if punt_rate else []


def install_port_punt(port: int, punt_rate: int) -> list:
    """ARP from this port reaches the controller at most punt_rate packets/s."""
    if not punt_rate or port >= SHARED_METER:
        return []
    return [Meter(port, punt_rate, punt_rate),
            flow(PUNT, PRIO_PORT, cookie("punt_meter", port=port), {"in_port": port},
                 [TO_CONTROLLER], meter=port)]


def delete_port_punt(port: int) -> list:
    return [DeleteFlows(cookie("punt_meter", port=port)), DeleteMeter(port)] \
        if port < SHARED_METER else []


def delete_learned_mac(mac: str) -> List[DeleteFlows]:
    """Forget where the datapath learned mac (the host moved): it is flooded until relearned."""
    return [DeleteFlows(cookie("learned_mac"), PURPOSE_MASK, table, (("eth_dst", mac),))
            for table in (FWD_ANY, FWD_LOCAL)]


def classify_overlay_port(port: int) -> Flow:
    return flow(CLASSIFY, PRIO_PORT, cookie("classify", port=port), {"in_port": port},
                metadata=(FROM_OVERLAY, METADATA_MASK), goto=ARP)


def delete_overlay_port(port: int) -> DeleteFlows:
    return DeleteFlows(cookie("classify", port=port))


def flood_flows(local_ports: Iterable[int], overlay_ports: Iterable[int]) -> List[Flow]:
    """Split horizon: a frame from the overlay is flooded to local ports only."""
    local = [Output(p) for p in sorted(local_ports)]
    overlay = [Output(p) for p in sorted(overlay_ports)]
    return [
        flow(FLOOD, PRIO_PORT, cookie("flood"), _from(FROM_LOCAL), local + overlay),
        flow(FLOOD, PRIO_PORT, cookie("flood"), _from(FROM_OVERLAY), local),
    ]


def install_arp_responder(ip: str, mac: str, hard_timeout: int = 0) -> List[Flow]:
    """Answer broadcast who-has ip from local ports in the datapath, as mac would.

    The reply is built from the request in place (OVS Nicira moves), so one flow answers
    every requester: op=2, tha=sha, tpa=spa, sha=mac, spa=ip, eth_dst=eth_src, eth_src=mac,
    out the port it came in on. hard_timeout makes OVS drop it even if the controller dies.
    The owner itself (gratuitous ARP, or a host that moved here) is never answered: the guard
    sends its broadcasts to the controller, which learns from them.

    Two flows per learned address, built on the learning path: the constant parts are made
    once (see _RESPONDER) and the match is assembled already sorted, as flow() would sort it.
    """
    low = ipv4_int(ip)
    first, moves, last = _RESPONDER_ACTIONS
    responder = Flow(ARP, PRIO_RESPONDER, _PROXY_ARP | low,
                     _RESPONDER_MATCH[0] + (("arp_tpa", ip),) + _RESPONDER_MATCH[1],
                     (first,) + moves + (SetField("arp_sha", mac), SetField("arp_spa", ip),
                                         last, SetField("eth_src", mac), Output(IN_PORT)),
                     hard_timeout=hard_timeout)
    guard = Flow(ARP, PRIO_GUARD, _PROXY_ARP_GUARD | low, (("arp_spa", ip),) + _GUARD_MATCH,
                 goto=PUNT, hard_timeout=hard_timeout)
    return [responder, guard]


def _responder_reference(ip: str, mac: str, hard_timeout: int = 0) -> List[Flow]:
    """install_arp_responder written plainly (the unit tests hold the two equal)."""
    responder = flow(
        ARP, PRIO_RESPONDER, cookie("proxy_arp", ip),
        {**_from(FROM_LOCAL), "eth_type": ETH_TYPE_ARP, "eth_dst": BROADCAST_MAC,
         "arp_op": ARP_REQUEST, "arp_tpa": ip},
        [SetField("arp_op", ARP_REPLY),
         Move("arp_sha", "arp_tha", 48), Move("arp_spa", "arp_tpa", 32),
         SetField("arp_sha", mac), SetField("arp_spa", ip),
         Move("eth_src", "eth_dst", 48), SetField("eth_src", mac),
         Output(IN_PORT)],
        hard_timeout=hard_timeout)
    guard = flow(
        ARP, PRIO_GUARD, cookie("proxy_arp_guard", ip),
        {**_from(FROM_LOCAL), "eth_type": ETH_TYPE_ARP, "eth_dst": BROADCAST_MAC, "arp_spa": ip},
        goto=PUNT, hard_timeout=hard_timeout)
    return [responder, guard]


_PROXY_ARP, _PROXY_ARP_GUARD = cookie("proxy_arp"), cookie("proxy_arp_guard")
_RESPONDER_MATCH = ((("arp_op", ARP_REQUEST),),
                    (("eth_dst", BROADCAST_MAC), ("eth_type", ETH_TYPE_ARP),
                     ("metadata", (FROM_LOCAL, METADATA_MASK))))
_GUARD_MATCH = (("eth_dst", BROADCAST_MAC), ("eth_type", ETH_TYPE_ARP),
                ("metadata", (FROM_LOCAL, METADATA_MASK)))
_RESPONDER_ACTIONS = (SetField("arp_op", ARP_REPLY),
                      (Move("arp_sha", "arp_tha", 48), Move("arp_spa", "arp_tpa", 32)),
                      Move("eth_src", "eth_dst", 48))


def delete_arp_responder(ip: str) -> List[DeleteFlows]:
    return [DeleteFlows(cookie("proxy_arp", ip)), DeleteFlows(cookie("proxy_arp_guard", ip))]


def delete_all_ours() -> List[DeleteFlows]:
    return [DeleteFlows(COOKIE_TAG, COOKIE_TAG_MASK)]

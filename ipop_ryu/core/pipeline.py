"""The OpenFlow pipeline as data: tables, cookies and one named builder per flow purpose.

The tables are declared once, in TABLES: what each holds and where a frame may go from it
(goto_table or a Nicira resubmit); flow() refuses any other step. Table ARP holds both
neighbour-resolution families: ARP (here) and IPv6 ND (pipeline_nd.py, the same shapes:
local multicast NS/NA delivered locally with a copy to PUNT, multicast ND from the overlay
dropped, responders for learned remote addresses, relay catch flows).

The datapath does what it can, the controller supplies knowledge: with the controller gone,
hosts of one site still resolve each other, learned remote hosts are still answered (until
their entry's timeout) and established traffic keeps flowing.

Cookie layout (64 bits): 0x4950 ("IP") | purpose (8 bits) << 32 | subject (32 bits). The
subject of an IPv4 flow is the address, so `ovs-ofctl dump-flows br0
cookie=0x4950000400000000/0xffffffff00000000` lists every proxy-ARP responder and
`cookie=0x495000040a000307/-1` the one for 10.0.3.7. An IPv6 address does not fit: its
subject is CRC-32 of its 16 bytes (`v6_subject`), and where two learned addresses collide the
later one takes the next free value (pipeline_nd.Subjects), so the cookie of an IPv6 flow is
only a hint and its match (`nd_target=...`) the truth. Per-port flows carry the port number.
"""
import socket
import zlib
from dataclasses import dataclass
from typing import Iterable, List, Tuple

from .addr import ipv4_int, ipv6_packed
from .arp import BROADCAST_MAC, ETH_TYPE_ARP, ARP_REPLY, ARP_REQUEST, UNSPECIFIED_IP
from . import intents
from .intents import (CONTROLLER, IN_PORT, DeleteFlows, DeleteMeter, Flow, Learn, Meter, Move,
                      Output, PacketOut, Resubmit, SetField)


@dataclass(frozen=True)
class Table:
    """One table of the pipeline: what it holds, and the tables a frame may go to from it
    (goto_table or a Nicira resubmit)."""
    id: int
    name: str
    holds: str
    next: Tuple[int, ...]


def _declare(*rows) -> Tuple[Table, ...]:
    """(name, holds, next names) in table order -> the Tables, numbered from 0."""
    ids = {name: number for number, (name, _, _) in enumerate(rows)}
    return tuple(Table(ids[name], name, holds, tuple(ids[to] for to in next_names))
                 for name, holds, next_names in rows)


TABLES = _declare(
    ("classify", "in_port -> metadata LOCAL or OVERLAY; packet-outs from the controller skip "
                 "to fwd_any (never learned from, never punted again); port_security: a "
                 "local port's ARP/ND only for addresses it leased", ("arp", "fwd_any")),
    # resubmit to fwd_local delivers to local ports only (fwd_any: a local reply forwarded),
    # and the goto to punt copies the frame to the controller, to learn from and relay as ICC
    ("arp", "neighbour resolution (ARP and IPv6 ND): overlay broadcasts dropped, responders for "
            "learned remote hosts, local broadcasts delivered locally with a copy to punt; "
            "with a gateway (pipeline_services.py) also what stays in the site: the "
            "gateway's frames, DHCP and RS/RA; the rest -> learn", ("learn", "fwd_any", "fwd_local", "punt", "nd_answer")),
    ("learn", "OVS learn writes eth_src -> in_port into fwd_any (for local ports also into "
              "fwd_local); local frames -> fwd_any, overlay frames -> fwd_local",
     ("fwd_any", "fwd_local")),
    ("fwd_any", "learned MACs on any port (the gateway MAC: the bridge's own port); "
                "miss -> flood", ("flood",)),
    ("fwd_local", "learned MACs on local ports only; miss: every local port (split horizon)",
     ()),
    ("flood", "from a local port: every other port, local and overlay", ()),
    # the meter drops only the controller's copy: the datapath has delivered the frame already
    ("punt", "to the controller through a per-port meter, so one host's ARP storm cannot "
             "starve the controller for the others", ()),
    # OVS sets nd_tll only in a flow whose match says icmpv6_type=136, so the responder in
    # arp rewrites the NS into an NA and this table fills in the owner's MAC
    ("nd_answer", "the second half of a proxy-ND answer: the owner's MAC as target link-layer "
                  "address, out of the port the NS came in on", ()),
)
TABLE_NAMES = {table.id: table.name for table in TABLES}
_TABLE_IDS = {table.name: table.id for table in TABLES}
CLASSIFY, ARP, LEARN, FWD_ANY, FWD_LOCAL, FLOOD, PUNT, ND_ANSWER = (
    _TABLE_IDS[name] for name in ("classify", "arp", "learn", "fwd_any", "fwd_local", "flood",
                                  "punt", "nd_answer"))

_NEXT = {table.id: frozenset(table.next) for table in TABLES}


def check_steps(built: Flow) -> Flow:
    """built, unless it sends a frame on a step TABLES does not declare (ValueError); a
    goto_table must also go forward, as OpenFlow requires (a resubmit may go back)."""
    steps = [("goto_table", built.goto)] if built.goto is not None else []
    steps += [("resubmit", action.table) for action in built.actions
              if isinstance(action, Resubmit)]
    for how, to in steps:
        allowed = _NEXT.get(built.table, frozenset())
        backwards = how == "goto_table" and to <= built.table
        if to not in allowed or backwards:
            why = ("a goto_table must go to a later table" if backwards else
                   f"{_table_label(built.table)} may go to "
                   f"{', '.join(_table_label(t) for t in sorted(allowed)) or 'no table'}")
            raise ValueError(f"flow of {_purpose_label(built.cookie)} "
                             f"(cookie {built.cookie:#x}) in {_table_label(built.table)}: "
                             f"{how} to {_table_label(to)} refused: {why}")
    return built


def _purpose_label(cookie_value) -> str:
    purpose = purpose_of(cookie_value)
    return f"purpose {purpose}" if purpose else "no purpose of ours"


def _table_label(number) -> str:
    return f"table {number} ({TABLE_NAMES[number]})" if number in TABLE_NAMES \
        else f"table {number} (not declared)"


def flow(*args, **kw) -> Flow:
    """intents.flow, checked against the declared steps (check_steps)."""
    return check_steps(intents.flow(*args, **kw))


# metadata written in CLASSIFY: where the frame entered the bridge
FROM_LOCAL, FROM_OVERLAY = 1, 2
METADATA_MASK = 0xFF
# written by the relay_reply catch flow: the datapath did not deliver this reply, so the
# controller answers a relay with it or forwards it (packet-ins carry the metadata)
CAUGHT = 0x100

COOKIE_TAG = 0x4950 << 48
COOKIE_TAG_MASK = 0xFFFF << 48
PURPOSE_MASK = 0xFFFFFFFF << 32

# purpose -> (number, what `ipop-ryu flows` and docs/reference/purposes.md call it)
PURPOSES = {
    "classify": (0x01, "port classification: local or overlay"),
    "arp_punt": (0x02, "local ARP delivered locally, a copy to the controller"),
    "overlay_arp_drop": (0x03, "broadcast ARP from the overlay dropped"),
    "proxy_arp": (0x04, "proxy-ARP responder (answers in the datapath)"),
    "proxy_arp_guard": (0x05, "owner's own ARP delivered locally, never proxied"),
    "learn": (0x06, "MAC learning"),
    "learned_mac": (0x07, "learned MAC -> port (written by OVS learn)"),
    "flood": (0x08, "broadcast / unknown unicast, split horizon"),
    "default": (0x09, "table defaults and misses"),
    "punt_meter": (0x0A, "ARP punt through the port's meter"),
    "relay_reply": (0x0B, "local ARP replies to a host of another site whose requests are "
                          "replayed here: to the controller only (answers cross as ICC)"),
    "nd_punt": (0x0C, "local NS/NA delivered by the datapath, a copy to the controller"),
    "overlay_nd_drop": (0x0D, "multicast NS/NA from the overlay dropped"),
    "proxy_nd": (0x0E, "proxy-ND responder: an NS answered with an NA in the datapath"),
    "nd_answer": (0x0F, "proxy-ND answer: the owner's MAC as target link-layer address"),
    "nd_relay_reply": (0x10, "owner's NA to an NS replayed for another site: to the "
                             "controller only (it goes there as ICC)"),
    # site services (pipeline_services.py): the anycast gateway on the bridge's own port
    "gateway_in": (0x11, "ARP/ND for the gateway, DHCP requests and RS from local ports: to "
                         "the bridge's own port only (DHCP and ARP/ND copied to the "
                         "controller, never relayed)"),
    "gateway_out": (0x12, "frames from the gateway (the bridge's own port): local ports only; "
                          "DHCP replies copied to the controller (leases)"),
    "gateway_mac": (0x13, "frames to the gateway MAC: to the bridge's own port, never the "
                          "overlay"),
    "services_drop": (0x14, "DHCP, RS/RA and gateway frames from the overlay, and a local "
                            "host claiming a gateway address: dropped"),
    "services_local": (0x15, "DHCP replies and RAs from a container: local ports only"),
    # port_security = dhcp (pipeline_portsec.py); numbered apart from the site services'
    "port_security": (0x20, "a secured local port's address-less probes (RFC 5227 ARP, DAD): "
                            "on as a local frame"),
    "port_security_drop": (0x21, "the rest of a secured local port's ARP/ND: dropped, counted "
                                 "(its packet count)"),
    "port_security_lease": (0x22, "a secured local port's ARP/ND for an address its MAC "
                                  "leased (or a static host's): on as a local frame"),
}
TRANSIENT = ("learned_mac", "relay_reply", "nd_relay_reply")   # not audited: OVS or a
                                                               # timeout removes them
KEYED = ("proxy_arp", "proxy_arp_guard", "proxy_nd")           # one flow per learned address


def v6_subject(ip: str) -> int:
    """The cookie subject an IPv6 address gets unless it collides (see pipeline_nd)."""
    packed = ipv6_packed(ip)
    if packed is None:
        raise ValueError(f"not an IPv6 address: {ip!r}")
    return zlib.crc32(packed)


def cookie(purpose: str, ip: str = None, port: int = 0, low: int = None) -> int:
    """Our cookie for purpose; per-address flows carry the IPv4 address (an IPv6 one its
    v6_subject, or the `low` it was given), per-port ones the port."""
    if low is None:
        low = (ipv4_int(ip) if "." in ip else v6_subject(ip)) if ip else port
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
PRIO_RELAY_REPLY = 250
TO_CONTROLLER = Output(CONTROLLER)
DELIVER_LOCALLY = [Resubmit(FWD_LOCAL)]     # local ports only: the learned one, or all
SHARED_METER = 65000          # ports without a meter of their own (port numbers >= this)


def base_flows(punt_rate: int = 0) -> List[Flow]:
    """Everything that does not depend on ports or learned addresses."""
    arp, bcast = {"eth_type": ETH_TYPE_ARP}, {"eth_dst": BROADCAST_MAC}
    learn = learn_local_frame()
    default = cookie("default")
    local_arp = {**_from(FROM_LOCAL), **arp}
    return [
        # CLASSIFY: ports are LOCAL unless classify_overlay_ports() says otherwise
        flow(CLASSIFY, 10, default, {}, metadata=(FROM_LOCAL, METADATA_MASK), goto=ARP),
        flow(CLASSIFY, 200, default, {"in_port": CONTROLLER},
             metadata=(FROM_LOCAL, METADATA_MASK), goto=FWD_ANY),
        # ARP: broadcasts cross sites only as ICC messages
        flow(ARP, PRIO_DROP, cookie("overlay_arp_drop"), {**_from(FROM_OVERLAY), **arp, **bcast}),
        # RFC 5227 probes are never proxied (a moving host must not see a conflict)
        flow(ARP, PRIO_GUARD, cookie("arp_punt"), {**local_arp, **bcast,
                                                   "arp_spa": UNSPECIFIED_IP},
             learn + DELIVER_LOCALLY, goto=PUNT),
        flow(ARP, PRIO_PUNT, cookie("arp_punt"), {**local_arp, **bcast},
             learn + DELIVER_LOCALLY, goto=PUNT),
        # replies from local hosts: forwarded as any frame (a reply to a request replayed for
        # another site is caught before, see install_relay_reply_punt), a copy to learn from
        flow(ARP, PRIO_PUNT, cookie("arp_punt"), {**local_arp, "arp_op": ARP_REPLY},
             learn + [Resubmit(FWD_ANY)], goto=PUNT),
        flow(ARP, 0, default, goto=LEARN),
        # LEARN
        flow(LEARN, PRIO_PORT, cookie("learn"), _from(FROM_LOCAL), learn, goto=FWD_ANY),
        flow(LEARN, PRIO_PORT, cookie("learn"), _from(FROM_OVERLAY),
             [Learn(FWD_ANY, PRIO_PORT, cookie("learned_mac"), LEARNED_MAC_IDLE_TIMEOUT)],
             goto=FWD_LOCAL),
        flow(LEARN, 0, default),
        flow(FWD_ANY, 0, default, goto=FLOOD),
        flow(FLOOD, 0, default),
        flow(ND_ANSWER, 0, default),
        flow(PUNT, 0, default, {}, [TO_CONTROLLER],
             meter=SHARED_METER if punt_rate else None),
    ]


def learn_local_frame() -> list:
    """Where a frame from a local port came from, for FWD_ANY and FWD_LOCAL."""
    return [Learn(table, PRIO_PORT, cookie("learned_mac"), LEARNED_MAC_IDLE_TIMEOUT)
            for table in (FWD_ANY, FWD_LOCAL)]


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


def delete_learned_mac(mac: str, tables=(FWD_ANY, FWD_LOCAL)) -> List[DeleteFlows]:
    """Forget where the datapath learned mac (the host moved): it is flooded until relearned.
    A remote host's MAC is learned in FWD_ANY only (from the overlay)."""
    return [DeleteFlows(cookie("learned_mac"), PURPOSE_MASK, table, (("eth_dst", mac),))
            for table in tables]


def delete_learned_to_port(port: int) -> DeleteFlows:
    """Forget every MAC the datapath learned behind port (gone, replaced or down): the
    learned flows output to it (delete by out_port), whatever table they are in."""
    return DeleteFlows(cookie("learned_mac"), PURPOSE_MASK, out_port=port)


def classify_overlay_port(port: int) -> Flow:
    return flow(CLASSIFY, PRIO_PORT, cookie("classify", port=port), {"in_port": port},
                metadata=(FROM_OVERLAY, METADATA_MASK), goto=ARP)


def delete_overlay_port(port: int) -> DeleteFlows:
    return DeleteFlows(cookie("classify", port=port))


def flood_flows(local_ports: Iterable[int], overlay_ports: Iterable[int]) -> List[Flow]:
    """Split horizon: a frame from the overlay (and local ARP) is flooded to local ports
    only, by FWD_LOCAL's miss; one from a local port everywhere else, by FLOOD. OVS never
    sends a frame back out of the port it came in on."""
    local = [Output(p) for p in sorted(local_ports)]
    overlay = [Output(p) for p in sorted(overlay_ports)]
    return [
        flow(FLOOD, PRIO_PORT, cookie("flood"), _from(FROM_LOCAL), local + overlay),
        flow(FWD_LOCAL, 0, cookie("flood"), {}, local),
    ]


def install_arp_responder(ip: str, mac: str, hard_timeout: int = 0) -> List[Flow]:
    """Answer broadcast who-has ip from local ports in the datapath, as mac would.

    The reply is built from the request in place (OVS Nicira moves), so one flow answers
    every requester: op=2, tha=sha, tpa=spa, sha=mac, spa=ip, eth_dst=eth_src, eth_src=mac,
    out the port it came in on. hard_timeout makes OVS drop it even if the controller dies.
    The owner itself (gratuitous ARP, or a host that moved here) is never answered: the guard
    delivers its broadcasts locally and copies them to the controller, which learns from them.

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
                 _GUARD_ACTIONS, goto=PUNT, hard_timeout=hard_timeout)
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
        DELIVER_LOCALLY, goto=PUNT, hard_timeout=hard_timeout)
    return [responder, guard]


_PROXY_ARP, _PROXY_ARP_GUARD = cookie("proxy_arp"), cookie("proxy_arp_guard")
_RESPONDER_MATCH = ((("arp_op", ARP_REQUEST),),
                    (("eth_dst", BROADCAST_MAC), ("eth_type", ETH_TYPE_ARP),
                     ("metadata", (FROM_LOCAL, METADATA_MASK))))
_GUARD_MATCH = (("eth_dst", BROADCAST_MAC), ("eth_type", ETH_TYPE_ARP),
                ("metadata", (FROM_LOCAL, METADATA_MASK)))
_GUARD_ACTIONS = tuple(DELIVER_LOCALLY)
_RESPONDER_ACTIONS = (SetField("arp_op", ARP_REPLY),
                      (Move("arp_sha", "arp_tha", 48), Move("arp_spa", "arp_tpa", 32)),
                      Move("eth_src", "eth_dst", 48))


def install_relay_reply_punt(requester_ip: str, requester_mac: str, hard_timeout: int) -> Flow:
    """While requests of a host of another site are replayed here, local ARP replies to it
    go to the controller only, marked CAUGHT: an owner's answer crosses as ICC, never as a
    frame; any other reply (a liveness probe's) the controller forwards as the datapath would
    have. One flow per requester, not per request: a burst of relays costs one flow-mod."""
    return flow(ARP, PRIO_RELAY_REPLY, cookie("relay_reply", requester_ip),
                {**_from(FROM_LOCAL), "eth_type": ETH_TYPE_ARP, "arp_op": ARP_REPLY,
                 "eth_dst": requester_mac},
                metadata=(CAUGHT, CAUGHT), goto=PUNT, hard_timeout=hard_timeout)


def for_one_write(intents: list) -> list:
    """The intents of a batch of events in the order one write should carry them: the
    relay_reply and nd_relay_reply flows first (each must be in before the replay it catches
    the answer to),
    then the packet-outs (answers and replays wait for no flow-mod), then the rest in order.
    The catch flows form one run, which goes into OVS as one bundle."""
    def rank(intent):
        if isinstance(intent, Flow) and intent.cookie & PURPOSE_MASK in _CATCH_PURPOSES:
            return 0
        return 1 if isinstance(intent, PacketOut) else 2
    return sorted(intents, key=rank)      # stable: each group keeps its order


_CATCH_PURPOSES = frozenset(cookie(p) & PURPOSE_MASK for p in ("relay_reply", "nd_relay_reply"))


def delete_arp_responder(ip: str) -> List[DeleteFlows]:
    return [DeleteFlows(cookie("proxy_arp", ip)), DeleteFlows(cookie("proxy_arp_guard", ip))]


def delete_all_ours() -> List[DeleteFlows]:
    return [DeleteFlows(COOKIE_TAG, COOKIE_TAG_MASK)]

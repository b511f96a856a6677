"""What a running controller reports: the learned table, its peers, its counters.

Plain JSON-able data built from a SwitchMode; served by the REST API and `ipop-ryu arp|peers|
stats`, and turned into Prometheus metrics by `ipop_ryu.core.metrics`.

Everything here runs inside the controller's event loop, so nothing walks the learned table
(100,000 entries is an ordinary overlay): the table is listed a page at a time, and counts
come from what the table and the counters keep.
"""
import re
from typing import Callable, Mapping, Optional, Tuple

from .addr import ip_key
from .icc import DROP_REASONS, SCHEMAS

PAGE_LIMIT = 1000             # rows per page unless asked otherwise
PAGE_LIMIT_MAX = 10000        # about 1.6 MB of JSON: still a few tens of ms to build
_DIGITS = re.compile(r"[0-9]{1,9}")    # not int(): it takes " 12", "+12", "1_2" and Unicode


class BadParameter(ValueError):
    """A listing's query parameter that cannot be used; `name` says which."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name}: {problem}")
        self.name = name


def page_args(params: Mapping[str, str]) -> Tuple[Optional[str], int]:
    """(after, limit) from the query parameters of `GET /ipop/v1/arp` (or its other name
    `/ipop/v1/neighbours`: one table, IPv4 then IPv6); raises BadParameter.
    Parameters it does not know are ignored."""
    limit = params.get("limit")
    if limit is None:
        limit = PAGE_LIMIT
    elif _DIGITS.fullmatch(limit) and 1 <= int(limit) <= PAGE_LIMIT_MAX:
        limit = int(limit)
    else:
        raise BadParameter("limit", f"must be a whole number from 1 to {PAGE_LIMIT_MAX}, "
                                    f"not {limit!r}")
    after = params.get("after")
    if after is not None and ip_key(after) is None:
        raise BadParameter("after", f"must be an IPv4 or IPv6 address in its usual (RFC 5952) "
                                    f"form (the last one of the previous page), not "
                                    f"{after!r}")
    return after, limit


def arp_page(core, after: Optional[str] = None, limit: int = PAGE_LIMIT,
             pause: Optional[Callable[[], None]] = None) -> dict:
    """Up to `limit` live entries by address, after the address `after`. `next` is the
    `after` of the following page (None on the last one); `total` counts the table's
    entries as of its last aging pass (at most a tick behind).

    With `pause`, a page of more than PAGE_LIMIT rows is built PAGE_LIMIT rows at a time with
    pause() between (the REST shell yields to the event loop there: 10,000 rows at 100,000
    entries are about 40 ms of work, more after a change re-sorts the table)."""
    step = limit if pause is None else min(limit, PAGE_LIMIT)
    rows: list = []
    while True:
        now = core.clock()
        entries, after = core.table.page(now, after, min(step, limit - len(rows)))
        rows += [_row(core, entry, now) for entry in entries]
        if after is None or len(rows) >= limit:
            return {"entries": rows, "next": after, "total": len(core.table)}
        pause()


def _row(core, entry, now: float) -> dict:
    return {
        "ip": entry.ip, "family": "ipv6" if ":" in entry.ip else "ipv4", "mac": entry.mac,
        "node": entry.node, "local": entry.local,
        "port": core.ports.get(entry.port) if entry.local else None,
        "age": round(now - entry.learned_at, 2),
        "expires_in": round(entry.expires_in(now), 1),
        "proxy_flow": core.proxied(entry),
        # per-responder packet counts are not polled (no full flow dumps): `ipop-ryu flows`
        # reads them from the bridge; the total is stats()["arp"]["answered_by_flow"]
        "answered_by_flow": None,
    }


def peers(core) -> list:
    now = core.clock()
    keyed = getattr(getattr(core, "codec", None), "keyed_peers", frozenset)()
    return [{
        "name": state.name, "address": state.peer.host, "port": state.peer.port,
        "state": "up" if state.up else ("down" if state.last_heard is not None else "unknown"),
        "last_heard_ago": None if state.last_heard is None else round(now - state.last_heard, 1),
        "sent": state.sent, "received": state.received,
        "clock_offset": None if state.clock_offset is None else round(state.clock_offset, 3),
        "entries": core.table.node_count(state.name),
        "key": "pair" if state.name in keyed else "shared",    # per-node keys, or the shared one
        "allowed_ips": None if state.peer.allowed_ips is None else
        [str(net) for net in state.peer.allowed_ips.networks],
        "claims_refused": [_refusal(r, now) for r in core.refusals.recent(now, state.name)],
    } for state in core.peers]


def _refusal(refusal, now: float) -> dict:
    """A claim its allowed_ips refused lately: how often, since when, last when."""
    return {"address": refusal.address, "count": refusal.count,
            "first_ago": round(now - refusal.first, 1), "last_ago": round(now - refusal.last, 1)}


def responder_count(core, family: str = "arp") -> int:
    """Proxy-ARP (or -ND) responders the bridge should hold: remote hosts, or every host
    without ICC (a one-site switch answers for its own hosts)."""
    neighbours = getattr(core, "neighbours", None)
    if neighbours is not None:
        return sum(len(f.responders) for f in neighbours.families if f.name == family)
    if family != "arp":
        return 0
    return core.table.remote_count if core.options.icc else len(core.table)


def _resolution(s, family: str) -> dict:
    """The counters of one family (ARP: `arp_...`, ND: `nd_...`)."""
    names = ("requests", "answered_by_flow", "answered_by_controller", "answered_via_peers",
             "answered_for_peers", "relayed_to_peers", "relay_retries",
             "relay_retries_skipped", "replayed_locally",
             "relayed_to_arrived_peers",      # asked again when a peer came up
             "caught_forwarded")              # caught replies that answered no relay
    keys = {"requests": "request", "relayed_to_arrived_peers": "relayed_to_arrived_peer"}
    return {name: s[f"{family}_{keys.get(name, name)}"] for name in names}


def stats(core) -> dict:
    s = core.stats
    table, peer_states = core.table, list(core.peers)
    graceful = getattr(core, "graceful", None)
    return {
        "node_id": core.node_id,
        "uptime": round(core.clock() - core.started, 1),
        "packet_in": s["packet_in"],
        "arp": _resolution(s, "arp"),
        # ND: the same counters (answered_by_flow is not polled yet: `ipop-ryu flows`), and
        # DAD probes seen and defended for owners at other sites
        "nd": {**_resolution(s, "nd"), "dad_probes": s["nd_dad_probes"],
               "dad_defended": s["nd_dad_defended"]},
        "icc": {
            "sent": {t: s["icc_sent." + t] for t in SCHEMAS},
            "received": {t: s["icc_received." + t] for t in SCHEMAS},
            "dropped": {r: s["icc_dropped." + r] for r in DROP_REASONS},
            "send_errors": s["icc_send_errors"],
            "bindings_invalid": s["icc_bindings_invalid"],   # one by one, from valid batches
            "not_allowed": s["icc_not_allowed"],
        },
        "table": {
            "entries": len(table), "local": table.local_count, "remote": table.remote_count,
            "ipv6": getattr(table, "ipv6_count", 0),
            "learned": s["entries_learned"], "expired": s["entries_expired"],
            "withdrawn": s["entries_withdrawn"], "not_learned": s["not_learned"],
            "moves": s["host_moved"], "conflicts": s["host_conflict"],
            "claims_rejected": s["claims_rejected"],
            "announcements_sent": s["announcements_sent"],
            "announced": s["announced"], "withdrawals_sent": s["withdrawn_sent"],
            "withdraw_invalid": s["icc_withdraw_invalid"],
        },
        "sync": {"entries_sent": s["sync_entries_sent"],
                 "entries_received": s["sync_entries_received"],
                 "ends_received": s["sync_ends_received"], "started": s["syncs_started"],
                 "incomplete": s["sync_incomplete"]},
        "flows": {"flow_mods": s["flow_mods"], "proxy_arp": responder_count(core),
                  "proxy_nd": responder_count(core, "nd"),
                  "audits": s["flows_audits"], "repaired": s["flows_repaired"],
                  "removed_stale": s["flows_removed_stale"],
                  "reinstalled": s["flows_reinstalled"], "stale_held": s["flows_stale_held"],
                  "audits_abandoned": s["flows_audits_abandoned"]},
        "graceful_restart": {
            "active": bool(getattr(graceful, "active", False)),
            "waiting_for": sorted(getattr(graceful, "waiting_for", ())),
            "stale_deleted": s["graceful_restart_stale_deleted"]},
        "peers": {"up": sum(1 for p in peer_states if p.up), "total": len(peer_states),
                  "went_down": s["peer_down"]},
        "reloads": {"applied": s["reloads_applied"], "refused": s["reloads_refused"]},
        # site services (gateway set): leases learned from the bridge's DHCP, the gateway
        # never learned from anyone
        "services": {
            "enabled": core.options.site_services,
            "leases": len(core.leases.table) if core.leases is not None else 0,
            **{what: s[f"leases_{what}"] for what in ("new", "renewed", "changed", "released",
                                                      "declined", "expired", "replaced")},
            "lease_port_unknown": s["lease_port_unknown"],
            "dhcp_malformed": s["dhcp_malformed"], "dhcp_ignored": s["dhcp_ignored"],
            "gateway_not_learned": s["gateway_not_learned"],
            # peers whose hellos name another gateway: field -> [theirs, ours]
            "gateway_mismatch": {peer: {key: list(pair) for key, pair in fields.items()}
                                 for peer, fields in sorted(core.gateway.mismatched.items())}},
        "port_security": core.portsec.status(),
        "names": core.neighbours.names.status(),
        "errors": {k.split(".", 1)[1]: v for k, v in s.items() if k.startswith("internal_errors.")},
        "switch_errors": s["switch_errors"],
    }

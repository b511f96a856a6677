"""What a running controller reports: the learned table, its peers, its counters.

Plain JSON-able data built from a SwitchMode; served by the REST API and `ipop-ryu arp|peers|
stats`, and turned into Prometheus metrics by `ipop_ryu.core.metrics`.
"""
from .icc import DROP_REASONS, SCHEMAS


def arp_table(core) -> list:
    now = core.clock()
    rows = []
    for entry in core.table.entries(now):
        proxied = core.proxied(entry)
        rows.append({
            "ip": entry.ip, "mac": entry.mac, "node": entry.node, "local": entry.local,
            "port": core.ports.get(entry.port) if entry.local else None,
            "age": round(now - entry.learned_at, 2),
            "expires_in": round(entry.expires_in(now), 1),
            "proxy_flow": proxied,
            "answered_by_flow": core.proxy_flow_packets.get(entry.ip, 0) if proxied else 0,
        })
    return rows


def peers(core) -> list:
    now = core.clock()
    return [{
        "name": state.name, "address": state.peer.host, "port": state.peer.port,
        "state": "up" if state.up else ("down" if state.last_heard is not None else "unknown"),
        "last_heard_ago": None if state.last_heard is None else round(now - state.last_heard, 1),
        "sent": state.sent, "received": state.received,
        "entries": sum(1 for e in core.table.entries(now) if e.node == state.name),
    } for state in core.peers]


def stats(core) -> dict:
    s = core.stats
    entries = core.table.entries(core.clock())
    return {
        "node_id": core.node_id,
        "uptime": round(core.clock() - core.started, 1),
        "packet_in": s["packet_in"],
        "arp": {
            "requests": s["arp_request"],
            "answered_by_flow": s["arp_answered_by_flow"],
            "answered_by_controller": s["arp_answered_by_controller"],
            "answered_via_peers": s["arp_answered_via_peers"],
            "answered_for_peers": s["arp_answered_for_peers"],
            "relayed_to_peers": s["arp_relayed_to_peers"],
            "relay_retries": s["arp_relay_retries"],
            "relay_retries_skipped": s["arp_relay_retries_skipped"],   # over the resend budget
            "replayed_locally": s["arp_replayed_locally"],
        },
        "icc": {
            "sent": {t: s["icc_sent." + t] for t in SCHEMAS},
            "received": {t: s["icc_received." + t] for t in SCHEMAS},
            "dropped": {r: s["icc_dropped." + r] for r in DROP_REASONS},
            "send_errors": s["icc_send_errors"],
        },
        "table": {
            "entries": len(entries),
            "local": sum(1 for e in entries if e.local),
            "remote": sum(1 for e in entries if not e.local),
            "learned": s["entries_learned"], "expired": s["entries_expired"],
            "withdrawn": s["entries_withdrawn"], "not_learned": s["not_learned"],
            "moves": s["host_moved"], "conflicts": s["host_conflict"],
            "claims_rejected": s["claims_rejected"],
            "announcements_sent": s["announcements_sent"],
            "sync_entries_sent": s["sync_entries_sent"],
        },
        "flows": {"flow_mods": s["flow_mods"],
                  "proxy_arp": sum(1 for e in entries if core.proxied(e)),
                  "removed_stale": s["flows_removed_stale"], "repaired": s["flows_repaired"]},
        "peers": {"up": sum(1 for p in core.peers if p.up), "total": len(core.peers.states),
                  "went_down": s["peer_down"]},
        "errors": {k.split(".", 1)[1]: v for k, v in s.items() if k.startswith("internal_errors.")},
    }

"""Prometheus exposition of the controller's counters and gauges (as FAUCET does).

Built from `status.stats()` and `status.peers()`, which read kept counts only, so a scrape
costs the same at 100,000 learned entries as at ten. Families (each with a `node` label):

    ipop_packet_in_total                      ipop_flow_mods_total
    ipop_arp_answered_total{by}               ipop_flows_audits_total
    ipop_arp_relayed_total                    ipop_flows_repaired_total
    ipop_arp_relay_retries_total{outcome}     ipop_flows_removed_stale_total
    ipop_icc_sent_total{type}                 ipop_sync_entries_total{direction}
    ipop_icc_received_total{type}             ipop_sync_ends_received_total
    ipop_icc_dropped_total{reason}            ipop_graceful_restart_active (gauge)
    ipop_icc_bindings_invalid_total           ipop_graceful_restart_stale_deleted_total
    ipop_arp_entries{scope} (gauge)           ipop_proxy_arp_flows (gauge)
    ipop_peer_up{peer} (gauge)                ipop_proxy_nd_flows (gauge)
    ipop_nd_answered_total{by}                ipop_nd_relayed_total
    ipop_nd_dad_total{outcome}                ipop_neighbour_entries{family} (gauge)
    ipop_icc_not_allowed_total                ipop_reloads_total{outcome}
    ipop_port_security_dropped_total{port}    ipop_port_security_refused_total
    ipop_names_refused_total{reason}          ipop_names (gauge)

(ipop_arp_entries counts both families, as it did before IPv6; ipop_neighbour_entries
splits them.)

"""
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from . import status

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class SwitchModeCollector:
    def __init__(self, core):
        self.core = core

    def collect(self):
        s = status.stats(self.core)
        node = [s["node_id"]]

        def family(kind, name, help_text, values, label=None):
            """values: {label value: value}, or one value when there is no label."""
            if label is None:
                values = {None: values}
            out = kind(name, help_text, labels=["node"] + ([label] if label else []))
            for key, value in values.items():
                out.add_metric(node + ([key] if label else []), value)
            return out

        def counter(*args):
            return family(CounterMetricFamily, *args)

        def gauge(*args):
            return family(GaugeMetricFamily, *args)

        arp, icc, flows, sync = s["arp"], s["icc"], s["flows"], s["sync"]
        yield counter("ipop_packet_in", "OpenFlow packet-ins handled", s["packet_in"])
        yield counter("ipop_arp_answered", "ARP requests answered, by whom", {
            "flow": arp["answered_by_flow"], "controller": arp["answered_by_controller"],
            "peers": arp["answered_via_peers"]}, "by")
        yield counter("ipop_arp_relayed", "ARP requests relayed to peers over ICC",
                      arp["relayed_to_peers"])
        yield counter("ipop_arp_relay_retries", "relays resent, or skipped over the budget", {
            "sent": arp["relay_retries"], "skipped": arp["relay_retries_skipped"],
            "peer_arrived": arp["relayed_to_arrived_peers"]}, "outcome")
        yield counter("ipop_arp_caught_forwarded", "replies a relay_reply flow caught that "
                      "answered no relay, forwarded by the controller", arp["caught_forwarded"])
        yield counter("ipop_icc_sent", "ICC messages sent", icc["sent"], "type")
        yield counter("ipop_icc_received", "ICC messages accepted", icc["received"], "type")
        yield counter("ipop_icc_dropped", "ICC datagrams dropped", icc["dropped"], "reason")
        yield counter("ipop_icc_bindings_invalid",
                      "bindings dropped one by one from otherwise valid batches",
                      icc["bindings_invalid"])
        yield counter("ipop_icc_not_allowed", "peer claims for addresses outside the "
                      "sender's allowed_ips, ignored", icc["not_allowed"])
        yield counter("ipop_reloads", "configuration reloads (SIGHUP, POST /ipop/v1/reload)",
                      {"applied": s["reloads"]["applied"], "refused": s["reloads"]["refused"]},
                      "outcome")
        yield counter("ipop_flow_mods", "flow-mods sent to the bridge", flows["flow_mods"])
        yield counter("ipop_flows_audits", "flow audits started", flows["audits"])
        yield counter("ipop_flows_repaired", "flows reinstalled by audits", flows["repaired"])
        yield counter("ipop_flows_removed_stale", "flows nobody claims, removed by audits",
                      flows["removed_stale"])
        yield counter("ipop_sync_entries", "bindings carried by state syncs", {
            "sent": sync["entries_sent"], "received": sync["entries_received"]}, "direction")
        yield counter("ipop_sync_ends_received", "state syncs peers ended", sync["ends_received"])
        yield gauge("ipop_graceful_restart_active", "1 while deletions wait for peers' syncs",
                    1 if s["graceful_restart"]["active"] else 0)
        yield counter("ipop_graceful_restart_stale_deleted",
                      "stale state deleted when a graceful restart ended",
                      s["graceful_restart"]["stale_deleted"])
        yield gauge("ipop_arp_entries", "live learned entries", {
            "local": s["table"]["local"], "remote": s["table"]["remote"]}, "scope")
        yield gauge("ipop_proxy_arp_flows", "proxy-ARP responder flows", flows["proxy_arp"])
        nd = s["nd"]
        yield counter("ipop_nd_answered", "IPv6 neighbour solicitations answered, by whom", {
            "controller": nd["answered_by_controller"], "peers": nd["answered_via_peers"]},
            "by")
        yield counter("ipop_nd_relayed", "neighbour solicitations relayed to peers over ICC",
                      nd["relayed_to_peers"])
        yield counter("ipop_nd_dad", "duplicate address detection probes seen, and defended "
                      "for owners at other sites", {"probes": nd["dad_probes"],
                                                    "defended": nd["dad_defended"]}, "outcome")
        yield gauge("ipop_proxy_nd_flows", "proxy-ND responder flows", flows["proxy_nd"])
        ipv6 = s["table"]["ipv6"]
        yield gauge("ipop_neighbour_entries", "live learned entries by family", {
            "ipv4": s["table"]["entries"] - ipv6, "ipv6": ipv6}, "family")
        portsec, names = s["port_security"], s["names"]
        yield counter("ipop_port_security_dropped", "ARP and ND from local ports for addresses "
                      "they did not lease, dropped in the datapath", portsec["dropped_by_port"],
                      "port")
        yield counter("ipop_port_security_refused", "such frames the controller got before "
                      "the port's flows changed, not learned", portsec["refused"])
        yield counter("ipop_names_refused", "hosts' names from peers not taken",
                      names["refused"], "reason")
        yield gauge("ipop_names", "hosts known by name (all sites)", names["known"])
        yield gauge("ipop_peer_up", "1 if the peer is up", {
            peer["name"]: 1 if peer["state"] == "up" else 0
            for peer in status.peers(self.core)}, "peer")


def registry_for(core) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SwitchModeCollector(core))
    return registry


def exposition(registry) -> bytes:
    return generate_latest(registry)

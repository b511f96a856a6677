"""Prometheus exposition of the controller's counters and gauges (as FAUCET does)."""
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

        def counter(name, help_text, values, label=None):
            family = CounterMetricFamily(name, help_text,
                                         labels=["node"] + ([label] if label else []))
            for key, value in values.items():
                family.add_metric(node + ([key] if label else []), value)
            return family

        yield counter("ipop_packet_in", "OpenFlow packet-ins handled",
                      {"": s["packet_in"]})
        yield counter("ipop_arp_answered", "ARP requests answered, by whom", {
            "flow": s["arp"]["answered_by_flow"],
            "controller": s["arp"]["answered_by_controller"],
            "peers": s["arp"]["answered_via_peers"]}, "by")
        yield counter("ipop_arp_relayed", "ARP requests relayed to peers over ICC",
                      {"": s["arp"]["relayed_to_peers"]})
        yield counter("ipop_arp_relay_retries", "relays resent, or skipped over the budget", {
            "sent": s["arp"]["relay_retries"],
            "skipped": s["arp"]["relay_retries_skipped"]}, "outcome")
        yield counter("ipop_icc_sent", "ICC messages sent", s["icc"]["sent"], "type")
        yield counter("ipop_icc_received", "ICC messages accepted", s["icc"]["received"], "type")
        yield counter("ipop_icc_dropped", "ICC datagrams dropped", s["icc"]["dropped"], "reason")
        yield counter("ipop_flow_mods", "flow-mods sent to the bridge",
                      {"": s["flows"]["flow_mods"]})
        entries = GaugeMetricFamily("ipop_arp_entries", "live learned entries",
                                    labels=["node", "scope"])
        entries.add_metric(node + ["local"], s["table"]["local"])
        entries.add_metric(node + ["remote"], s["table"]["remote"])
        yield entries
        proxies = GaugeMetricFamily("ipop_proxy_arp_flows", "proxy-ARP responder flows",
                                    labels=["node"])
        proxies.add_metric(node, s["flows"]["proxy_arp"])
        yield proxies
        peer_up = GaugeMetricFamily("ipop_peer_up", "1 if the peer is up", labels=["node", "peer"])
        for peer in status.peers(self.core):
            peer_up.add_metric(node + [peer["name"]], 1 if peer["state"] == "up" else 0)
        yield peer_up


def registry_for(core) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SwitchModeCollector(core))
    return registry


def exposition(registry) -> bytes:
    return generate_latest(registry)

"""A flow table that carries out the core's flow intents and answers its stats requests, as
OVS would (OpenFlow 1.3 add/replace, non-strict delete by cookie mask, match and out_port,
counts). Timeouts are not simulated: flows stay until deleted. Used by the unit tests and the
many-site simulator (flows indexed by cookie purpose, so a site with thousands of responders
answers an audit without scanning them all)."""
from ipop_ryu.core import pipeline
from ipop_ryu.core.intents import (DeleteFlows, Flow, Output, RequestAggregateStats,
                                   RequestFlowStats)

FULL = 0xFFFFFFFFFFFFFFFF
_PURPOSE_BITS = pipeline.COOKIE_TAG_MASK | pipeline.PURPOSE_MASK


class FakeSwitch:
    def __init__(self):
        self.by_purpose = {}       # cookie & _PURPOSE_BITS -> {(table, prio, match): Flow}
        self.requests = []         # stats requests not answered yet, in order
        self.proxied = set()       # addresses a proxy-ARP responder answers for

    @property
    def flows(self):
        return {k: f for group in self.by_purpose.values() for k, f in group.items()}

    def apply(self, intents):
        for intent in intents:
            if isinstance(intent, Flow):
                group = self.by_purpose.setdefault(intent.cookie & _PURPOSE_BITS, {})
                group[intent.table, intent.priority, intent.match_items] = intent
                if pipeline.purpose_of(intent.cookie) == "proxy_arp":
                    self.proxied.add(pipeline.ip_of(intent.cookie))
            elif isinstance(intent, DeleteFlows):
                for group in self._groups(intent.cookie, intent.cookie_mask):
                    for key, flow in list(group.items()):
                        if self._matches(flow, intent.cookie, intent.cookie_mask,
                                         intent.table) and \
                                set(intent.match_items) <= set(flow.match_items) and \
                                _outputs_to(flow, intent.out_port):
                            del group[key]
                            if pipeline.purpose_of(flow.cookie) == "proxy_arp":
                                self.proxied.discard(pipeline.ip_of(flow.cookie))
            elif isinstance(intent, (RequestAggregateStats, RequestFlowStats)):
                self.requests.append(intent)

    def _groups(self, cookie, mask):
        if mask & _PURPOSE_BITS == _PURPOSE_BITS:
            group = self.by_purpose.get(cookie & _PURPOSE_BITS)
            return [group] if group is not None else []
        return list(self.by_purpose.values())

    @staticmethod
    def _matches(flow, cookie, mask, table=None):
        return flow.cookie & mask == cookie & mask and table in (None, flow.table)

    def select(self, cookie, mask=FULL):
        return [f for group in self._groups(cookie, mask) for f in group.values()
                if self._matches(f, cookie, mask)]

    def packet_count(self, flow) -> int:
        """How many packets flow has matched (no packets pass here)."""
        return 0

    def answer(self, core, limit=10000):
        """Answer the queued requests (and those their answers cause) through the core's
        reply methods; returns the intents the core emitted besides the requests."""
        out = []
        while self.requests and limit:
            limit -= 1
            request = self.requests.pop(0)
            flows = self.select(request.cookie, request.cookie_mask)
            if isinstance(request, RequestAggregateStats):
                step = core.aggregate_stats(request, len(flows), 0)
            else:
                step = core.flow_stats(request, [(f.cookie, f.table, f.priority,
                                                  self.packet_count(f)) for f in flows])
            self.apply(step)
            out += [i for i in step
                    if not isinstance(i, (RequestAggregateStats, RequestFlowStats))]
        return out


def _outputs_to(flow, out_port) -> bool:
    """OpenFlow's out_port filter of a delete: None (OFPP_ANY) takes every flow."""
    return out_port is None or Output(out_port) in flow.actions

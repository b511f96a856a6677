"""A flow table that carries out the core's flow intents and answers its stats requests, as
OVS would (OpenFlow 1.3 add/replace, non-strict delete by cookie mask and match, counts)."""
from ipop_ryu.core.intents import DeleteFlows, Flow, RequestAggregateStats, RequestFlowStats

FULL = 0xFFFFFFFFFFFFFFFF


class FakeSwitch:
    def __init__(self):
        self.flows = {}            # (table, priority, match_items) -> Flow
        self.requests = []         # stats requests not answered yet, in order

    def apply(self, intents):
        for intent in intents:
            if isinstance(intent, Flow):
                self.flows[intent.table, intent.priority, intent.match_items] = intent
            elif isinstance(intent, DeleteFlows):
                for key, flow in list(self.flows.items()):
                    if self._matches(flow, intent.cookie, intent.cookie_mask, intent.table) and \
                            set(intent.match_items) <= set(flow.match_items):
                        del self.flows[key]
            elif isinstance(intent, (RequestAggregateStats, RequestFlowStats)):
                self.requests.append(intent)

    @staticmethod
    def _matches(flow, cookie, mask, table=None):
        return flow.cookie & mask == cookie & mask and table in (None, flow.table)

    def select(self, cookie, mask=FULL):
        return [f for f in self.flows.values() if self._matches(f, cookie, mask)]

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
                step = core.flow_stats(request, [(f.cookie, f.table, f.priority, 0)
                                                 for f in flows])
            self.apply(step)
            out += [i for i in step
                    if not isinstance(i, (RequestAggregateStats, RequestFlowStats))]
        return out

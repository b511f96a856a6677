"""The anycast gateway is one gateway: the same address and MAC at every site. Each site's
hellos carry its own (optional fields: older sites ignore them, and send none); a peer whose
gateway differs is reported, once per change, and counted, never fought over (each site
keeps answering with its own configuration)."""
import logging
from collections import Counter
from typing import Dict, Optional, Tuple

from .config import Options

LOG = logging.getLogger("ipop_ryu")


def hello_fields(options: Options) -> dict:
    """What our hellos say about our gateway (nothing without site services)."""
    if not options.site_services:
        return {}
    fields = {"gateway": options.gateway.with_prefixlen, "gateway_mac": options.gateway_mac}
    if options.gateway6 is not None:
        fields["gateway6"] = options.gateway6.with_prefixlen
    return fields


class GatewayWatch:
    def __init__(self, options: Options, stats: Counter):
        self.ours = hello_fields(options)
        self.stats = stats
        self.mismatched: Dict[str, Dict[str, Tuple[Optional[str], Optional[str]]]] = {}

    def hello(self, message, now: float) -> list:
        """A peer's hello: does its gateway agree with ours?"""
        if not self.ours:
            return []
        theirs = {key: message.fields.get(key) for key in self.ours}
        if all(value is None for value in theirs.values()):
            return []                # a site without services, or from before them
        differs = {key: (value, self.ours[key]) for key, value in theirs.items()
                   if value != self.ours[key]}
        if differs != self.mismatched.get(message.node, {}):
            if differs:
                self.stats["gateway_mismatch"] += 1
                LOG.warning("peer %s has another gateway: %s (every site must have the same)",
                            message.node, ", ".join(f"{key} {value} (ours {mine})"
                                                    for key, (value, mine) in differs.items()))
            else:
                LOG.info("peer %s now has the same gateway as ours", message.node)
        if differs:
            self.mismatched[message.node] = differs
        else:
            self.mismatched.pop(message.node, None)
        return []

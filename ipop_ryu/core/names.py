"""Hosts' names across sites, as lxc-net's dnsmasq gives them on one host: `ping c7` from a
container at one site reaches c7 at another.

A name travels with its host's claim (icc: `name`, `names`) and is believed only where the
claim is: from the site that may claim the address (allowed_ips) and whose claim holds.
A name must be one DNS label (RFC 1123: letters, digits, '-', 1-63 characters, no '-' at either
end); any other is refused and counted. Two hosts claiming one name: the later claim wins (the
neighbour table's rule: the claim's time, ties the greater node id), the same at every site. A
claim's time is when the name was first heard with that address: refreshes do not change it,
so a name does not flap between two hosts that both keep speaking.

The controller writes the winners of other sites into one hosts file in dns_hosts_dir,
dnsmasq's --hostsdir (re-read on change, dnsmasq 2.88+ drops removed lines): each site's
dnsmasq answers for its own leases itself, and for every other site's hosts from the file.
"""
import re
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Set

REFUSALS = ("invalid", "not_allowed", "claim_lost")
HOSTS_FILE = "overlay"        # in dns_hosts_dir; dnsmasq skips dotfiles (the temporary one)
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")       # fullmatch: "c7\n" is not one


def dns_label(text) -> Optional[str]:
    """text as one DNS label in lower case, or None if it is not one."""
    if not isinstance(text, str):
        return None
    lowered = text.lower()
    return lowered if _LABEL.fullmatch(lowered) else None


@dataclass(frozen=True)
class NameClaim:
    name: str
    node: str
    since: float              # wall-clock time the name was first heard with this address

    @property
    def rank(self):
        return (self.since, self.node)


class Names:
    def __init__(self, node_id: str, domain: str, stats: Counter):
        self.node_id, self.domain, self.stats = node_id, domain, stats
        self.by_ip: Dict[str, NameClaim] = {}
        self._holders: Dict[str, Set[str]] = {}     # name -> addresses claiming it
        self.changed = True           # the hosts file is due (also at start: empty it)

    def claim(self, ip: str, name, node: str, since: float):
        """node, whose claim on ip holds, says its host is called name."""
        label = dns_label(name)
        if label is None:
            self.refused("invalid")
            return
        old = self.by_ip.get(ip)
        if old is not None and (old.name, old.node) == (label, node):
            return
        self.drop(ip)
        self.by_ip[ip] = NameClaim(label, node, since)
        self._holders.setdefault(label, set()).add(ip)
        self.stats["names_learned"] += 1
        self.changed = True
        if len(self._holders[label]) > 1:
            self.stats["names_conflict"] += 1

    def refused(self, why: str):
        self.stats[f"names_refused.{why}"] += 1

    def drop(self, ip: str, node: Optional[str] = None):
        """ip's host is gone (or, with node, no longer that node's)."""
        old = self.by_ip.get(ip)
        if old is not None and (node is None or old.node == node):
            del self.by_ip[ip]
            holders = self._holders[old.name]
            holders.discard(ip)
            if not holders:
                del self._holders[old.name]
            self.changed = True

    def name_of(self, ip: str) -> Optional[str]:
        claim = self.by_ip.get(ip)
        return claim.name if claim else None

    def owner(self, name: str) -> Optional[str]:
        """The address name resolves to: its latest claim's."""
        holders = self._holders.get(name)
        return max(holders, key=lambda ip: self.by_ip[ip].rank) if holders else None

    def hosts_lines(self) -> List[str]:
        """`ADDRESS NAME NAME.domain` of every other site's host that holds its name (our own
        leases our dnsmasq knows; where one of ours holds a name, no other site's host gets
        it), sorted by name."""
        lines = []
        for name in sorted(self._holders):
            ip = self.owner(name)
            if self.by_ip[ip].node != self.node_id:
                lines.append(f"{ip} {name} {name}.{self.domain}")
        return lines

    def hosts_text(self) -> str:
        head = "# written by ipop-ryu: hosts of other sites, by name (do not edit)\n"
        return head + "".join(line + "\n" for line in self.hosts_lines())

    def status(self) -> dict:
        return {"known": len(self.by_ip), "in_hosts_file": len(self.hosts_lines()),
                "learned": self.stats["names_learned"],
                "conflicts": self.stats["names_conflict"],
                "refused": {why: self.stats[f"names_refused.{why}"] for why in REFUSALS}}

    def due(self) -> Optional[str]:
        """The hosts file's new text if it changed since last asked, else None."""
        if not self.changed:
            return None
        self.changed = False
        return self.hosts_text()

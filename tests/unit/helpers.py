"""Small builders shared by the unit tests."""
from ipop_ryu.core import arp
from ipop_ryu.core.config import Options, Peer

KEY = b"k" * 32


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def options(node="A", peers=("B",), **kw):
    hosts = {"A": "192.0.2.1", "B": "192.0.2.2", "C": "192.0.2.3"}
    return Options(node_id=node, icc_key=KEY,
                   peers=tuple(Peer(p, hosts[p], 30000) for p in peers), **kw)


def mac_of(ip):
    return "02:00:" + ":".join(f"{int(x):02x}" for x in ip.split("."))


def who_has(sender_ip, target_ip, sender_mac=None):
    return arp.build(arp.request(sender_ip, sender_mac or mac_of(sender_ip), target_ip))


def is_at(owner_ip, to_ip, owner_mac=None):
    return arp.build(arp.reply(owner_ip, owner_mac or mac_of(owner_ip), to_ip, mac_of(to_ip)))

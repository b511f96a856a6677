"""Micro-benchmark: the controller's cost per flow-mod when learning ARP entries.

Each learned entry is two flows (pipeline.install_arp_responder: responder and guard). This
times building those intents and turning them into bytes, through Ryu's objects (the
reference path, `to_messages` + serialize) and through `to_wire` (byte templates), and
prints microseconds per flow-mod. No switch involved: this is the controller's CPU only.

    .venv/bin/python -m ipop_bench.flowmod_cost [entries]
"""
import socket
import sys
import time

from ipop_ryu.compat.framework import ofproto_v1_3 as ofp
from ipop_ryu.compat.framework import ofproto_v1_3_parser as parser

from ipop_ryu.core import pipeline
from ipop_ryu.ofp import ryu13


class _Datapath:
    ofproto, ofproto_parser = ofp, parser
    id = 1
    xid = 0

    def set_xid(self, msg):
        self.xid = (self.xid + 1) & ofp.MAX_XID
        msg.set_xid(self.xid)


def _entries(n: int):
    """n distinct (ip, mac, hard_timeout), built before timing starts."""
    base = int.from_bytes(socket.inet_aton("10.0.0.0"), "big")
    return [(socket.inet_ntoa((base + i + 1).to_bytes(4, "big")),
             (0x020000000000 + i).to_bytes(6, "big").hex(":"), 30 + i % 60)
            for i in range(n)]


def by_ryu(datapath, intent) -> list:
    out = []
    for msg in ryu13.to_messages(datapath, intent):
        datapath.set_xid(msg)
        msg.serialize()
        out.append(msg.buf)
    return out


def run(entries: int, encode) -> float:
    """Microseconds per flow-mod for install_arp_responder + encode over `entries` entries."""
    datapath, work = _Datapath(), _entries(entries)
    start = time.perf_counter()
    flowmods = 0
    for ip, mac, timeout in work:
        for intent in pipeline.install_arp_responder(ip, mac, timeout):
            flowmods += len(encode(datapath, intent))
    return (time.perf_counter() - start) / flowmods * 1e6


def main(argv=None) -> None:
    args = sys.argv[1:] if argv is None else argv
    entries = int(args[0]) if args else 20_000
    ryu13.to_wire(_Datapath(), pipeline.install_arp_responder("10.9.9.9", "02:00:00:00:00:09",
                                                              5)[0])   # warm both templates
    ryu13.to_wire(_Datapath(), pipeline.install_arp_responder("10.9.9.9", "02:00:00:00:00:09",
                                                              5)[1])
    before = run(entries, by_ryu)
    after = run(entries, ryu13.to_wire)
    print(f"{entries} ARP entries, {2 * entries} flow-mods (install_arp_responder + encode)")
    print(f"  Ryu objects + serialize: {before:8.2f} us/flow-mod "
          f"({1e6 / before / 2:8.0f} entries/s)")
    print(f"  byte templates (to_wire): {after:7.2f} us/flow-mod "
          f"({1e6 / after / 2:8.0f} entries/s)")
    print(f"  speed-up: x{before / after:.1f}")


if __name__ == "__main__":
    main()

"""Framework-free core of switch mode: no Ryu import below this package.

Events go in (packet-in, ICC datagram, clock tick, port change) and intents come out
(flows to add or delete, packets to send out, ICC datagrams to send); `ipop_ryu.ofp`
turns intents into OpenFlow messages and `ipop_ryu.apps.switchmode` is the Ryu shell.
"""

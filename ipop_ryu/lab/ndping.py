"""`python -m ipop_ryu.lab.ndping IFACE SRC TARGET [COUNT [GAP_MS]]`, run inside a container:
send COUNT multicast neighbour solicitations for TARGET from SRC (the interface's MAC as
source link-layer option) and print, as JSON, the milliseconds until each one's NA came
back (null when none within 1 s). The kernel's own neighbour cache is not involved, so every
probe is a whole resolution: the ND counterpart of the bench's ARP probe."""
import json
import select
import socket
import sys
import time

from ipop_ryu.core import nd

ETH_P_IPV6 = 0x86DD
TIMEOUT = 1.0


def probe(iface: str, src: str, target: str, count: int = 1, gap_ms: float = 20) -> list:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
    sock.bind((iface, ETH_P_IPV6))
    mac = sock.getsockname()[4].hex(":")
    solicit = nd.build(nd.solicit(src, mac, target))
    rtts = []
    try:
        for n in range(count):
            if n:
                time.sleep(gap_ms / 1000)
            start = time.monotonic()
            sock.send(solicit)
            rtts.append(_answer(sock, target, mac, start))
    finally:
        sock.close()
    return rtts


def _answer(sock, target, mac, start):
    while True:
        left = start + TIMEOUT - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            return None
        frame = nd.parse(sock.recv(2048))
        if frame is not None and frame.type == nd.NA and frame.target == target \
                and frame.eth_dst == mac:
            return round((time.monotonic() - start) * 1000, 3)


def main(argv):
    iface, src, target = argv[:3]
    count = int(argv[3]) if len(argv) > 3 else 1
    gap = float(argv[4]) if len(argv) > 4 else 20
    print(json.dumps(probe(iface, src, target, count, gap)))


if __name__ == "__main__":
    main(sys.argv[1:])

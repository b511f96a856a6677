"""Small programs the bench runs inside lab namespaces: `python -m ipop_bench.agents CMD`.

Standard library only (plus ipop_ryu.core.icc for `iccgen`, ipop_ryu.core.nd for `ndping`), one JSON document on stdout.

    arping   ARP requests from a raw socket, one target at a time; RTT = kernel receive
             timestamp of the reply (SO_TIMESTAMPNS) minus the wall clock just before send()
    ndping   the same with IPv6 neighbour solicitations (NA for the target, to us)
    arpgen   broadcast ARP requests at a fixed rate (packet-in load)
    iccgen   signed ICC arp_request datagrams at a fixed rate (ICC load), pre-encoded
    firstping  ICMP echo until the first reply (cold start to first ping)
    sample   an interface counter from /sys, sampled at a fixed interval
"""
import argparse
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
PACKET_OUTGOING = 4
BROADCAST = b"\xff" * 6


def _mac_bytes(mac):
    return bytes.fromhex(mac.replace(":", ""))


def _iface_mac(iface):
    with open(f"/sys/class/net/{iface}/address") as f:
        return f.read().strip()


def arp_request(sha, spa, tpa):
    """Broadcast who-has tpa tell spa, padded to the 60-byte Ethernet minimum."""
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, sha, socket.inet_aton(spa),
                      b"\x00" * 6, socket.inet_aton(tpa))
    return (BROADCAST + sha + struct.pack("!H", ETH_P_ARP) + arp).ljust(60, b"\x00")


def _raw_socket(iface):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    sock.bind((iface, ETH_P_ARP))
    return sock


def _unique_targets(n, network="10.9.0.0/16"):
    """n target addresses that no host owns (ARP for them stays unanswered)."""
    net = ipaddress.ip_network(network)
    return [str(net.network_address + 1 + i % (net.num_addresses - 2)) for i in range(n)]


# --- arping -----------------------------------------------------------------------------

def cmd_arping(args):
    """One request per entry of --targets (in order), each waiting at most --timeout-ms for
    the reply, the next one sent --gap-ms after the previous one (never earlier than its
    reply). Prints [{"target", "t_send" (UNIX ns), "rtt_ms" or null, "mac"}]."""
    sock = _raw_socket(args.iface)
    mac = _mac_bytes(args.mac or _iface_mac(args.iface))

    def answer(data, target):
        if len(data) < 42:
            return None
        op, sha, spa, tha = struct.unpack("!H6s4s6s", data[20:38])
        if op != 2 or spa != socket.inet_aton(target) or tha != mac:
            return None
        return ":".join(f"{b:02x}" for b in sha)
    return _resolve(sock, args, lambda t: arp_request(mac, args.ip, t), answer)


def cmd_ndping(args):
    """The ND counterpart of arping: one multicast neighbour solicitation per target (from
    --ip, the interface's MAC as source link-layer option), RTT to the kernel's receive
    timestamp of the NA for it addressed to us; same output. The kernel's neighbour cache is
    not involved: every probe is a whole resolution (as ipop_ryu.lab.ndping)."""
    from ipop_ryu.core import nd
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
    sock.bind((args.iface, ETH_P_IPV6))
    mac = args.mac or _iface_mac(args.iface)

    def answer(data, target):
        frame = nd.parse(data)
        if frame is None or frame.type != nd.NA or frame.target != target \
                or frame.eth_dst != mac:
            return None
        return frame.lladdr or frame.eth_src
    return _resolve(sock, args, lambda t: nd.build(nd.solicit(args.ip, mac, t)), answer)


def _resolve(sock, args, request, answer):
    """The probe loop of arping and ndping: request(target) -> frame to send;
    answer(received frame, target) -> the answering MAC, or None for any other frame."""
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    results = []
    for target in args.targets.split(","):
        frame = request(target)
        # drop anything queued (late replies to an earlier probe)
        sock.setblocking(False)
        try:
            while True:
                sock.recv(2048)
        except BlockingIOError:
            pass
        sock.setblocking(True)
        t_send = time.time_ns()
        start = time.monotonic()
        sock.send(frame)
        deadline = start + args.timeout_ms / 1000.0
        rtt, reply_mac = None, None
        while rtt is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
                break
            data, anc, _, addr = sock.recvmsg(2048, 256)
            if addr[2] == PACKET_OUTGOING:
                continue
            reply_mac = answer(data, target)
            if reply_mac is None:
                continue
            t_recv = None
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", value[:16])
                    t_recv = sec * 1_000_000_000 + nsec
            if t_recv is None:
                t_recv = time.time_ns()
            rtt = max(0, t_recv - t_send) / 1e6
        results.append({"target": target, "t_send": t_send, "rtt_ms": rtt, "mac": reply_mac})
        pause = start + args.gap_ms / 1000.0 - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    return results


# --- load generators ----------------------------------------------------------------------

def _paced(send, items, rate, duration):
    """Call send(item) for items in turn at `rate` per second for `duration` seconds (or
    until items run out). Catches up in bursts when late; returns (sent, t_start, t_end)
    in time.monotonic() seconds."""
    n_total = min(len(items), int(rate * duration)) if items is not None else int(rate * duration)
    sent = 0
    t_start = time.monotonic()
    end = t_start + duration
    while sent < n_total:
        now = time.monotonic()
        if now >= end:
            break
        due = min(n_total, int((now - t_start) * rate) + 1)
        while sent < due:
            try:
                send(items[sent] if items is not None else sent)
            except OSError:  # ENOBUFS: the receiver is overwhelmed; count it as not sent
                pass
            sent += 1
        ahead = t_start + sent / rate - time.monotonic()
        if ahead > 0:
            time.sleep(min(ahead, 0.002))
    return sent, t_start, time.monotonic()


def cmd_arpgen(args):
    """Broadcast ARP requests from this host's MAC/IP for --targets distinct unknown
    addresses (rotating), at --rate per second for --duration seconds."""
    sock = _raw_socket(args.iface)
    mac = _mac_bytes(args.mac or _iface_mac(args.iface))
    distinct = max(1, args.distinct)
    frames = [arp_request(mac, args.ip, t) for t in _unique_targets(distinct)]
    n = int(args.rate * args.duration)
    sent, t0, t1 = _paced(lambda i: sock.send(frames[i % distinct]), None, args.rate,
                          args.duration) if n else (0, time.monotonic(), time.monotonic())
    return {"sent": sent, "t_start": t0, "t_end": t1, "rate": args.rate, "distinct": distinct}


def cmd_iccgen(args):
    """Signed arp_request datagrams as peer --node (from --bind, a port the peer's own
    controller does not use: only the source address is checked), each for a different
    unknown target, at --rate per second for --duration seconds. Sequence numbers start
    above the wall clock in microseconds, as a controller's do, so they are fresh."""
    from ipop_ryu.core.membership import link_from_files
    codec = link_from_files(args.key_file, args.node, args.peer_node, args.peer_key)
    n = int(args.rate * args.duration)
    t_encode = time.monotonic()
    seq0 = int(time.time() * 1e6) + 1
    targets = _unique_targets(n)
    now = time.time()
    datagrams = [codec.encode("arp_request", args.node, seq0 + i, now, sender_ip=args.sender_ip,
                              sender_mac=args.sender_mac, target_ip=targets[i])
                 for i in range(n)]
    host, port = args.bind.rsplit(":", 1)
    dest_host, dest_port = args.dest.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.bind((host, int(port)))
    dest = (dest_host, int(dest_port))
    sent, t0, t1 = _paced(lambda d: sock.sendto(d, dest), datagrams, args.rate, args.duration)
    return {"sent": sent, "t_start": t0, "t_end": t1, "rate": args.rate,
            "encode_s": round(t0 - t_encode, 3)}


def _checksum(data):
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def cmd_firstping(args):
    """ICMP echo requests to --target every --interval seconds until the first reply or
    --deadline; prints {"t_reply": UNIX time of the first reply or null, "sent": n}. (ping -c 1
    would stop at the first "Destination Host Unreachable", which counts as an answer.)"""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    end = time.monotonic() + args.deadline
    sent = 0
    next_send = time.monotonic()
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_send:
            sent += 1
            header = struct.pack("!BBHHH", 8, 0, 0, ident, sent & 0xFFFF)
            payload = b"ipop-ryu-bench".ljust(32, b".")
            packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident,
                                 sent & 0xFFFF) + payload
            try:
                sock.sendto(packet, (args.target, 0))
            except OSError:        # EHOSTUNREACH after a failed ARP resolution: retry
                pass
            next_send += args.interval
        wait = max(0.0, min(next_send, end) - time.monotonic())
        if not select.select([sock], [], [], wait)[0]:
            continue
        data, addr = sock.recvfrom(2048)
        t = time.time()
        ihl = (data[0] & 0x0F) * 4
        if addr[0] == args.target and len(data) >= ihl + 8:
            kind, _, _, rid, _ = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if kind == 0 and rid == ident:
                return {"t_reply": t, "sent": sent}
    return {"t_reply": None, "sent": sent}


def cmd_sample(args):
    """[(time.monotonic(), value)] of /sys/class/net/IFACE/statistics/COUNTER every
    --interval seconds for --duration seconds."""
    path = f"/sys/class/net/{args.iface}/statistics/{args.counter}"
    samples = []
    fd = os.open(path, os.O_RDONLY)
    try:
        t_next = time.monotonic()
        end = t_next + args.duration
        while True:
            value = int(os.pread(fd, 64, 0))
            now = time.monotonic()
            samples.append((now, value))
            if now >= end:
                break
            t_next += args.interval
            time.sleep(max(0.0, t_next - time.monotonic()))
    finally:
        os.close(fd)
    return samples


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ipop_bench.agents")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, func in (("arping", cmd_arping), ("ndping", cmd_ndping)):
        p = sub.add_parser(name)
        p.add_argument("--iface", default="eth0")
        p.add_argument("--ip", required=True)
        p.add_argument("--mac")
        p.add_argument("--targets", required=True)
        p.add_argument("--gap-ms", type=float, default=20.0)
        p.add_argument("--timeout-ms", type=float, default=1000.0)
        p.set_defaults(func=func)
    p = sub.add_parser("arpgen")
    p.add_argument("--iface", default="eth0")
    p.add_argument("--ip", required=True)
    p.add_argument("--mac")
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--distinct", type=int, default=65000)
    p.set_defaults(func=cmd_arpgen)
    p = sub.add_parser("iccgen")
    from ipop_bench.feeder import add_key_arguments
    add_key_arguments(p)
    p.add_argument("--node", required=True)
    p.add_argument("--bind", required=True)
    p.add_argument("--dest", required=True)
    p.add_argument("--sender-ip", required=True)
    p.add_argument("--sender-mac", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--duration", type=float, required=True)
    p.set_defaults(func=cmd_iccgen)
    p = sub.add_parser("firstping")
    p.add_argument("--target", required=True)
    p.add_argument("--interval", type=float, default=0.02)
    p.add_argument("--deadline", type=float, default=30.0)
    p.set_defaults(func=cmd_firstping)
    p = sub.add_parser("sample")
    p.add_argument("--iface", default="eth0")
    p.add_argument("--counter", default="rx_packets")
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--duration", type=float, required=True)
    p.set_defaults(func=cmd_sample)
    return answer(parser, argv)


def answer(parser, argv=None):
    """Run the sub-command argv names: its result is one JSON line on stdout, what the bench
    reads back (the scale bench's agents answer the same way)."""
    args = parser.parse_args(argv)
    json.dump(args.func(args), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

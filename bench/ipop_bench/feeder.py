"""A fake ICC peer for the scale bench: `python -m ipop_bench.feeder ...` (in a namespace).

It speaks ICC as one node (signed with the lab's key) from that node's address and port, and
owns `--count` hosts: entry i is 10.(64 + (i >> 16)).((i >> 8) & 255).(i & 255) at
02:bb:<4 bytes of i> (inside 10.64.0.0/10, away from the lab's containers in 10.0.3.0/24).

    hello      every --hello-interval s, with a boot id fixed for the process's life
    feed       after --feed-after s (or on SIGUSR1 with --feed-on-signal): every host in
               `bindings` batches (icc.bindings_batches), paced at --rate datagrams/s
    sync       on the peer's `sync_request`, or a hello with a new `boot` (the peer restarted):
               every host again in `bindings` batches, then `sync_end` with the count

Pacing: besides --rate, with --watch-pid (any process in the receiver's network namespace)
sending waits while the receiver's socket on the peer's port holds more than --max-queue
bytes (/proc/PID/net/udp rx_queue), so the controller's receive buffer is never overrun and
the learn rate measured is the controller's, not the loss of an overfilled socket.

Counts (bindings and datagrams sent, syncs answered, what was received) and one record per
feed or sync (wall-clock times of its first binding and of its end) go to --status as JSON,
rewritten every second and at exit. SIGTERM or SIGINT stops it.
"""
import argparse
import errno
import json
import os
import select
import signal
import socket
import sys
import time
from collections import Counter

from ipop_ryu.core.icc import Drop, bindings_batches
from ipop_ryu.core.membership import link_from_files

SAME_ASK = 1.0            # a sync asked again this soon after one started is the same ask
QUEUE_CHECK_EVERY = 8     # datagrams sent between two looks at the receiver's queue
STATUS_EVERY = 1.0
RETRY_ERRNOS = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS)


def entry_ip(i):
    return f"10.{64 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"


def entry_mac(i):
    return "02:bb:" + ":".join(f"{b:02x}" for b in i.to_bytes(4, "big"))


FEEDER_NET = "10.64.0.0/10"    # what a feeder's node must be allowed to claim (allowed_ips)


def entries(count, first=0):
    """[(ip, mac)] of hosts first .. first+count-1 (at most 4,194,304: 10.64.0.0/10)."""
    if first < 0 or first + count > 1 << 22:
        raise ValueError("entries 0 to 4,194,303 fit 10.64.0.0/10")
    return [(entry_ip(i), entry_mac(i)) for i in range(first, first + count)]


def udp_queue(pid, port):
    """(rx_queue bytes, drops) of the UDP socket bound to `port` in the network namespace of
    `pid`, or None when there is none (the receiver is not running)."""
    try:
        with open(f"/proc/{pid}/net/udp") as f:
            lines = f.readlines()[1:]
    except OSError:
        return None
    for line in lines:
        # sl local_address rem_address st tx_queue:rx_queue ... drops
        cols = line.split()
        if len(cols) >= 13 and int(cols[1].rsplit(":", 1)[1], 16) == port:
            return int(cols[4].split(":")[1], 16), int(cols[-1])
    return None


class Job:
    """One pass over every host towards the peer: the initial feed or a sync."""

    def __init__(self, reason, batches, sync, now, wall):
        self.reason, self.batches, self.sync = reason, batches, sync
        self.started, self.record = now, {"reason": reason, "started": wall,
                                          "first_binding": None, "finished": None,
                                          "bindings": 0, "datagrams": 0, "sync_end": sync,
                                          "superseded": False}
        self.next = 0

    @property
    def done(self):
        return self.next >= len(self.batches)


class Feeder:
    """The protocol side, without sockets: feed `datagrams()` what arrives with `receive()`
    and send what `due(now)` returns; `sent(kind, n)` after each successful send."""

    def __init__(self, codec, node, pairs, peer_host, clock=time.monotonic, wallclock=time.time,
                 boot=None):
        self.codec, self.node, self.peer_host = codec, node, peer_host
        self.clock, self.wallclock = clock, wallclock
        self.batches = list(bindings_batches(pairs))
        self.count = len(pairs)
        self.boot = boot or os.urandom(8).hex()           # 16 hex characters
        self.seq = int(wallclock() * 1e6)                 # strictly increasing, as a controller's
        self.peer_boot = None
        self.job = None
        self._last_sync = float("-inf")     # when the last sync started (clock)
        self.jobs = []
        self.stats = Counter()
        self.received = Counter()
        self.dropped = Counter()
        self.changed = False        # a pass began sending or ended: worth writing at once

    def encode(self, msg_type, **fields):
        self.seq += 1
        return self.codec.encode(msg_type, self.node, self.seq, self.wallclock(), **fields)

    def hello(self):
        self.stats["hellos_sent"] += 1
        return self.encode("hello", boot=self.boot)

    # ---- what arrives -----------------------------------------------------------------------
    def receive(self, data, addr):
        try:
            message = self.codec.decode(data)
        except Drop as drop:
            self.dropped[drop.reason] += 1
            return None
        if addr[0] != self.peer_host:
            self.dropped["unknown_peer"] += 1
            return None
        self.received[message.type] += 1
        if message.type == "hello":
            boot = message["boot"]
            if self.peer_boot is not None and boot != self.peer_boot:
                self.stats["peer_restarts"] += 1
                self.start("peer restarted", sync=True)
            self.peer_boot = boot
        elif message.type == "sync_request":
            self.stats["sync_requests"] += 1
            self.start("sync_request", sync=True)
        return message

    def start(self, reason, sync):
        """Start a pass over every host; a sync asked while one began less than SAME_ASK ago
        is that same one (a restarted peer's hello and its sync_request come together)."""
        now = self.clock()
        job = self.job
        if sync and job is not None and now - job.started < SAME_ASK:
            job.sync = job.record["sync_end"] = True
            self.stats["sync_requests_joined"] += 1
            return job
        if sync and job is None and now - self._last_sync < SAME_ASK:
            self.stats["sync_requests_joined"] += 1     # that sync has even ended already
            return None
        if job is not None:
            job.record["superseded"] = True
        self.job = Job(reason, self.batches, sync, now, self.wallclock())
        if sync:
            self._last_sync = now
        self.jobs.append(self.job.record)
        if sync:
            self.stats["syncs_started"] += 1
        return self.job

    # ---- what goes out ----------------------------------------------------------------------
    def next_datagram(self):
        """(kind, datagram, bindings in it) of the job's next datagram, or None."""
        job = self.job
        if job is None:
            return None
        if not job.done:
            batch = job.batches[job.next]
            return "bindings", self.encode("bindings", bindings=batch), len(batch)
        if job.sync:
            return "sync_end", self.encode("sync_end", count=job.record["bindings"]), 0
        self.finish()
        return None

    def sent(self, kind, n):
        """A datagram of the job left (n bindings in it)."""
        job = self.job
        if kind == "bindings":
            if job.record["first_binding"] is None:
                job.record["first_binding"] = self.wallclock()
                self.changed = True
            job.next += 1
            job.record["bindings"] += n
            job.record["datagrams"] += 1
            self.stats["bindings_sent"] += n
            self.stats["bindings_datagrams_sent"] += 1
        else:
            job.record["datagrams"] += 1
            self.stats["sync_ends_sent"] += 1
            self.stats["syncs_answered"] += 1
            self.finish()

    def finish(self):
        self.job.record["finished"] = self.wallclock()
        self.job = None
        self.changed = True

    def status(self):
        return {"node": self.node, "boot": self.boot, "entries": self.count,
                "datagrams_per_pass": len(self.batches), "peer_boot": self.peer_boot,
                "seq": self.seq, **self.stats, "received": dict(self.received),
                "dropped": dict(self.dropped), "jobs": self.jobs,
                "busy": self.job is not None, "updated": self.wallclock()}


def _addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def write_status(path, status):
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(status, f)
    os.replace(tmp, path)


def run(args, feeder=None, sock=None, stop=None):
    """The socket loop: hellos, receiving, paced sending, status file. Returns the status.
    `stop` (a callable, for tests) ends it like SIGTERM does."""
    codec = link_from_files(args.key_file, args.node, args.peer_node, args.peer_key) \
        if feeder is None else feeder.codec
    peer = _addr(args.peer)
    if feeder is None:
        feeder = Feeder(codec, args.node, entries(args.count, args.first), peer[0])
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sock.bind(_addr(args.bind))
    sock.setblocking(False)
    state = {"stop": False, "feed": not args.feed_on_signal}
    if stop is None:
        def _stop(*_):
            state["stop"] = True

        def _feed(*_):
            state["feed"] = True
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGUSR1, _feed)
        stop = lambda: state["stop"]          # noqa: E731
    clock = feeder.clock
    t0 = clock()
    feed_at = t0 + args.feed_after
    next_hello = t0
    next_status = t0
    tokens, last = 0.0, t0
    burst = max(1.0, args.rate / 50) if args.rate else 0
    since_check, throttled_since = QUEUE_CHECK_EVERY, None
    pending = None              # a datagram that could not leave yet (EAGAIN)
    fed = False

    def send(data):
        try:
            sock.sendto(data, peer)
            return True
        except OSError as exc:
            if exc.errno in RETRY_ERRNOS:
                return None             # try again shortly
            feeder.stats["send_errors"] += 1   # e.g. ECONNREFUSED: nobody listens (restart)
            return False

    while not stop():
        now = clock()
        if now >= next_hello:
            send(feeder.hello())
            next_hello += args.hello_interval
            if next_hello < now:
                next_hello = now + args.hello_interval
        if not fed and state["feed"] and now >= feed_at and args.count:
            fed = True
            feeder.start("feed", sync=False)
        # everything that arrived (a peer's sync_request, hellos, its own syncs)
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionRefusedError:     # ICMP port unreachable for an earlier send
                continue
            feeder.receive(data, addr)
        # paced sending: token bucket (rate) and the receiver's queue (watch_pid)
        if args.rate:
            tokens = min(burst, tokens + (now - last) * args.rate)
        last = now
        wait = 0.002
        while feeder.job is not None or pending is not None:
            if args.rate and tokens < 1:
                wait = min(wait, (1 - tokens) / args.rate)
                break
            if args.watch_pid and since_check >= QUEUE_CHECK_EVERY:
                since_check = 0
                queue = udp_queue(args.watch_pid, peer[1])
                if queue is not None and queue[0] > args.max_queue:
                    if throttled_since is None:
                        throttled_since = now
                    since_check = QUEUE_CHECK_EVERY      # look again before the next one
                    break
                if throttled_since is not None:
                    feeder.stats["throttled_ms"] += int((now - throttled_since) * 1000)
                    throttled_since = None
            if pending is None:
                pending = feeder.next_datagram()
                if pending is None:
                    break
            ok = send(pending[1])
            if ok is None:
                break
            feeder.sent(pending[0], pending[2])     # a lost one is still part of the pass
            feeder.stats["datagrams_lost"] += not ok
            pending = None
            since_check += 1
            tokens -= 1
            if clock() >= next_hello:
                break
        if now >= next_status or feeder.changed:
            write_status(args.status, feeder.status())
            next_status, feeder.changed = now + STATUS_EVERY, False
        busy = feeder.job is not None and (not args.rate or tokens >= 1) \
            and throttled_since is None
        timeout = 0 if busy else max(0.0, min(wait, next_hello - clock()))
        try:
            select.select([sock], [], [], timeout)
        except InterruptedError:
            pass
    status = feeder.status()
    write_status(args.status, status)
    return status


def add_key_arguments(p):
    """How a tool speaks as a node: the shared key, or its private key and the peer's
    public key."""
    p.add_argument("--key-file", required=True,
                   help="the shared ICC key file, or with --peer-key the node's private key")
    p.add_argument("--peer-key", metavar="BASE64", default=None,
                   help="the peer's public key: per-node keys")
    p.add_argument("--peer-node", default="A", help="the peer's node id (default A)")


def parser():
    p = argparse.ArgumentParser(prog="python -m ipop_bench.feeder",
                                description="A fake ICC peer owning many hosts (scale bench).")
    add_key_arguments(p)
    p.add_argument("--node", required=True, help="node id to speak as")
    p.add_argument("--bind", required=True, metavar="IP:PORT",
                   help="the node's ICC address (the peer checks the source address)")
    p.add_argument("--peer", required=True, metavar="IP:PORT", help="the controller to feed")
    p.add_argument("--count", type=int, required=True, help="hosts owned")
    p.add_argument("--first", type=int, default=0, help="index of the first host")
    p.add_argument("--rate", type=float, default=2000.0,
                   help="bindings datagrams per second at most (0: unpaced)")
    p.add_argument("--hello-interval", type=float, default=1.0)
    p.add_argument("--feed-after", type=float, default=1.0,
                   help="seconds of hellos before the feed starts")
    p.add_argument("--feed-on-signal", action="store_true",
                   help="feed only after SIGUSR1 (and --feed-after)")
    p.add_argument("--watch-pid", type=int,
                   help="a process in the peer's network namespace: pace on its socket queue")
    p.add_argument("--max-queue", type=int, default=4 << 20,
                   help="bytes queued at the peer's socket above which sending waits")
    p.add_argument("--status", help="JSON status file")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    status = run(args)
    json.dump({k: v for k, v in status.items() if k != "jobs"}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

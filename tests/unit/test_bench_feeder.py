"""The scale bench's fake peer against a plain UDP receiver on the loopback: what it sends
decodes, fits one datagram, feeds every host once, and answers syncs with sync_end."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from ipop_bench import feeder as F
from ipop_ryu.core import icc

KEY = b"0123456789abcdef0123456789abcdef"
CODEC = icc.Codec(KEY)


class Peer:
    """The controller's side: a UDP socket that records what the feeder sends."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.addr = self.sock.getsockname()
        self.raw, self.seq = [], 0

    def drain(self, until, timeout=10.0):
        """Receive until until(messages) holds; returns the decoded messages so far."""
        deadline = time.monotonic() + timeout
        while not until(self.messages()):
            assert time.monotonic() < deadline, f"timed out; got {self.types()[-5:]}"
            try:
                self.raw.append(self.sock.recv(65535))
            except socket.timeout:
                pass
        return self.messages()

    def messages(self):
        return [CODEC.decode(d) for d in self.raw]

    def types(self):
        return [m.type for m in self.messages()]

    def send(self, to, msg_type, **fields):
        self.seq += 1
        self.sock.sendto(CODEC.encode(msg_type, "A", self.seq, time.time(), **fields), to)


class Running:
    """The feeder's socket loop in a thread, bound to the loopback."""

    def __init__(self, peer, count, *extra):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = self.sock.getsockname()
        self.args = F.parser().parse_args(
            ["--key-file", "-", "--node", "B", "--bind", "127.0.0.1:0", "--peer",
             f"{peer.addr[0]}:{peer.addr[1]}", "--count", str(count), "--feed-after", "0",
             *extra])
        self.feeder = F.Feeder(CODEC, "B", F.entries(count), peer.addr[0])
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=F.run, args=(self.args, self.feeder, self.sock,
                                                           self.stopped.is_set), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()


def bindings_of(messages):
    return [(ip, mac) for m in messages if m.type == "bindings" for ip, mac, _ in m["bindings"]]


def test_entries_are_distinct_valid_and_away_from_the_lab_hosts():
    pairs = F.entries(70000)
    assert pairs[0] == ("10.64.0.0", "02:bb:00:00:00:00")
    assert pairs[65536 + 258] == ("10.65.1.2", "02:bb:00:01:01:02")
    assert len({ip for ip, _ in pairs}) == len({mac for _, mac in pairs}) == 70000
    assert not any(ip.startswith("10.0.") for ip, _ in pairs)
    good, bad = icc._valid_bindings([list(p) for p in pairs[-100:]])
    assert bad == 0 and len(good) == 100
    with pytest.raises(ValueError):
        F.entries(2, first=(1 << 22) - 1)


def test_the_feed_decodes_fits_one_datagram_and_sends_every_host_once():
    peer = Peer()
    with Running(peer, 3000, "--rate", "0") as run:
        messages = peer.drain(lambda ms: len(bindings_of(ms)) >= 3000)
        time.sleep(0.1)
    assert all(len(d) <= icc.MAX_DATAGRAM for d in peer.raw)
    assert messages[0].type == "hello" and len(messages[0]["boot"]) == 16
    assert int(messages[0]["boot"], 16) >= 0
    seqs = [m.seq for m in messages]
    assert seqs == sorted(set(seqs)), "sequence numbers strictly increase"
    assert seqs[0] >= int((time.time() - 60) * 1e6), "numbered from the clock in µs"
    assert all(abs(m.ts - time.time()) < 30 for m in messages)
    assert sorted(bindings_of(messages)) == sorted(F.entries(3000))
    batches = [m for m in messages if m.type == "bindings"]
    assert all(0 < len(m["bindings"]) <= icc.MAX_BINDINGS for m in batches)
    assert len(batches) == len(list(icc.bindings_batches(F.entries(3000)))) < 3000 / 20
    assert "sync_end" not in peer.types(), "a feed is not a sync"
    record = run.feeder.jobs[0]
    assert record["reason"] == "feed" and record["bindings"] == 3000
    assert record["first_binding"] <= record["finished"]


def test_a_sync_request_is_answered_with_every_host_then_sync_end():
    peer = Peer()
    with Running(peer, 500, "--feed-after", "3600") as run:     # no feed: only the sync
        peer.drain(lambda ms: ms)                               # its first hello: it listens
        peer.send(run.addr, "sync_request")
        messages = peer.drain(lambda ms: "sync_end" in [m.type for m in ms])
    sync = messages[[m.type for m in messages].index("bindings"):]
    assert sync[-1].type == "sync_end" and sync[-1]["count"] == 500
    assert sorted(bindings_of(sync)) == sorted(F.entries(500))
    assert run.feeder.stats["sync_requests"] == 1 and run.feeder.stats["syncs_answered"] == 1


def test_a_restarted_peer_gets_one_sync_for_its_new_hello_and_request():
    peer = Peer()
    with Running(peer, 200, "--feed-after", "3600") as run:
        peer.drain(lambda ms: ms)
        peer.send(run.addr, "hello", boot="aaaa")
        time.sleep(0.2)
        assert "bindings" not in peer.types(), "the first hello is no restart"
        peer.send(run.addr, "hello", boot="bbbb")        # restarted: hello, then its request
        peer.send(run.addr, "sync_request")
        peer.drain(lambda ms: "sync_end" in [m.type for m in ms])
        time.sleep(0.3)
        messages = peer.drain(lambda ms: True)
    assert [m["count"] for m in messages if m.type == "sync_end"] == [200]
    assert len(bindings_of(messages)) == 200
    assert run.feeder.stats["peer_restarts"] == 1
    assert run.feeder.stats["sync_requests_joined"] == 1


def test_junk_and_foreign_datagrams_are_counted_and_ignored():
    peer = Peer()
    with Running(peer, 10, "--feed-after", "3600") as run:
        peer.drain(lambda ms: ms)
        peer.sock.sendto(b"junk", run.addr)
        peer.sock.sendto(icc.Codec(b"another key, 16+ bytes").encode(
            "sync_request", "A", 1, time.time()), run.addr)
        time.sleep(0.2)
    assert run.feeder.dropped == {"truncated": 1, "bad_signature": 1}
    assert run.feeder.stats["sync_requests"] == 0


def test_sending_waits_while_the_receivers_queue_is_full():
    peer = Peer()
    limit = 64 << 10
    with Running(peer, 4000, "--rate", "0", "--watch-pid", str(os.getpid()),
                 "--max-queue", str(limit)):
        time.sleep(0.5)                 # nobody reads: the queue fills up to the limit
        queued = F.udp_queue(os.getpid(), peer.addr[1])
        messages = peer.drain(lambda ms: len(bindings_of(ms)) >= 4000)
    assert queued is not None and limit / 2 < queued[0] < 2 * limit, queued
    assert queued[1] == 0, "nothing dropped at the receiver"
    assert sorted(bindings_of(messages)) == sorted(F.entries(4000))


def test_the_module_stops_on_sigterm_and_writes_its_status(tmp_path):
    peer = Peer()
    key = tmp_path / "icc.key"
    key.write_bytes(KEY + b"\n")                # stripped, as the controller reads it
    status = tmp_path / "feeder.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipop_bench.feeder", "--key-file", str(key), "--node", "B",
         "--bind", "127.0.0.1:0", "--peer", f"{peer.addr[0]}:{peer.addr[1]}", "--count", "100",
         "--feed-after", "0.2", "--status", str(status)], stdout=subprocess.PIPE, text=True)
    try:
        peer.drain(lambda ms: len(bindings_of(ms)) >= 100)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    final = json.loads(status.read_text())
    assert final["bindings_sent"] == 100 and final["entries"] == 100
    assert final["jobs"][0]["finished"] is not None
    assert json.loads(out)["bindings_sent"] == 100

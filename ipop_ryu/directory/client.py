"""The directory client: one site's bindings published to etcd, everyone's watched.

Three threads (green ones under the controller's eventlet):

- watch: list the whole directory at one revision, hand the diff against what the View holds
  to the consumer, watch from the next revision; on any WatchLost (error, compaction, silence,
  a closed stream) or failed request: back off with jitter, relist, diff, watch again. So a
  consumer sees Put/Delete events and a Resynced after each relist, and never misses a delete.
- lease: this site's liveness key on a short lease, kept alive every ttl/3; a lease etcd no
  longer knows (expired while we were away) is granted anew and every key of ours rewritten.
  When the stream has carried nothing for `heartbeat` seconds (no event, no progress
  notification) it rewrites the liveness key, so that a live stream always carries something
  and silence means a dead one. Any traffic resets every site's timer, so an idle overlay
  writes about one beat per interval in all, not one per site.
- writer: pending writes, coalesced by key, flushed as one txn per batch (at most MAX_TXN_OPS
  operations, at most `max_txn_rate` txns a second).

Start and every reconnect wait a random part of `jitter` seconds first: sites that all lost
etcd at once must not all come back at once.
"""
import base64
import logging
import random
import threading
import time
from collections import Counter
from typing import Callable, Dict, Optional

from . import layout
from .session import DirectoryError, Session, b64
from .signing import Refused, Signer
from .view import Delete, Event, Put, View
from .watch import WatchLost, prefix_end, watch_prefix

log = logging.getLogger(__name__)
MAX_TXN_OPS = 128          # etcd's default --max-txn-ops
LOG_EVERY = 10.0           # s: one line per kind of trouble at most this often


class _RateLimitedLog:
    def __init__(self, every=LOG_EVERY):
        self.every, self._last = every, {}

    def warning(self, kind, message):
        now = time.monotonic()
        if now - self._last.get(kind, -self.every) >= self.every:
            self._last[kind] = now
            log.warning("directory: %s", message)


class DirectoryClient:
    def __init__(self, node: str, session: Session, signer: Signer, verify,
                 on_event: Callable[[Event], None], ttl: int = 10, heartbeat: float = 3.0,
                 silence: Optional[float] = None, jitter: float = 1.0,
                 max_txn_rate: float = 10.0, backoff=(0.2, 5.0)):
        if not layout.valid_node(node):
            raise ValueError(f"node id {node!r}: no '/' or blanks allowed in a directory node id")
        self.node, self.session, self.signer = node, session, signer
        self.on_event = on_event
        self.ttl, self.heartbeat, self.jitter = ttl, heartbeat, jitter
        self.silence = silence or 2.5 * heartbeat
        self.min_txn_gap = 1.0 / max_txn_rate
        self.backoff = backoff
        self.view = View(verify, on_refused=self._refused)
        self.counters = Counter()
        self._log = _RateLimitedLog()
        self._own: Dict[str, dict] = {}          # ip -> record we publish
        self._seq_seen: Dict[str, int] = {}      # ip -> highest seq of ours etcd showed us
        self._pending: Dict[str, Optional[bytes]] = {}   # path -> value (None: delete)
        self._lease_id = 0
        self._beat = 0
        self._beat_jitter = random.uniform(1.0, 1.2)
        self.last_traffic = time.monotonic()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads = []
        self.synced = threading.Event()

    # --- the consumer's side ------------------------------------------------------------

    def start(self):
        for target in (self._watch_loop, self._lease_loop, self._writer_loop):
            t = threading.Thread(target=target, name=f"directory-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, revoke=True):
        """Stop the threads; revoke the lease (this site's liveness key goes at once)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=self.silence + 5)
        if revoke and self._lease_id:
            try:
                self.session.call(lambda c: c.post(c.get_url("/kv/lease/revoke"),
                                                   json={"ID": self._lease_id}), "lease revoke")
            except DirectoryError:
                pass

    def publish(self, ip: str, mac: str, **extra):
        """Claim ip at mac. seq grows when the binding changes (EVPN MAC mobility style) and
        goes on from the highest of ours etcd holds, so a restart does not reuse one."""
        with self._cond:
            old = self._own.get(ip)
            if old and old["mac"] == mac and all(old.get(k) == v for k, v in extra.items()):
                return
            seq = max(old["seq"] if old else 0, self._seq_seen.get(ip, 0)) + 1
            self._own[ip] = dict(extra, ip=ip, mac=mac, seq=seq)
            self._queue(layout.host_key(self.node, ip), self._own[ip])

    def withdraw(self, ip: str):
        with self._cond:
            if self._own.pop(ip, None) is not None:
                self._pending[layout.host_key(self.node, ip)] = None
                self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    # --- internals ----------------------------------------------------------------------

    def _queue(self, path, record):
        self._pending[path] = self.signer.encode(path, record)
        self._cond.notify_all()

    def _refused(self, path, refused: Refused):
        self.counters[f"refused-{refused.kind}"] += 1
        self._log.warning(f"refused-{refused.kind}", f"ignored: {refused}")

    def _trouble(self, kind, message):
        self.counters[kind] += 1
        self._log.warning(kind, message)

    def _pause(self, attempt):
        low, high = self.backoff
        delay = min(high, low * 2 ** attempt) * random.uniform(0.5, 1.5)
        self._stop.wait(delay)

    def _emit(self, event):
        if event is None:
            return
        where = event.key if isinstance(event, (Put, Delete)) else None
        if isinstance(event, Put) and where.node == self.node and where.kind == "host":
            self._seq_seen[where.ip] = max(self._seq_seen.get(where.ip, 0), event.record["seq"])
        try:
            self.on_event(event)
        except Exception:        # the consumer's bug must not stop the directory
            log.exception("directory: the event consumer failed on %s", event)

    # watch ---------------------------------------------------------------------------------

    def _list(self):
        def op(c):
            return c.post(c.get_url("/kv/range"),
                          json={"key": b64(layout.ROOT), "range_end": b64(prefix_end(layout.ROOT))})
        result = self.session.call(op, "list")
        revision = int(result["header"]["revision"])
        kvs = [(base64.b64decode(kv["key"]).decode(), base64.b64decode(kv.get("value", "")))
               for kv in result.get("kvs", ())]
        return kvs, revision

    def _watch_loop(self):
        self._stop.wait(random.uniform(0, self.jitter))
        reason, attempt = "start", 0
        while not self._stop.is_set():
            try:
                started = time.monotonic()
                kvs, revision = self._list()
                for event in self.view.resync(kvs, revision, reason):
                    self._emit(event)
                self.counters["relists"] += 1
                self.last_resync = (reason, time.monotonic() - started)
                self.synced.set()
                attempt = 0
                self.last_traffic = time.monotonic()
                for revision, events in watch_prefix(self.session, layout.ROOT, revision + 1,
                                                     self.silence):
                    self.last_traffic = time.monotonic()
                    for kind, path, raw, mod in events:
                        self._emit(self.view.delete(path, mod) if kind == "DELETE"
                                   else self.view.put(path, raw, mod))
                    if self._stop.is_set():
                        return
            except WatchLost as lost:
                reason = lost.reason
                self._trouble("watch-lost", f"watch on {lost.endpoint}: {lost.reason}; relisting")
                if "auth token" in lost.reason:
                    self._safe(lambda: self.session.renew(lost.token))
                elif "compacted" not in lost.reason:
                    self.session.failover(lost.endpoint)
                if lost.silent:
                    self.counters["dead-watches"] += 1
            except DirectoryError as e:
                reason = "list failed"            # the detail goes to the log
                self._trouble("list-failed", str(e))
                attempt += 1
            except Exception as e:    # noqa: BLE001 - an answer we did not expect: relist
                reason = f"unexpected {type(e).__name__}: {e}"
                self._trouble("watch-error", reason)
                attempt += 1
            self.synced.clear()
            self._pause(attempt)

    def _safe(self, fn):
        try:
            fn()
        except Exception as e:          # noqa: BLE001 - reported, retried by the loop
            self._trouble("auth-failed", str(e))

    # lease and heartbeat -------------------------------------------------------------------

    def _lease_loop(self):
        self._stop.wait(random.uniform(0, self.jitter))
        next_keepalive, attempt = 0.0, 0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if not self._lease_id:
                    self._grant()
                    next_keepalive = now + self.ttl / 3
                elif now >= next_keepalive:
                    self._keepalive()
                    next_keepalive = now + self.ttl / 3
                if now >= self._beat_due():
                    self._beat_once()
                attempt = 0
            except Exception as e:    # noqa: BLE001 - DirectoryError, or an answer unexpected
                self._trouble("lease-failed", str(e))
                attempt += 1
                self._pause(attempt)
                continue
            wake = min(next_keepalive, self._beat_due())
            self._stop.wait(max(0.05, min(wake - time.monotonic(), self.ttl / 3)))

    def _grant(self):
        result = self.session.call(lambda c: c.post(c.get_url("/lease/grant"),
                                                    json={"TTL": self.ttl, "ID": 0}), "lease grant")
        with self._cond:
            self._lease_id = int(result["ID"])
            self.counters["lease-grants"] += 1
            # everything of ours again: etcd may have lost it, or deleted it with the lease
            self._pending[layout.alive_key(self.node)] = self._alive_value()
            for ip, record in self._own.items():
                self._queue(layout.host_key(self.node, ip), record)
            self._cond.notify_all()

    def _keepalive(self):
        result = self.session.call(lambda c: c.post(c.get_url("/lease/keepalive"),
                                                    json={"ID": self._lease_id}), "keepalive")
        if int(result.get("result", {}).get("TTL", -1)) <= 0:
            self._trouble("lease-lost", f"lease {self._lease_id:x} expired; granting a new one")
            self._lease_id = 0
        else:
            self.counters["keepalives"] += 1

    def _beat_due(self):
        """When a quiet stream calls for a beat; the jitter spreads the sites' timers."""
        return self.last_traffic + self.heartbeat * self._beat_jitter

    def _alive_value(self):
        return self.signer.encode(layout.alive_key(self.node), {"beat": self._beat})

    def _beat_once(self):
        self._beat += 1
        self._beat_jitter = random.uniform(1.0, 1.2)
        self.counters["beats"] += 1
        self.last_traffic = time.monotonic()      # one beat per quiet interval, not a storm
        with self._cond:
            self._pending[layout.alive_key(self.node)] = self._alive_value()
            self._cond.notify_all()

    # writer --------------------------------------------------------------------------------

    def _writer_loop(self):
        self._stop.wait(random.uniform(0, self.jitter))
        attempt, last_flush = 0, 0.0
        while not self._stop.is_set():
            with self._cond:
                while not (self._pending and self._lease_id) and not self._stop.is_set():
                    self._cond.wait(1.0)
                if self._stop.is_set():
                    return
                batch = dict(list(self._pending.items())[:MAX_TXN_OPS])
                lease = self._lease_id
            gap = last_flush + self.min_txn_gap - time.monotonic()
            if gap > 0:
                self._stop.wait(gap)
            try:
                self._txn(batch, lease)
                last_flush, attempt = time.monotonic(), 0
                with self._cond:
                    for path, value in batch.items():
                        if self._pending.get(path, b"?") == value:
                            del self._pending[path]
            except Exception as e:    # noqa: BLE001 - DirectoryError, or an answer unexpected
                if "requested lease not found" in str(e):
                    self._lease_id = 0       # the lease loop grants a new one
                self._trouble("write-failed", str(e))
                attempt += 1
                self._pause(attempt)

    def _txn(self, batch, lease):
        ops = []
        for path, value in batch.items():
            if value is None:
                ops.append({"request_delete_range": {"key": b64(path)}})
            else:
                put = {"key": b64(path), "value": b64(value)}
                if path == layout.alive_key(self.node):
                    put["lease"] = lease
                ops.append({"request_put": put})
        self.session.call(lambda c: c.transaction({"compare": [], "success": ops,
                                                   "failure": []}), "write")
        self.counters["txns"] += 1
        self.counters["writes"] += len(ops)


"""A watch stream read response by response, with nothing dropped.

etcd3gw's own Watcher passes on events only: it drops `canceled` and `compact_revision`
answers and progress notifications without a word and ends its thread silently on an error,
so a watch it holds can be dead with nobody told. This reader posts the same request on the
session's HTTP connection and turns every way a watch ends into WatchLost, with the reason:

- `canceled` or `compact_revision` from etcd (history compacted past our revision),
- an error object (with `hasleader`, a member that lost quorum cancels at once: `no leader`),
- the stream closing or failing (a member killed, a connection reset),
- silence: nothing, not even a progress notification, for `silence` seconds (a hung member,
  a dead path): requests' read timeout.
"""
import base64
import json
from typing import Iterator, Tuple

import requests

from .session import CONNECT_TIMEOUT, Session, b64

# grpc-gateway passes Grpc-Metadata-* headers on as gRPC metadata: this one makes the member
# cancel the watch when it has no leader, instead of leaving it open and silent.
REQUIRE_LEADER = {"Grpc-Metadata-hasleader": "true"}


class WatchLost(Exception):
    """silent: the member stopped answering (the dead-watch detector fired)."""

    def __init__(self, reason, endpoint="", silent=False):
        super().__init__(reason)
        self.reason, self.endpoint, self.silent = reason, endpoint, silent
        self.token = None        # the token a refused watch carried (to renew it once)


def prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def watch_prefix(session: Session, prefix: str, start_revision: int,
                 silence: float) -> Iterator[Tuple[int, list]]:
    """Yields (revision, events) for each answer, from start_revision on; events as etcd sends
    them (key and value decoded to str and bytes). Ends only by WatchLost."""
    endpoint, token = session.current, session.token()
    url = session.client().get_url("/watch")
    request = {"create_request": {"key": b64(prefix), "range_end": b64(prefix_end(prefix)),
                                  "start_revision": start_revision, "progress_notify": True}}
    try:
        resp = session.http.post(url, json=request, stream=True, headers=REQUIRE_LEADER,
                                 timeout=(CONNECT_TIMEOUT, silence))
    except requests.Timeout:
        raise WatchLost(f"silent: no answer to the watch request in {silence}s", endpoint,
                        silent=True) from None
    except requests.RequestException as e:
        raise WatchLost(f"connect: {type(e).__name__}", endpoint) from None
    try:
        if resp.status_code != 200:
            lost = WatchLost(f"HTTP {resp.status_code}: {resp.text.strip()[:200]}", endpoint)
            lost.token = token
            raise lost
        for answer in _answers(resp, endpoint, silence):
            yield answer
        raise WatchLost("stream closed", endpoint)
    finally:
        resp.close()


def _answers(resp, endpoint, silence):
    buffer = b""
    try:
        for chunk in resp.iter_content(chunk_size=None):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    yield _answer(json.loads(line), endpoint)
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
        if "timed out" in str(e).lower():
            raise WatchLost(f"silent for {silence}s", endpoint, silent=True) from None
        raise WatchLost(f"stream failed: {type(e).__name__}", endpoint) from None


def _answer(message, endpoint):
    if "error" in message:
        error = message["error"]
        raise WatchLost(f"error: {error.get('message', error)}", endpoint)
    result = message.get("result", {})
    if result.get("compact_revision") and int(result["compact_revision"]):
        raise WatchLost(f"compacted (at {result['compact_revision']})", endpoint)
    if result.get("canceled"):
        raise WatchLost(f"canceled: {result.get('cancel_reason', '')}", endpoint)
    revision = int(result.get("header", {}).get("revision", 0))
    events = []
    for event in result.get("events", ()):
        kv = event["kv"]
        events.append((event.get("type", "PUT"), base64.b64decode(kv["key"]).decode(),
                       base64.b64decode(kv.get("value", "")), int(kv.get("mod_revision", 0))))
    return revision, events

"""The scale bench's programs inside A's namespace: `python -m ipop_bench.scale.agents CMD`.

    watch   REST stats and the proxy-ARP flow count polled, one JSON line per sample
    rest    each path timed over fresh connections (as a client would)
"""
import argparse
import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

from ipop_ryu.core import pipeline

from ..agents import answer

PROXY_ARP = f"cookie={pipeline.cookie('proxy_arp'):#x}/0xffffffff00000000"


def _stats_sample(doc):
    """What the watcher keeps of one /ipop/v1/stats answer."""
    icc = doc.get("icc", {})
    return {"remote": doc["table"]["remote"], "entries": doc["table"]["entries"],
            "uptime": doc.get("uptime"),
            "graceful": doc.get("graceful_restart", {}).get("active"),
            "peers_up": doc.get("peers", {}).get("up"),
            "went_down": doc.get("peers", {}).get("went_down"),
            "icc_dropped": sum(icc.get("dropped", {}).values()),
            "bindings_received": icc.get("received", {}).get("bindings"),
            "flow_mods": doc.get("flows", {}).get("flow_mods")}


def watch(args):
    """Poll REST stats (one kept-alive connection, reopened after errors) and the proxy-ARP
    flow count (dump-aggregate) in two threads, one JSON line per sample to --out, until
    SIGTERM or --duration."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lock = threading.Lock()
    url = urllib.parse.urlsplit(args.url)
    out = open(args.out, "a", buffering=1)

    def write(record):
        with lock:
            out.write(json.dumps(record) + "\n")

    def rest():
        conn = None
        while not stop.is_set():
            t0 = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=2)
                conn.request("GET", "/ipop/v1/stats")
                response = conn.getresponse()
                doc = json.loads(response.read())
                write({"k": "rest", "t": time.time(), "d": time.time() - t0,
                       **_stats_sample(doc)})
            except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
                write({"k": "rest", "t": time.time(), "error": type(exc).__name__})
                if conn is not None:
                    conn.close()
                conn = None
            stop.wait(max(0.0, t0 + args.rest_interval - time.time()))

    def flows():
        while not stop.is_set():
            t0 = time.time()
            proc = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-aggregate",
                                   args.bridge, PROXY_ARP], capture_output=True, text=True)
            found = re.search(r"flow_count=(\d+)", proc.stdout)
            write({"k": "flows", "t": time.time(), "d": time.time() - t0,
                   "count": int(found.group(1)) if found else None})
            stop.wait(max(0.0, t0 + args.flow_interval - time.time()))

    threads = [threading.Thread(target=fn, daemon=True) for fn in (rest, flows)]
    for t in threads:
        t.start()
    stop.wait(args.duration)
    stop.set()
    for t in threads:
        t.join(5)
    out.close()
    return {"stopped": time.time()}


def rest_timing(args):
    """Each path --reps times, a fresh connection each (as a client would): wall time from
    the request to the last byte of the body, in ms. The body of the first answer is
    described (rows and next of a page) so that the caller can check what it timed."""
    out = {}
    for path in args.paths:
        times, size, shape, errors = [], None, {}, []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(args.url + path, timeout=10) as response:
                    body = response.read()
            except OSError as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            times.append((time.perf_counter() - t0) * 1000)
            if size is None:
                size = len(body)
                if path.startswith("/ipop/"):
                    doc = json.loads(body)
                    if isinstance(doc, dict) and "entries" in doc:
                        shape = {"rows": len(doc["entries"]), "next": doc["next"],
                                 "total": doc.get("total")}
                    elif isinstance(doc, list):          # a controller from before paging
                        shape = {"rows": len(doc), "next": None, "total": len(doc)}
        out[path] = {"ms": [round(t, 3) for t in times], "bytes": size, **shape,
                     **({"errors": errors} if errors else {})}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ipop_bench.scale.agents")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("watch")
    p.add_argument("--url", required=True)
    p.add_argument("--bridge", required=True, help="ovs-ofctl target, e.g. unix:.../br0.mgmt")
    p.add_argument("--out", required=True)
    p.add_argument("--rest-interval", type=float, default=0.02)
    p.add_argument("--flow-interval", type=float, default=0.1)
    p.add_argument("--duration", type=float, default=3600.0)
    p.set_defaults(func=watch)
    p = sub.add_parser("rest")
    p.add_argument("--url", required=True)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=rest_timing)
    return answer(parser, argv)


if __name__ == "__main__":
    sys.exit(main())

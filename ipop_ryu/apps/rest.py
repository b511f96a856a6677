"""REST status API and Prometheus metrics, served by Ryu's WSGI server (--wsapi-host/port).

    GET /ipop/v1/arp?limit=N&after=IP   the learned table a page at a time, by address (IPv4,
                                        then IPv6; `/ipop/v1/neighbours` is the same):
                                        {"entries": [...], "next": IP or null, "total": N}
    GET /ipop/v1/peers   peers and their state
    GET /ipop/v1/stats   counters
    POST /ipop/v1/reload re-read the configuration and peers file, as SIGHUP does: {"applied":
                         true, "added", "removed", "changed": [peers], "needs_restart":
                         [options]}, or 400 {"applied": false, "error": the one-line reason}
    GET /metrics         Prometheus text format

Answers are built inside the controller's event loop (green threads), so the table is listed
a page at a time, and a page of more than 1000 rows is built 1000 at a time, yielding between.
"""
import json

from ipop_ryu.compat.framework import ControllerBase, Response, hub, route

from ipop_ryu.core import metrics, status

APP_KEY = "ipop_switchmode_app"
_COMPACT = json.JSONEncoder(separators=(",", ":"))   # a page of 1000 rows: about 160 kB


def _json(data, status_code=200, compact=False):
    body = _COMPACT.encode(data) if compact else json.dumps(data, indent=1, sort_keys=True)
    return Response(status=status_code, content_type="application/json", charset="utf-8",
                    body=body.encode() + b"\n")


def _let_others_run():
    hub.sleep(0)      # the switch and ICC handlers are green threads of this same loop


class StatusController(ControllerBase):
    def __init__(self, req, link, data, **config):
        super().__init__(req, link, data, **config)
        self.app = data[APP_KEY]

    @route("ipop", "/ipop/v1/neighbours", methods=["GET"])
    def neighbours(self, req, **_):
        return self.arp(req)

    @route("ipop", "/ipop/v1/arp", methods=["GET"])
    def arp(self, req, **_):
        try:
            after, limit = status.page_args(req.GET)
        except status.BadParameter as exc:
            return _json({"error": str(exc), "parameter": exc.name}, 400, compact=True)
        page = status.arp_page(self.app.core, after, limit, pause=_let_others_run)
        _let_others_run()     # encoding is a block of its own (10,000 rows: about 17 ms)
        return _json(page, compact=True)

    @route("ipop", "/ipop/v1/peers", methods=["GET"])
    def peers(self, req, **_):
        return _json(status.peers(self.app.core))

    @route("ipop", "/ipop/v1/stats", methods=["GET"])
    def stats(self, req, **_):
        return _json(status.stats(self.app.core))

    @route("ipop", "/ipop/v1/reload", methods=["POST"])
    def reload(self, req, **_):
        """Only re-reads the files the controller was started with: nothing in the request
        body is used."""
        answer = self.app.reload(asked_by="REST")
        return _json(answer, 200 if answer["applied"] else 400)

    @route("ipop", "/metrics", methods=["GET"])
    def metrics(self, req, **_):
        body = metrics.exposition(self.app.metrics_registry)
        return Response(body=body, headerlist=[("Content-Type", metrics.CONTENT_TYPE)])

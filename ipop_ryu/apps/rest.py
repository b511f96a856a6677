"""REST status API and Prometheus metrics, served by Ryu's WSGI server (--wsapi-host/port).

    GET /ipop/v1/arp     learned table      GET /ipop/v1/peers   peers and their state
    GET /ipop/v1/stats   counters           GET /metrics         Prometheus text format
"""
import json

from ryu.app.wsgi import ControllerBase, Response, route

from ipop_ryu.core import metrics, status

APP_KEY = "ipop_switchmode_app"


def _json(data):
    return Response(content_type="application/json", charset="utf-8",
                    body=json.dumps(data, indent=1, sort_keys=True).encode() + b"\n")


class StatusController(ControllerBase):
    def __init__(self, req, link, data, **config):
        super().__init__(req, link, data, **config)
        self.app = data[APP_KEY]

    @route("ipop", "/ipop/v1/arp", methods=["GET"])
    def arp(self, req, **_):
        return _json(status.arp_table(self.app.core))

    @route("ipop", "/ipop/v1/peers", methods=["GET"])
    def peers(self, req, **_):
        return _json(status.peers(self.app.core))

    @route("ipop", "/ipop/v1/stats", methods=["GET"])
    def stats(self, req, **_):
        return _json(status.stats(self.app.core))

    @route("ipop", "/metrics", methods=["GET"])
    def metrics(self, req, **_):
        body = metrics.exposition(self.app.metrics_registry)
        return Response(body=body, headerlist=[("Content-Type", metrics.CONTENT_TYPE)])

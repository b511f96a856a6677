"""Status at scale: the learned table listed a page at a time, counts without walking it, the
REST shell's parameters and the `ipop-ryu arp` pager."""
import json
import urllib.parse
import warnings

import pytest
from webob import Request

from ipop_ryu.cli import main
from ipop_ryu.cli import status as cli_status
from ipop_ryu.core import metrics, status
from ipop_ryu.core.addr import ipv4_int
from ipop_ryu.core.switchmode import SwitchMode
from ipop_ryu.core.neighbour_table import NeighbourTable

from .helpers import Clock, mac_of, options

with warnings.catch_warnings():   # Ryu's hub imports eventlet, which warns (pytest.ini's filter
    warnings.simplefilter("ignore")   # misses it: the message starts with a newline)
    from ipop_ryu.apps import rest

PORTS = {1: "h3", 2: "h5", 10: "ipop-B", 11: "ipop-C", 0xFFFFFFFE: "br0"}
N = 3000


def ip_of(n):
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def filled(n=N, **kw):
    """A core of site A (peers B and C) whose table holds n entries: every tenth local (on h3
    or h5), the others split between B and C, learned in no particular address order."""
    clock = Clock()
    core = SwitchMode(options("A", ["B", "C"], arp_timeout=300, **kw), clock=clock,
                      wallclock=clock)
    core.switch_connected(PORTS)
    for k in range(n):
        i = (k * 7919) % n + 1          # a permutation of 1..n: learned out of order
        node = "A" if i % 10 == 0 else "BC"[i % 2]
        core.table.learn(ip_of(i), mac_of(ip_of(i)), node, 1 + i % 2 if node == "A" else None,
                         clock())
    return core


def all_pages(core, limit):
    rows, after, pages = [], None, 0
    while True:
        page = status.arp_page(core, after, limit)
        rows += page["entries"]
        pages += 1
        if page["next"] is None:
            return rows, pages
        after = page["next"]


# ---- pages -----------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", [1000, 7, N, N + 1])
def test_pages_cover_the_table_once_in_address_order(limit):
    core = filled()
    rows, pages = all_pages(core, limit)
    assert [r["ip"] for r in rows] == [ip_of(i) for i in range(1, N + 1)]
    assert pages == max(1, -(-N // limit))
    assert status.arp_page(core, limit=limit)["total"] == N


def test_a_row_says_what_it_said_before_paging():
    core = filled(20)
    core.clock.now += 10
    rows = {r["ip"]: r for r in status.arp_page(core)["entries"]}
    assert rows[ip_of(10)] == {
        "ip": ip_of(10), "family": "ipv4", "mac": mac_of(ip_of(10)), "node": "A", "local": True, "port": "h3",
        "age": 10.0, "expires_in": 290.0, "proxy_flow": False, "answered_by_flow": None}
    remote = rows[ip_of(7)]
    assert (remote["node"], remote["local"], remote["port"], remote["proxy_flow"],
            remote["answered_by_flow"]) == ("C", False, None, True, None)


def test_a_page_after_a_change_and_after_an_address_not_in_the_table():
    core = filled(100)
    first = status.arp_page(core, limit=10)
    # a move, a removal and a new entry: the order is rebuilt before the next page
    core.table.learn("10.0.0.5", mac_of("10.0.0.5"), "B", None, core.clock())
    core.table.remove(ip_of(11))
    core.table.learn("10.0.0.105", mac_of("10.0.0.105"), "C", None, core.clock())
    page = status.arp_page(core, first["next"], 10)
    assert [r["ip"] for r in page["entries"]] == [ip_of(i) for i in range(12, 22)]
    assert status.arp_page(core, "10.0.0.200", 10) == {"entries": [], "next": None,
                                                       "total": 100}
    assert [r["ip"] for r in status.arp_page(core, "9.255.255.255", 1)["entries"]] == [ip_of(1)]


def test_expired_entries_are_not_listed():
    core = filled(50)
    core.clock.now += 200
    core.table.learn(ip_of(3), mac_of(ip_of(3)), "B", None, core.clock())       # refreshed
    core.clock.now += 150                                                         # the rest: gone
    page = status.arp_page(core, limit=5)
    assert ([r["ip"] for r in page["entries"]], page["next"]) == ([ip_of(3)], None)


# ---- no walking -------------------------------------------------------------------------------
class NoWalk(NeighbourTable):
    """The table, with every whole-table walk forbidden and the pages asked for recorded."""
    pages: list

    def __iter__(self):
        raise AssertionError("walked the table")

    def entries(self, now):
        raise AssertionError("copied the whole table")

    def of_node(self, node, now):
        raise AssertionError("listed a node's entries")

    def page(self, now, after=None, limit=1000):
        self.pages.append(limit)
        return super().page(now, after, limit)


def no_walk(core) -> list:
    """Forbid walks of the core's table; returns the list of the page sizes asked for."""
    core.table.__class__ = NoWalk
    core.table.pages = []
    return core.table.pages


def test_counts_come_from_what_is_kept_not_from_the_table():
    core = filled()
    pages = no_walk(core)
    s = status.stats(core)
    assert (s["table"]["entries"], s["table"]["local"], s["table"]["remote"]) == (N, 300, 2700)
    assert s["flows"]["proxy_arp"] == core.responder_count()
    assert {p["name"]: p["entries"] for p in status.peers(core)} == {"B": 1200, "C": 1500}
    assert b"ipop_arp_entries" in metrics.exposition(metrics.registry_for(core))
    assert pages == []
    assert len(status.arp_page(core, limit=25)["entries"]) == 25
    assert pages == [25]


def test_a_large_page_is_built_in_slices_with_a_pause_between():
    core, paused = filled(), []
    pages = no_walk(core)
    whole = status.arp_page(core, ip_of(10), 2500)
    assert pages == [2500]
    sliced = status.arp_page(core, ip_of(10), 2500,
                             pause=lambda: paused.append(len(pages)))
    assert sliced == whole and sliced["next"] == ip_of(2510)
    assert pages == [2500, 1000, 1000, 500] and paused == [2, 3]
    assert status.arp_page(core, ip_of(2990), 2500, pause=lambda: paused.append(0)) == {
        "entries": status.arp_page(core, ip_of(2990), 10)["entries"], "next": None,
        "total": N}
    assert paused == [2, 3]


def test_responders_without_the_core_s_own_count():
    class Bare:                 # a core from before responder_count()
        def __init__(self, icc):
            self.table, self.options = filled(30).table, options(icc=icc)
    assert status.responder_count(Bare(True)) == 27
    assert status.responder_count(Bare(False)) == 30


def test_new_counters_and_the_graceful_restart_are_reported():
    core = filled(10)
    for name, value in [("icc_bindings_invalid", 3), ("flows_audits", 4), ("flows_repaired", 5),
                        ("flows_removed_stale", 6), ("sync_entries_sent", 7),
                        ("sync_entries_received", 8), ("sync_ends_received", 9),
                        ("graceful_restart_stale_deleted", 2)]:
        core.stats[name] = value
    s = status.stats(core)
    assert (s["icc"]["bindings_invalid"], s["icc"]["not_allowed"]) == (3, 0)
    assert s["flows"] == {"flow_mods": core.stats["flow_mods"], "proxy_arp": 0, "proxy_nd": 0,
                          "audits": 4, "repaired": 5, "removed_stale": 6, "reinstalled": 0,
                          "stale_held": 0, "audits_abandoned": 0}
    assert s["sync"] == {"entries_sent": 7, "entries_received": 8, "ends_received": 9,
                         "started": 0, "incomplete": 0}
    assert s["graceful_restart"] == {"active": True, "waiting_for": ["B", "C"],
                                     "stale_deleted": 2}
    assert set(s["icc"]["sent"]) >= {"bindings", "sync_request", "sync_end"}
    text = metrics.exposition(metrics.registry_for(core)).decode()
    for line in ['ipop_icc_bindings_invalid_total{node="A"} 3.0',
                 'ipop_flows_audits_total{node="A"} 4.0',
                 'ipop_flows_repaired_total{node="A"} 5.0',
                 'ipop_sync_entries_total{direction="received",node="A"} 8.0',
                 'ipop_graceful_restart_active{node="A"} 1.0',
                 'ipop_peer_up{node="A",peer="C"} 0.0',
                 'ipop_icc_sent_total{node="A",type="sync_end"} 0.0']:
        assert line in text
    rendered = cli_status.render_stats(s)
    assert "sync                7 entries sent, 8 received; 9 ends received" in rendered
    assert "graceful restart    deletions held, waiting for B, C" in rendered
    assert "audits 4, repaired 5, stale removed 6" in rendered
    assert "; bindings invalid 3" in rendered


# ---- parameters --------------------------------------------------------------------------------
def test_page_parameters():
    assert status.page_args({}) == (None, 1000)
    assert status.page_args({"limit": "1", "after": "10.0.0.1"}) == ("10.0.0.1", 1)
    assert status.page_args({"limit": "10000", "other": "x"}) == (None, 10000)


@pytest.mark.parametrize("params, name", [
    ({"limit": "0"}, "limit"), ({"limit": "10001"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"limit": ""}, "limit"), ({"limit": " 5"}, "limit"), ({"limit": "+5"}, "limit"),
    ({"limit": "1_0"}, "limit"), ({"limit": "\u0665"}, "limit"), ({"limit": "-1"}, "limit"),
    ({"after": ""}, "after"), ({"after": "10.1"}, "after"), ({"after": "10.0.0.256"}, "after"),
    ({"after": "FE80::1"}, "after"), ({"after": "fe80::01"}, "after"), ({"after": "h3"}, "after"),
])
def test_bad_page_parameters_are_named(params, name):
    with pytest.raises(status.BadParameter) as caught:
        status.page_args(params)
    assert caught.value.name == name and str(caught.value).startswith(name + ": ")


# ---- the REST shell ---------------------------------------------------------------------------
class App:
    def __init__(self, core):
        self.core, self.metrics_registry = core, metrics.registry_for(core)


def get(core, path):
    request = Request.blank(path)
    controller = rest.StatusController(request, None, {rest.APP_KEY: App(core)})
    route = {"/ipop/v1/arp": controller.arp, "/ipop/v1/stats": controller.stats}
    return route[request.path](request)


def test_rest_pages_compactly_and_refuses_bad_parameters():
    core = filled(30)
    answer = get(core, "/ipop/v1/arp?limit=2&after=" + ip_of(4))
    assert answer.status_code == 200 and answer.content_type == "application/json"
    assert b" " not in answer.body and answer.body.endswith(b"}\n")
    page = json.loads(answer.body)
    assert ([r["ip"] for r in page["entries"]], page["next"], page["total"]) == (
        [ip_of(5), ip_of(6)], ip_of(6), 30)
    answer = get(core, "/ipop/v1/arp?limit=100000")
    assert answer.status_code == 400
    assert answer.body.count(b"\n") == 1 and json.loads(answer.body)["parameter"] == "limit"
    assert json.loads(get(core, "/ipop/v1/arp?after=x").body)["parameter"] == "after"
    assert b'\n "flows": {' in get(core, "/ipop/v1/stats").body       # still readable


# ---- `ipop-ryu arp` ---------------------------------------------------------------------------
def serve(core, asked):
    """get(path) as the REST API answers it, recording each request's parameters."""
    def get_path(path):
        url = urllib.parse.urlsplit(path)
        assert url.path == "/ipop/v1/arp"
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        asked.append(params)
        return status.arp_page(core, *status.page_args(params))
    return get_path


def test_the_pager_follows_next_to_the_end_or_the_maximum():
    core, asked = filled(), []
    rows = cli_status.arp_rows(serve(core, asked), 1000)
    assert [r["ip"] for r in rows] == [ip_of(i) for i in range(1, N + 1)]
    assert asked == [{"limit": "1000"}, {"limit": "1000", "after": ip_of(1000)},
                     {"limit": "1000", "after": ip_of(2000)}]
    asked.clear()
    rows = cli_status.arp_rows(serve(core, asked), 400, most=1000)
    assert len(rows) == 1000 and [a["limit"] for a in asked] == ["400", "400", "200"]


def test_the_pager_stops_on_a_page_that_does_not_move():
    same = {"entries": [{"ip": "10.0.0.1"}], "next": "10.0.0.1", "total": 2}
    with pytest.raises(cli_status.CommandError, match="repeats the page after 10.0.0.1"):
        cli_status.arp_rows(lambda path: same)


def test_ipop_ryu_arp_prints_every_page(monkeypatch, capsys):
    core, asked = filled(25), []
    monkeypatch.setattr(cli_status, "fetch", lambda controller, path: serve(core, asked)(path))
    assert main(["arp", "--limit", "10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 26 and len(asked) == 3 and lines[0].split()[-2:] == ["PROXY", "FLOW"]
    assert lines[1].startswith(ip_of(1) + " ") and lines[1].endswith(" yes")
    assert lines[10].startswith(ip_of(10) + " ") and "local port h3" in lines[10]
    assert lines[10].endswith(" no")
    assert main(["arp", "--json", "--max", "12"]) == 0
    assert [r["ip"] for r in json.loads(capsys.readouterr().out)] == [
        ip_of(i) for i in range(1, 13)]


@pytest.mark.parametrize("argv", [["--limit", "0"], ["--limit", "10001"], ["--max", "0"],
                                  ["--limit", "x"]])
def test_ipop_ryu_arp_refuses_bad_numbers(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["arp", *argv])
    assert caught.value.code == 2 and "must be a whole number" in capsys.readouterr().err


def test_every_address_sorts_by_its_value():
    core = filled(0)
    for ip in ["10.0.0.10", "9.0.0.1", "10.0.0.9", "192.168.1.1", "10.0.1.0"]:
        core.table.learn(ip, mac_of(ip), "B", None, core.clock())
    rows, _ = all_pages(core, 2)
    assert [r["ip"] for r in rows] == sorted((r["ip"] for r in rows), key=ipv4_int)

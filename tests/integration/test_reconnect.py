"""A restarted controller gets its bridge back, and puts the bridge's flows back. Who dials
whom decides what the bridge waits for: the ipop app dials the bridge's listener (punix:, the
lab's and `bridge setup`'s default), so the bridge never backs off; a bridge that dials its
controller (tcp:, as simple_switch_13 runs) retries every max_backoff, 1 s (OVS's minimum; by
default it backs off to 8 s). How soon the bridge is back is measured by the bench
(`bridge_reconnect_s`), not here."""
import configparser
import os
import re
import stat

import pytest

from ipop_ryu.host.ovsctl import INACTIVITY_PROBE_MS, MAX_BACKOFF_MS
from ipop_ryu.lab.lab import CONTROLLER_TARGET, PIPELINE_READY, PUNT_TABLE
from ipop_ryu.lab.ovs import connection_log
from ipop_ryu.lab.topology import seed_two_sites
from ipop_ryu.lab.traffic import ping

from .util import controller_alive, needs_simple_switch_13, wait_for

# failed tries the dialing bridge makes while its controller is away: past OVS's default
# back-off, which would log "waiting 2 seconds" at the 2nd and "waiting 4 seconds" at the 3rd
TRIES_AWAY = 4
BACKING_OFF = re.compile(r"waiting (\d+) seconds before reconnect")


def controller_record(site, column):
    return site.vsctl("get", "controller", site.bridge, column).strip().strip('"')


def assert_who_dials_whom(site, controller):
    target = controller_record(site, "target")
    assert target == site.controller_target
    if controller == "ipop":              # the bridge listens, the app dials it
        listener = target.removeprefix("punix:")
        assert target.startswith("punix:") and stat.S_ISSOCK(os.stat(listener).st_mode)
        conf = configparser.ConfigParser()
        conf.read(site.config_path)
        assert conf["ipop"]["switch_address"] == "unix:" + listener
        assert site.dialed
    else:                                 # the bridge dials the controller's listener
        assert target == CONTROLLER_TARGET and not site.dialed


def bridge_log(site, since):
    with open(connection_log(site.rundir)) as log:       # ovs-vswitchd's own log
        log.seek(since)
        return [line for line in log.read().splitlines() if site.controller_target in line]


def pipeline_installed(site, controller):
    if controller == "ipop":
        return PIPELINE_READY in site.ofctl("dump-flows", site.bridge, f"table={PUNT_TABLE}")
    # simple_switch_13's table-miss flow, sent on every features reply
    return "actions=CONTROLLER:65535" in site.ofctl("dump-flows", site.bridge, "table=0")


@pytest.mark.parametrize("controller", [
    "ipop", pytest.param("simple_switch_13", marks=needs_simple_switch_13)])
def test_restarted_controller_has_its_bridge_back(lab_factory, controller):
    lab = lab_factory(seed_two_sites(controller=controller))
    a = lab.sites["A"]
    assert_who_dials_whom(a, controller)
    assert [controller_record(a, "max_backoff"), controller_record(a, "inactivity_probe")] \
        == [str(MAX_BACKOFF_MS), str(INACTIVITY_PROBE_MS)]
    mark = os.path.getsize(connection_log(a.rundir))
    lab.stop_controller("A")
    wait_for(lambda: not controller_alive(lab, "A"), 10, "A's bridge to see its controller gone")
    a.ofctl("del-flows", a.bridge)           # what the returning controller must put back
    assert not pipeline_installed(a, controller)
    if not a.dialed:
        failed = lambda: sum("connection failed" in line for line in bridge_log(a, mark))
        wait_for(lambda: failed() >= TRIES_AWAY, 60, f"{TRIES_AWAY} tries of A's bridge",
                 show=lambda: bridge_log(a, mark))
        waits = [int(n) for line in bridge_log(a, mark) for n in BACKING_OFF.findall(line)]
        assert max(waits, default=0) <= MAX_BACKOFF_MS / 1000, bridge_log(a, mark)
    else:
        assert bridge_log(a, mark) == [], "a listening bridge never dials its controller"
    lab.start_controller("A")                # waits for the bridge to be connected
    wait_for(lambda: pipeline_installed(a, controller), 30, "A's pipeline reinstalled")
    assert ping(lab.hosts["h5"], lab.hosts["h7"].ip).ok, "across the overlay again"

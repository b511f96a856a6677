"""A restarted controller has its bridge back at once: it dials the bridge's listener (the
lab's and `bridge setup`'s default); a bridge that dials its controller (tcp:, as
simple_switch_13 runs) comes back within OVS's max_backoff of 1 s."""
import time

import pytest

from ipop_ryu.host.ovsctl import INACTIVITY_PROBE_MS, MAX_BACKOFF_MS
from ipop_ryu.lab import netns
from ipop_ryu.lab.lab import OF_PORT
from ipop_ryu.lab.topology import seed_two_sites

from .util import controller_alive, needs_simple_switch_13, wait_for

# With OVS's default max_backoff (8 s) the tries after a loss come at +1, +3, +7 and +15 s:
# back after 8 s (plus Ryu's start-up), the controller would wait for the last (7-8 s here).
ABSENT = 8.0
# Dialed by OVS: the next try (every max_backoff), then the hello: vswitchd reads Ryu's
# answer on its next wake-up, at most 500 ms later; plus slack for a loaded machine.
BACKOFF_LIMIT = MAX_BACKOFF_MS / 1000 + 0.5 + 0.25
# Dialing the bridge: connected before (or as) Ryu's own listener is up; slack for load.
DIAL_LIMIT = 0.25


def restart_and_time(lab, name):
    """Stop a site's controller, keep it away ABSENT s, start it: seconds from its socket
    listening (as the lab's own readiness check sees it) until the bridge is connected,
    0 if the bridge was connected first."""
    site = lab.sites[name]
    lab.stop_controller(name)
    wait_for(lambda: not controller_alive(lab, name), 10, f"{name}'s bridge to see it gone")
    time.sleep(ABSENT)  # the absence is the point: there is nothing to poll for
    mark = site.ovs.log_size(site.controller_target)
    pid = lab.start_controller(name, wait=False)
    seen = {}

    def both():
        now = time.monotonic()
        if "listening" not in seen and netns.tcp_listening(pid, OF_PORT):
            seen["listening"] = now
        if "connected" not in seen and lab.bridge_connected(name, mark):
            seen["connected"] = now
        return len(seen) == 2
    wait_for(both, 30, f"{name}'s controller to listen and its bridge to connect",
             interval=0.005)
    return max(0.0, seen["connected"] - seen["listening"])


@pytest.mark.parametrize("controller,limit", [
    ("ipop", DIAL_LIMIT),
    pytest.param("simple_switch_13", BACKOFF_LIMIT, marks=needs_simple_switch_13)])
def test_restarted_controller_has_its_bridge_back(lab_factory, record_property, controller,
                                                  limit):
    lab = lab_factory(seed_two_sites(controller=controller))
    a = lab.sites["A"]
    assert a.vsctl("get", "controller", a.bridge, "max_backoff", "inactivity_probe").split() \
        == [str(MAX_BACKOFF_MS), str(INACTIVITY_PROBE_MS)]
    assert a.dialed == (controller == "ipop")
    took = restart_and_time(lab, "A")
    record_property("reconnect_s", round(took, 3))
    assert took <= limit, f"bridge back {took:.2f}s after the controller listened"
    lab.wait_connected(["A"])  # and the app is back in charge of it

"""The many-site simulator: real cores on a simulated network; small worlds, virtual time."""
import logging

import pytest

from ipop_ryu.cli import main
from ipop_ryu.sim import scenarios
from ipop_ryu.sim.world import World


@pytest.fixture(autouse=True)
def quiet():
    logging.getLogger("ipop_ryu").setLevel(logging.ERROR)
    yield
    logging.getLogger("ipop_ryu").setLevel(logging.NOTSET)


def pull_world(n, **kw):
    world = World(n, 2, announce=False, **kw)
    for name in world.names:
        world.start(name, speak=False)
    world.run_until(2.0)
    return world


def test_a_cold_resolution_costs_one_request_per_peer_and_one_answer():
    world = pull_world(5)
    got = scenarios.cold_resolutions(world, reps=3)
    assert got["datagrams_per_resolution"] == [5, 5, 5]       # 4 requests + 1 reply
    assert all(0.03 <= s <= 0.06 for s in got["seconds"]), got   # two 20 ms hops
    asker = world.answers[-1]
    assert asker[4] != "datapath" and asker[4].startswith("02:00:")
    world.ask(asker[1], 1, asker[3])                            # again: the datapath answers
    assert world.answers[-1][4] == "datapath"


def test_relay_retries_get_through_loss():
    world = pull_world(4, loss=0.25, seed=3)
    got = scenarios.cold_resolutions(world, reps=6, limit=5.0)
    assert len(got["seconds"]) >= 5, got
    assert world.lost > 0


def test_announcements_converge_and_a_late_site_joins():
    world = World(5, 3)
    for name in world.names[:-1]:
        world.start(name)
    assert scenarios._wait(world, scenarios._everyone_knows_everyone(
        world, world.names[:-1]), 5.0) is not None
    assert not world.responders_at("s0") & set(world.hosts["s4"])
    took = scenarios.join(world, "s4", limit=5.0)["converged_s"]
    assert took is not None and took < 1.0
    assert "bindings" in world.sent and "arp_request" not in world.sent


def test_partition_withdraws_then_heals_and_a_leaver_is_withdrawn():
    world = World(5, 2)
    scenarios.cold_start(world)
    world.chatter()
    got = scenarios.partition(world, "s1", duration=20.0)
    assert got["responders_withdrawn"] == 2 * 2       # s1's 2 hosts at the 2 cut-off sites
    assert got["reconverged_s"] is not None and got["reconverged_s"] < 6.0
    gone = scenarios.leave(world, "s2")["withdrawn_everywhere_s"]
    assert gone is not None and 10.0 <= gone <= 16.0   # the hold time, 15 s


def test_a_restart_loses_no_responder():
    world = World(4, 3, jitter=0.01)
    scenarios.cold_start(world)
    got = scenarios.restart(world, "s1")
    assert got["fewest_responders"] == got["responders"] == 9
    assert got["table_back_s"] is not None and got["table_back_s"] < 2.0


def test_the_command_prints_the_table(capsys, tmp_path):
    assert main(["sim", "--sites", "4", "--hosts", "2", "--window", "20",
                 "--out", str(tmp_path / "sim.json")]) == 0
    out = capsys.readouterr().out
    assert "| ICC datagrams / site / min (steady) |" in out and "| 4 sites |" in out
    assert (tmp_path / "sim.json").read_text().startswith("[")
    assert main(["sim", "--sites", "ten"]) == 2

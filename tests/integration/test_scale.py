"""Scale on the lab: a peer announcing 10,000 hosts (the bench's feeder speaking as site B)."""
import contextlib
import re
import subprocess
import sys
import time

from ipop_ryu.core import pipeline
from ipop_ryu.lab import netns
from ipop_bench.feeder import FEEDER_NET
from ipop_ryu.lab.topology import ALLOWED_IPS, seed_two_sites

from .util import peer_states, stats, wait_for

N = 10000
FAST_PEERS = {"hello_interval": "0.5", "peer_hold_time": "2", "arp_timeout": "3600"}


def responders(site):
    out = site.ofctl("dump-aggregate", site.bridge,
                     f"cookie={pipeline.cookie('proxy_arp'):#x}/0xffffffff00000000")
    return int(re.search(r"flow_count=(\d+)", out).group(1))


FEEDER_ALLOWED = {"B": f"{ALLOWED_IPS}, {FEEDER_NET}"}   # the feeder speaks as B


@contextlib.contextmanager
def feeding(lab, count, **options):
    """B's controller stopped; a feeder speaks as B from B's address, owning `count` hosts."""
    lab.stop_controller("B")
    a, b = lab.sites["A"], lab.sites["B"]
    argv = [sys.executable, "-m", "ipop_bench.feeder", *lab.key_args("B", "A"),
            "--node", "B", "--bind", f"{b.underlay_ip}:30000", "--peer",
            f"{a.underlay_ip}:30000", "--count", str(count), "--feed-after", "0.5",
            "--hello-interval", options.get("hello_interval", "0.5"),
            "--rate", options.get("rate", "0")]
    feeder = subprocess.Popen(netns.exec_argv(b.ns, argv), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        yield feeder
    finally:
        netns.terminate(feeder)


def test_hellos_survive_a_burst_of_ten_thousand_entries(lab_factory, record_property):
    lab = lab_factory(seed_two_sites(extra_options=FAST_PEERS, allowed_ips=FEEDER_ALLOWED))
    a = lab.sites["A"]
    with feeding(lab, N):
        start = time.monotonic()
        wait_for(lambda: responders(a) == N, 30, f"{N} responders in OVS", interval=0.05)
        record_property("learned_per_s", round(N / (time.monotonic() - start)))
        assert peer_states(a)["B"] == "up"
        assert stats(a)["peers"]["went_down"] == 0, "B was never marked down (2 s hold time)"
        assert stats(a)["icc"]["dropped"]["stale"] == 0


def test_a_restart_with_ten_thousand_entries_loses_no_responder(lab_factory, record_property):
    lab = lab_factory(seed_two_sites(extra_options=FAST_PEERS, allowed_ips=FEEDER_ALLOWED))
    a = lab.sites["A"]
    with feeding(lab, N):
        wait_for(lambda: responders(a) == N, 30, f"{N} responders in OVS", interval=0.05)
        stale = pipeline.cookie("proxy_arp", "10.99.0.1")      # one nobody will claim
        lab.stop_controller("A")
        a.ofctl("add-flow", a.bridge, f"cookie={stale:#x},table=1,priority=300,arp,"
                                      "arp_tpa=10.99.0.1,actions=drop")
        start = time.monotonic()
        lab.start_controller("A", wait=False)
        seen = []
        while time.monotonic() - start < 15:
            seen.append(responders(a))
            if seen[-1] == N and time.monotonic() - start > 1:
                try:
                    if stats(a)["table"]["remote"] == N and \
                            not stats(a)["graceful_restart"]["active"]:
                        break
                except Exception:            # REST not up yet
                    pass
            time.sleep(0.05)
        took = time.monotonic() - start
        record_property("restart_all_back_s", round(took, 2))
        record_property("min_responders_seen", min(seen))
        assert min(seen) >= N, "a responder went missing across the restart"
        assert stats(a)["table"]["remote"] == N
        wait_for(lambda: responders(a) == N and not a.ofctl(
            "dump-flows", a.bridge, f"cookie={stale:#x}/-1").count("cookie="), 10,
            "the unclaimed flow removed after the graceful restart")

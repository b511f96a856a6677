"""`ipop-ryu bench --services --quick`: the site services section (issue 20) in small, checked
for the shape of what it writes and for what holds whatever the machine's load."""
import json
import math
import os

import pytest

from ipop_ryu.cli import main
from ipop_ryu.lab import lxc, netns

pytestmark = pytest.mark.skipif(lxc.available() is not None, reason=str(lxc.available()))

FIGURES = ("first_ping_s", "start_to_ack_s", "ack_to_first_ping_s", "lease_to_responders_s",
           "ack_to_first_arp_s", "kill_withdrawn_s", "move_gap_s", "egress_mbps")
BOTH = ("first_ping_s", "start_to_ack_s", "ack_to_first_ping_s", "egress_mbps")


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_quick_services_section_writes_results(tmp_path, capsys):
    assert main(["bench", "--services", "--quick", "--out", str(tmp_path)]) == 0
    runs = os.listdir(tmp_path)
    assert len(runs) == 1, runs
    run_dir = tmp_path / runs[0]
    doc = json.loads((run_dir / "services.json").read_text())
    section = doc["services"]
    assert section["config"]["quick"] is True and section["errors"] == {}, section["errors"]

    rounds = section["rounds"]
    assert [r["system"] for r in rounds].count("ipop") == section["config"]["rounds"]
    assert [r["system"] for r in rounds].count("plain") == section["config"]["rounds"]
    for r in rounds:
        # every start was seen in the capture: its ACK, then its first echo reply
        assert r["start"] < r["ack"] < r["first_reply"], r
        if r["system"] == "ipop":
            assert set(r["responders"]) == {"B", "C"} and None not in r["responders"].values()
            assert r["withdrawn"] is not None and r["withdrawn"] > r["kill"], r
    for key in FIGURES:
        for system in (("ipop", "plain") if key in BOTH else ("ipop",)):
            s = section["figures"][key][system]
            assert s["n"] >= 1 and _number(s["median"]) and s["max"] >= s["median"], (key, s)
    assert len(section["moves"]) == section["config"]["moves"]
    # the datapath keeps DHCP and the gateway's frames in the site, whatever the timing
    frames = section["frames"]
    assert {"dhcp", "gateway_arp", "gateway_nd", "rs_ra", "gateway_mac", "other"} == set(frames)
    assert sum(v for k, v in frames.items() if k != "other") == 0, frames

    targets = section["targets"]
    assert len(targets) == 7 and all(t["met"] in (True, False, None) for t in targets)
    assert all(t["value"] is not None for t in targets), targets
    md = (run_dir / "services.md").read_text()
    assert "| metric | unit | ipop-ryu site | plain lxc-net host | target |" in md
    assert "| container start to first cross-site ping <= 1.2x" in md
    assert "| killed container to withdrawn everywhere <= 1 s |" in capsys.readouterr().out

    # every lab namespace and process is gone, the plain host's too
    ours = section["lab"]
    left = [ns for ns in netns.list_namespaces(f"ipr-{ours}-")]
    procs = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
             if netns.process_marker(pid) == ours]
    assert not left and not procs, f"left over: namespaces {left}, processes {procs}"

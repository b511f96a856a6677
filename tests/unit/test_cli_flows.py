"""`ipop-ryu flows`: parsing and summarising real `ovs-ofctl dump-flows` output (no OVS)."""
import json
import os
import subprocess

import pytest

from ipop_ryu.cli import flows, main
from ipop_ryu.core import pipeline
from ipop_ryu.host import ovsctl

# Captured from lab site A (seed_two_sites, ipop controller) with
# `ovs-ofctl -O OpenFlow13 --names dump-flows br0`, after arping h5 -> 10.0.3.7, arping -c 3
# h3 -> 10.0.3.7 and ping h5 -> 10.0.3.7, plus two foreign flows added by hand in table 9.
DUMP = r"""OFPST_FLOW reply (OF1.3) (xid=0x2):
 cookie=0x4950000900000000, duration=8.517s, table=0, n_packets=1, n_bytes=42, priority=200,in_port=CONTROLLER actions=write_metadata:0x1/0xff,goto_table:3
 cookie=0x4950000100000065, duration=8.517s, table=0, n_packets=3, n_bytes=238, priority=100,in_port="ipop-B" actions=write_metadata:0x2/0xff,goto_table:1
 cookie=0x4950000900000000, duration=8.517s, table=0, n_packets=8, n_bytes=512, priority=10 actions=write_metadata:0x1/0xff,goto_table:1
 cookie=0x4950000300000000, duration=8.517s, table=1, n_packets=0, n_bytes=0, priority=400,arp,metadata=0x2/0xff,dl_dst=ff:ff:ff:ff:ff:ff actions=drop
 cookie=0x4950000200000000, duration=8.517s, table=1, n_packets=1, n_bytes=58, priority=200,arp,metadata=0x1/0xff,dl_dst=ff:ff:ff:ff:ff:ff actions=CONTROLLER:65535
 cookie=0x4950000200000000, duration=8.517s, table=1, n_packets=0, n_bytes=0, priority=310,arp,metadata=0x1/0xff,dl_dst=ff:ff:ff:ff:ff:ff,arp_spa=0.0.0.0 actions=CONTROLLER:65535
 cookie=0x495000050a000307, duration=8.340s, table=1, n_packets=0, n_bytes=0, hard_timeout=301, priority=310,arp,metadata=0x1/0xff,dl_dst=ff:ff:ff:ff:ff:ff,arp_spa=10.0.3.7 actions=CONTROLLER:65535
 cookie=0x495000040a000307, duration=8.340s, table=1, n_packets=4, n_bytes=216, hard_timeout=301, priority=300,arp,metadata=0x1/0xff,dl_dst=ff:ff:ff:ff:ff:ff,arp_tpa=10.0.3.7,arp_op=1 actions=set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:02:00:0a:00:03:07->arp_sha,set_field:10.0.3.7->arp_spa,move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:0a:00:03:07->eth_src,IN_PORT
 cookie=0x4950000200000000, duration=8.517s, table=1, n_packets=1, n_bytes=42, priority=200,arp,metadata=0x1/0xff,arp_op=2 actions=CONTROLLER:65535
 cookie=0x4950000900000000, duration=8.517s, table=1, n_packets=5, n_bytes=434, priority=0 actions=goto_table:2
 cookie=0x4950000600000000, duration=8.517s, table=2, n_packets=2, n_bytes=196, priority=100,metadata=0x1/0xff actions=learn(table=3,idle_timeout=300,priority=100,cookie=0x4950000700000000,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),learn(table=4,idle_timeout=300,priority=100,cookie=0x4950000700000000,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),goto_table:3
 cookie=0x4950000600000000, duration=8.517s, table=2, n_packets=3, n_bytes=238, priority=100,metadata=0x2/0xff actions=learn(table=3,idle_timeout=300,priority=100,cookie=0x4950000700000000,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),goto_table:4
 cookie=0x4950000900000000, duration=8.517s, table=2, n_packets=0, n_bytes=0, priority=0 actions=drop
 cookie=0x4950000700000000, duration=6.203s, table=3, n_packets=0, n_bytes=0, idle_timeout=300, priority=100,dl_dst=02:00:0a:00:03:05 actions=output:h5
 cookie=0x4950000700000000, duration=6.202s, table=3, n_packets=2, n_bytes=140, idle_timeout=300, priority=100,dl_dst=02:00:0a:00:03:07 actions=output:"ipop-B"
 cookie=0x4950000900000000, duration=8.517s, table=3, n_packets=1, n_bytes=98, priority=0 actions=goto_table:5
 cookie=0x4950000700000000, duration=6.203s, table=4, n_packets=3, n_bytes=238, idle_timeout=300, priority=100,dl_dst=02:00:0a:00:03:05 actions=output:h5
 cookie=0x4950000900000000, duration=8.517s, table=4, n_packets=0, n_bytes=0, priority=0 actions=goto_table:5
 cookie=0x4950000800000000, duration=8.517s, table=5, n_packets=1, n_bytes=98, priority=100,metadata=0x1/0xff actions=output:h3,output:h5,output:"ipop-B"
 cookie=0x4950000800000000, duration=8.517s, table=5, n_packets=0, n_bytes=0, priority=100,metadata=0x2/0xff actions=output:h3,output:h5
 cookie=0x4950000900000000, duration=8.517s, table=5, n_packets=0, n_bytes=0, priority=0 actions=drop
 cookie=0x1234, duration=5.952s, table=9, n_packets=0, n_bytes=0, send_flow_rem actions=drop
 cookie=0x1234, duration=5.908s, table=9, n_packets=0, n_bytes=0, idle_timeout=60, priority=5,udp,tp_dst=53 actions=output:h3
"""


IN_DUMP = ["classify", "arp_punt", "overlay_arp_drop", "proxy_arp", "proxy_arp_guard", "learn",
           "learned_mac", "flood", "default", "other"]  # in pipeline.PURPOSES order


def by_purpose(parsed, purpose):
    return [f for f in parsed if f["purpose"] == purpose]


def test_every_flow_line_is_parsed():
    parsed = flows.parse_dump_flows(DUMP)
    assert len(parsed) == 23
    assert {f["purpose"] for f in parsed} == set(IN_DUMP)


def test_proxy_arp_flow():
    [responder] = by_purpose(flows.parse_dump_flows(DUMP), "proxy_arp")
    assert responder["cookie"] == 0x495000040A000307
    assert (responder["ip"], responder["mac"]) == ("10.0.3.7", "02:00:0a:00:03:07")
    assert (responder["table"], responder["priority"]) == (1, 300)
    assert (responder["n_packets"], responder["n_bytes"]) == (4, 216)
    assert (responder["hard_timeout"], responder["idle_timeout"]) == (301, None)
    assert responder["duration"] == 8.34
    assert responder["match"] == ("arp,metadata=0x1/0xff,dl_dst=ff:ff:ff:ff:ff:ff,"
                                  "arp_tpa=10.0.3.7,arp_op=1")
    assert responder["actions"].startswith("set_field:2->arp_op,") \
        and responder["actions"].endswith(",IN_PORT")


def test_fields_of_other_flows():
    parsed = flows.parse_dump_flows(DUMP)
    first = parsed[0]
    assert first == {"cookie": 0x4950000900000000, "purpose": "default", "table": 0,
                     "priority": 200, "n_packets": 1, "n_bytes": 42, "duration": 8.517,
                     "idle_timeout": None, "hard_timeout": None, "match": "in_port=CONTROLLER",
                     "actions": "write_metadata:0x1/0xff,goto_table:3"}
    assert parsed[2]["match"] == "" and parsed[2]["priority"] == 10
    learned = by_purpose(parsed, "learned_mac")
    assert [(f["table"], f["match"], f["idle_timeout"]) for f in learned] == [
        (3, "dl_dst=02:00:0a:00:03:05", 300), (3, "dl_dst=02:00:0a:00:03:07", 300),
        (4, "dl_dst=02:00:0a:00:03:05", 300)]
    assert learned[1]["actions"] == 'output:"ipop-B"'


def test_foreign_flows_default_priority_and_flags():
    flag, udp = by_purpose(flows.parse_dump_flows(DUMP), "other")
    assert (flag["cookie"], flag["table"], flag["priority"]) == (0x1234, 9, 32768)
    assert (flag["match"], flag["actions"]) == ("", "drop")
    assert (udp["priority"], udp["match"], udp["idle_timeout"]) == (5, "udp,tp_dst=53", 60)


def test_groups_in_pipeline_order_with_totals():
    groups = flows.group(flows.parse_dump_flows(DUMP))
    assert list(groups) == IN_DUMP
    assert {k: (g["flows"], g["packets"]) for k, g in groups.items()} == {
        "classify": (1, 3), "arp_punt": (3, 2), "overlay_arp_drop": (1, 0), "proxy_arp": (1, 4),
        "proxy_arp_guard": (1, 0), "learn": (2, 5), "learned_mac": (3, 5), "flood": (2, 1),
        "default": (7, 15), "other": (2, 0)}


def test_summary_reads_like_an_operator_would_say_it():
    text = flows.format_summary("br0", flows.parse_dump_flows(DUMP))
    lines = text.splitlines()
    assert lines[0] == "br0: 23 flows, 35 packets"
    assert "  proxy-ARP 10.0.3.7 -> 02:00:0a:00:03:07 (4 answered), expires in 293s" in lines
    assert "proxy_arp: proxy-ARP responder (answers in the datapath) -- 1 flow, 4 packets" \
        in lines
    assert "other: not installed by ipop-ryu (foreign cookie) -- 2 flows, 0 packets" in lines
    assert "         3  classify    100  in_port=ipop-B -> meta:=overlay,goto:arp" in lines
    assert "         1  flood       100  meta=local -> output:h3,output:h5,output:ipop-B" \
        in lines
    assert "         0  learn         0  * -> drop" in lines
    assert "         2  fwd_any     100  dl_dst=02:00:0a:00:03:07 -> output:ipop-B  idle 300s" \
        in lines
    assert "         0  table9    32768  * -> drop" in lines
    assert "         2  learn       100  meta=local -> learn(fwd_any),learn(fwd_local)," \
           "goto:fwd_any" in lines
    assert max(map(len, lines)) < 120


def test_shorten_truncates_long_actions():
    assert flows.shorten("x" * 100, width=20) == "x" * 17 + "..."
    assert flows.shorten("move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],CONTROLLER:65535") == \
        "move:arp_sha->arp_tha,CONTROLLER"


def test_json_is_the_parsed_structure():
    data = json.loads(flows.to_json("br0", flows.parse_dump_flows(DUMP)))
    assert data["bridge"] == "br0" and len(data["flows"]) == 23
    assert data["purposes"]["proxy_arp"] == {
        "description": "proxy-ARP responder (answers in the datapath)", "flows": 1,
        "packets": 4}
    [responder] = [f for f in data["flows"] if f["purpose"] == "proxy_arp"]
    assert responder["cookie"] == "0x495000040a000307" and responder["ip"] == "10.0.3.7"


def test_empty_bridge():
    assert flows.parse_dump_flows("OFPST_FLOW reply (OF1.3) (xid=0x2):\n") == []
    assert flows.format_summary("br1", []) == "br1: 0 flows, 0 packets"


# --- the command, with subprocess replaced -------------------------------------------------

@pytest.fixture
def ovs(monkeypatch, tmp_path):
    """replies: command name -> (rc, stdout, stderr); ovs-vswitchd "runs" (our own pid)."""
    (tmp_path / "ovs-vswitchd.pid").write_text(f"{os.getpid()}\n")
    monkeypatch.setenv("OVS_RUNDIR", str(tmp_path))
    replies, log = {}, []

    def fake_run(argv, **kw):
        log.append(argv)
        rc, out, err = replies.get(argv[0], (0, "", ""))
        return subprocess.CompletedProcess(argv, rc, out, err)
    monkeypatch.setattr(ovsctl.subprocess, "run", fake_run)
    return replies, log


def test_command_dumps_br0_by_default(ovs, capsys):
    replies, log = ovs
    replies["ovs-ofctl"] = (0, DUMP, "")
    assert main(["flows"]) == 0
    assert log == [["ovs-ofctl", "-O", "OpenFlow13", "--names", "dump-flows", "br0"]]
    assert "proxy-ARP 10.0.3.7 -> 02:00:0a:00:03:07 (4 answered)" in capsys.readouterr().out


def test_command_json(ovs, capsys):
    ovs[0]["ovs-ofctl"] = (0, DUMP, "")
    assert main(["flows", "br0", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["flows"]) == 23


NOT_A_BRIDGE = (1, "", "ovs-ofctl: br9 is not a bridge or a socket\n")


def test_unknown_bridge(ovs, capsys):
    ovs[0].update({"ovs-ofctl": NOT_A_BRIDGE, "ovs-vsctl": (0, "br0\n", "")})
    assert main(["flows", "br9"]) == 2
    assert capsys.readouterr().err == "ipop-ryu: no bridge named br9 (bridges: br0)\n"


def test_ovs_down(ovs, capsys):
    ovs[0].update({"ovs-ofctl": NOT_A_BRIDGE, "ovs-vsctl": (
        1, "", "ovs-vsctl: unix:/x/db.sock: database connection failed (Connection refused)\n")})
    assert main(["flows", "br9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ipop-ryu: Open vSwitch is not running in ")


def test_bad_bridge_name_never_reaches_ovs_ofctl(ovs, capsys):
    # ovs-ofctl would take "tcp:..." as a connection target, not a bridge name
    assert main(["flows", "tcp:10.0.0.1:6653"]) == 2
    assert ovs[1] == [] and "bad bridge name" in capsys.readouterr().err


def test_tables_come_from_the_pipeline_declaration(ovs, capsys):
    assert main(["flows", "--tables"]) == 0
    out = capsys.readouterr().out
    assert ovs[1] == [], "the declaration needs no bridge"
    assert out.splitlines()[0] == " 0  classify  -> arp, fwd_any"
    assert " 7  nd_answer -> (end)" in out.splitlines()
    for table in pipeline.TABLES:
        assert f"{table.id:>2}  {table.name:<9} -> " in out
        assert " ".join(table.holds.split()) in " ".join(out.split())


def test_json_names_the_declared_tables():
    data = json.loads(flows.to_json("br0", []))
    assert [t["name"] for t in data["tables"]] == list(pipeline.TABLE_NAMES.values())
    assert data["tables"][pipeline.ARP]["next"] == ["learn", "fwd_any", "fwd_local", "punt",
                                                    "nd_answer"]
    assert data["tables"][pipeline.PUNT]["holds"] == pipeline.TABLES[pipeline.PUNT].holds

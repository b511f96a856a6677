import pytest

from ipop_ryu.core import pipeline
from ipop_ryu.core.intents import IN_PORT, Move, Output, SetField


def test_cookie_layout():
    value = pipeline.cookie("proxy_arp", "10.0.3.7")
    assert value == 0x495000040A000307
    assert pipeline.purpose_of(value) == "proxy_arp"
    assert pipeline.purpose_of(pipeline.cookie("flood")) == "flood"
    assert pipeline.purpose_of(0x1234) is None
    assert len({number for number, _ in pipeline.PURPOSES.values()}) == len(pipeline.PURPOSES)


def test_responder_is_the_nicira_move_recipe():
    responder, guard = pipeline.install_arp_responder("10.0.3.7", "02:00:0a:00:03:07", 30)
    assert responder.match == {"metadata": (1, 0xFF), "eth_type": 0x0806, "arp_op": 1,
                               "eth_dst": "ff:ff:ff:ff:ff:ff", "arp_tpa": "10.0.3.7"}
    assert responder.actions == (
        SetField("arp_op", 2), Move("arp_sha", "arp_tha", 48), Move("arp_spa", "arp_tpa", 32),
        SetField("arp_sha", "02:00:0a:00:03:07"), SetField("arp_spa", "10.0.3.7"),
        Move("eth_src", "eth_dst", 48), SetField("eth_src", "02:00:0a:00:03:07"),
        Output(IN_PORT))
    assert guard.priority > responder.priority and guard.match["arp_spa"] == "10.0.3.7"
    assert responder.hard_timeout == guard.hard_timeout == 30


def test_every_base_flow_is_ours_and_tables_have_defaults():
    flows = pipeline.base_flows() + pipeline.flood_flows([1, 2], [10])
    assert all(pipeline.purpose_of(f.cookie) for f in flows)
    assert {f.table for f in flows if f.priority == 0} == set(pipeline.TABLE_NAMES) - {
        pipeline.CLASSIFY}


def test_responder_builder_equals_its_plain_reference():
    for ip, mac, timeout in [("10.0.3.7", "02:00:0a:00:03:07", 301), ("1.2.3.4", "02:ff:00:00:00:01", 0),
                             ("255.255.255.254", "0a:00:00:00:00:00", 65535)]:
        assert pipeline.install_arp_responder(ip, mac, timeout) == \
            pipeline._responder_reference(ip, mac, timeout)


def test_one_write_puts_catch_flows_first_then_answers_then_the_rest():
    from ipop_ryu.core.intents import Output, PacketOut
    catch_a = pipeline.install_relay_reply_punt("10.0.3.7", "02:00:0a:00:03:05", 5)
    catch_b = pipeline.install_relay_reply_punt("10.0.3.8", "02:00:0a:00:03:05", 5)
    out_a, out_b = PacketOut(b"a", (Output(1),)), PacketOut(b"b", (Output(2),))
    responder = pipeline.install_arp_responder("10.0.3.9", "02:00:0a:00:03:09", 30)
    gone = pipeline.delete_learned_mac("02:00:0a:00:03:06")[0]
    batch = [catch_a, out_a, *responder, gone, catch_b, out_b]
    assert pipeline.for_one_write(batch) == [catch_a, catch_b, out_a, out_b, *responder, gone]


def test_tables_are_declared_once_and_the_constants_follow():
    assert [t.id for t in pipeline.TABLES] == list(range(len(pipeline.TABLES)))
    assert pipeline.TABLE_NAMES == {t.id: t.name for t in pipeline.TABLES}
    assert (pipeline.CLASSIFY, pipeline.ARP, pipeline.ND_ANSWER) == (0, 1, 7)
    assert pipeline.TABLES[pipeline.FWD_LOCAL].name == "fwd_local"
    assert all(t.holds and "\n" not in t.holds for t in pipeline.TABLES)


def test_a_goto_or_resubmit_the_declaration_does_not_allow_is_refused():
    from ipop_ryu.core.intents import Resubmit
    with pytest.raises(ValueError) as wrong_goto:
        pipeline.flow(pipeline.LEARN, 1, pipeline.cookie("learn"), {}, goto=pipeline.FLOOD)
    assert str(wrong_goto.value) == (
        "flow of purpose learn (cookie 0x4950000600000000) in table 2 (learn): goto_table to "
        "table 5 (flood) refused: table 2 (learn) may go to table 3 (fwd_any), table 4 "
        "(fwd_local)")
    with pytest.raises(ValueError, match=r"flow of purpose flood .*table 5 \(flood\): "
                                         r"resubmit to table 0 \(classify\) refused"):
        pipeline.flow(pipeline.FLOOD, 0, pipeline.cookie("flood"), {},
                      [Resubmit(pipeline.CLASSIFY)])
    with pytest.raises(ValueError, match="goto_table to table 2 .* must go to a later table"):
        pipeline.flow(pipeline.LEARN, 0, pipeline.cookie("default"), goto=pipeline.LEARN)
    with pytest.raises(ValueError, match=r"no purpose of ours \(cookie 0x7\) in table 9 "
                                         r"\(not declared\)"):
        pipeline.flow(9, 0, 7, goto=10)


def test_a_goto_is_accepted_exactly_where_the_declaration_allows_it():
    tables = range(len(pipeline.TABLES) + 1)        # and one table not declared
    for source in tables:
        for to in tables:
            declared = source in pipeline.TABLE_NAMES and to in pipeline.TABLES[source].next
            try:
                pipeline.flow(source, 0, pipeline.cookie("default"), goto=to)
                accepted = True
            except ValueError:
                accepted = False
            assert accepted == (declared and to > source), (source, to)


def test_every_flow_of_a_realistic_site_takes_only_declared_steps():
    """Both families, every purpose: the static pipeline of a site with local and overlay
    ports and punt meters, port security with a lease, responders (an IPv6 router too) and
    relay catch flows, and what OVS learn writes. The fast-path builders bypass flow(), so each is checked here."""
    from ipop_ryu.core.families import families
    from ipop_ryu.core.intents import Flow, Learn
    from ipop_ryu.core.switchmode import SwitchMode
    from .helpers import Clock, options
    clock = Clock()
    import ipaddress
    core = SwitchMode(options("A", ["B"], punt_rate=50, port_security="dhcp",
                              gateway=ipaddress.ip_interface("10.0.3.1/24"),
                              gateway6=ipaddress.ip_interface("fd00:3::1/64")),
                      clock=clock, wallclock=clock)
    built = core.switch_connected({1: "h3", 2: "h5", 10: "ipop-B", 0xFFFFFFFE: "br0"})
    built += core.lease_granted("10.0.3.3", "02:00:00:00:00:03", 1)
    arp_family, nd_family = families()
    nd_family.learned_router("fd00::1", True)
    for fam, ip, requester in ((arp_family, "10.0.3.104", "10.0.3.5"),
                               (nd_family, "fd00::104", "fd00::5"),
                               (nd_family, "fd00::1", "::")):
        built += fam.install(ip, "02:00:00:00:01:04", 30, clock())
        built += [fam.relay_catch(ip, requester, "02:00:00:00:00:05", 5)]
    flows = [f for f in built if isinstance(f, Flow)]
    learned = [Flow(a.table, a.priority, a.cookie) for f in flows for a in f.actions
               if isinstance(a, Learn)]
    assert {pipeline.purpose_of(f.cookie) for f in flows + learned} == set(pipeline.PURPOSES)
    for f in flows + learned:
        assert pipeline.check_steps(f) is f
    steps = {(f.table, f.goto) for f in flows if f.goto is not None}
    assert (pipeline.ARP, pipeline.ND_ANSWER) in steps and (pipeline.CLASSIFY, pipeline.ARP) in steps

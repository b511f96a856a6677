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

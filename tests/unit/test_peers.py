from hypothesis import given, strategies as st

from ipop_ryu.core.config import Peer
from ipop_ryu.core.peers import REPLAY_WINDOW, PeerState, RecentRefusals


@given(st.lists(st.integers(min_value=0, max_value=5 * REPLAY_WINDOW), max_size=300))
def test_each_sequence_number_is_accepted_at_most_once(seqs):
    state = PeerState(Peer("B", "192.0.2.2", 30000))
    accepted = [seq for seq in seqs if state.fresh_seq(seq)]
    assert len(accepted) == len(set(accepted))
    for seq in seqs:
        assert not state.fresh_seq(seq)          # everything seen (or too old) stays refused


def test_reordering_within_the_window_is_accepted():
    state = PeerState(Peer("B", "192.0.2.2", 30000))
    assert state.fresh_seq(100) and state.fresh_seq(102)
    assert state.fresh_seq(101) and not state.fresh_seq(101)
    assert state.fresh_seq(102 + REPLAY_WINDOW)
    assert not state.fresh_seq(102)              # fell out of the window


def test_recent_refusals_count_per_peer_and_address_and_age_out():
    recent = RecentRefusals(kept=8, window=300)
    for now in (0, 10, 20):
        recent.add("B", "10.0.3.200", now)
    recent.add("C", "10.0.3.9", 30)
    (b, c) = recent.recent(40)
    assert (b.peer, b.address, b.count, b.first, b.last) == ("B", "10.0.3.200", 3, 0, 20)
    assert [r.address for r in recent.recent(40, "C")] == ["10.0.3.9"]
    assert [r.peer for r in recent.recent(320.5)] == ["C"], "B refused last at 20: forgotten"
    assert recent.recent(331) == []
    recent.add("B", "10.0.3.200", 400)
    assert [(r.count, r.first) for r in recent.recent(400)] == [(1, 400)], "counted anew"


def test_recent_refusals_keep_the_latest_pairs_only():
    recent = RecentRefusals(kept=4, window=300)
    for i in range(100):                     # a peer claiming a whole range
        recent.add("B", f"10.0.3.{i}", i * 0.1)
    recent.add("C", "10.0.3.200", 11)
    assert [r.address for r in recent.recent(11)] == ["10.0.3.97", "10.0.3.98", "10.0.3.99",
                                                      "10.0.3.200"]
    recent.forget("B")
    assert [r.peer for r in recent.recent(11)] == ["C"]

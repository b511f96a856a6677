from hypothesis import given, strategies as st

from ipop_ryu.core.config import Peer
from ipop_ryu.core.peers import REPLAY_WINDOW, PeerState


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

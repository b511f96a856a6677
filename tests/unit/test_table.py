from ipop_ryu.core.table import CHANGED, NEW, REFRESHED, ArpTable


def test_learn_refresh_change_and_expire():
    table = ArpTable("A", timeout=10)
    what, old, entry = table.learn("10.0.3.7", "02:00:00:00:00:07", "B", None, now=0)
    assert what == NEW and old is None and not entry.local and entry.port is None
    what, _, entry = table.learn("10.0.3.7", "02:00:00:00:00:07", "B", None, now=5)
    assert what == REFRESHED and entry.learned_at == 0 and entry.expires_at == 15
    what, old, entry = table.learn("10.0.3.7", "02:00:00:00:00:99", "B", None, now=6)
    assert what == CHANGED and old.mac == "02:00:00:00:00:07"
    assert table.get("10.0.3.7", now=15.9) is not None
    assert table.get("10.0.3.7", now=16) is None            # never answered after expiry
    assert [e.ip for e in table.expire(now=16)] == ["10.0.3.7"]
    assert len(table) == 0


def test_local_entries_keep_their_port():
    table = ArpTable("A", timeout=10)
    _, _, entry = table.learn("10.0.3.3", "02:00:00:00:00:03", "A", 4, now=0)
    assert entry.local and entry.port == 4


def test_remove_node_withdraws_only_that_site():
    table = ArpTable("A", timeout=10)
    table.learn("10.0.3.7", "02:00:00:00:00:07", "B", None, now=0)
    table.learn("10.0.3.9", "02:00:00:00:00:09", "C", None, now=0)
    assert [e.ip for e in table.remove_node("B")] == ["10.0.3.7"]
    assert [e.ip for e in table.entries(now=1)] == ["10.0.3.9"]


def test_entries_sorted_numerically():
    table = ArpTable("A", timeout=10)
    for ip in ("10.0.3.104", "10.0.3.7", "10.0.3.30"):
        table.learn(ip, "02:00:00:00:00:01", "B", None, now=0)
    assert [e.ip for e in table.entries(now=0)] == ["10.0.3.7", "10.0.3.30", "10.0.3.104"]

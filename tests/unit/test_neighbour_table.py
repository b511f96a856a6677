from ipop_ryu.core.neighbour_table import CHANGED, NEW, REFRESHED, NeighbourTable


def test_learn_refresh_change_and_expire():
    table = NeighbourTable("A", timeout=10)
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
    table = NeighbourTable("A", timeout=10)
    _, _, entry = table.learn("10.0.3.3", "02:00:00:00:00:03", "A", 4, now=0)
    assert entry.local and entry.port == 4


def test_remove_node_withdraws_only_that_site():
    table = NeighbourTable("A", timeout=10)
    table.learn("10.0.3.7", "02:00:00:00:00:07", "B", None, now=0)
    table.learn("10.0.3.9", "02:00:00:00:00:09", "C", None, now=0)
    assert [e.ip for e in table.remove_node("B")] == ["10.0.3.7"]
    assert [e.ip for e in table.entries(now=1)] == ["10.0.3.9"]


def test_entries_sorted_numerically():
    table = NeighbourTable("A", timeout=10)
    for ip in ("10.0.3.104", "10.0.3.7", "10.0.3.30"):
        table.learn(ip, "02:00:00:00:00:01", "B", None, now=0)
    assert [e.ip for e in table.entries(now=0)] == ["10.0.3.7", "10.0.3.30", "10.0.3.104"]


def test_pages_follow_address_order_across_changes():
    table = NeighbourTable("A", timeout=100)
    ips = [f"10.{a}.{b}.{c}" for a in (1, 20) for b in (0, 3) for c in (1, 2, 250)]
    for n, ip in enumerate(reversed(ips)):
        table.learn(ip, "02:00:00:00:00:01", "B", None, now=n * 0.01)
    seen, after = [], None
    while True:
        page, after = table.page(now=1, after=after, limit=5)
        seen += [e.ip for e in page]
        if after is None:
            break
        table.learn("10.1.0.0", "02:00:00:00:00:02", "C", None, now=1)   # lands before `after`
    assert seen == ips, "paging in order, an entry added behind the cursor is not repeated"
    assert table.page(now=1, after="10.20.3.250") == ([], None)


def test_counts_follow_learning_moves_and_withdrawal():
    table = NeighbourTable("A", timeout=10)
    table.learn("10.0.3.3", "02:00:00:00:00:03", "A", 1, now=0)
    table.learn("10.0.3.7", "02:00:00:00:00:07", "B", None, now=0)
    table.learn("10.0.3.8", "02:00:00:00:00:08", "B", None, now=0)
    assert (table.local_count, table.remote_count, table.node_count("B")) == (1, 2, 2)
    table.learn("10.0.3.8", "02:00:00:00:00:08", "A", 2, now=1)       # moved here
    assert (table.local_count, table.remote_count, table.node_count("B")) == (2, 1, 1)
    table.remove_node("B")
    assert (table.local_count, table.remote_count, table.node_counts()) == (2, 0, {"A": 2})


def test_expiry_costs_what_expires_and_refreshes_do_not_pile_up():
    table = NeighbourTable("A", timeout=10)
    for n in range(2000):
        table.learn(f"10.0.{n // 250}.{n % 250}", "02:00:00:00:00:01", "B", None, now=0)
    for step in range(1, 50):                                 # every entry refreshed 49 times
        for n in range(2000):
            table.learn(f"10.0.{n // 250}.{n % 250}", "02:00:00:00:00:01", "B", None,
                        now=step * 0.1)
    assert len(table._expiry) <= 2 * len(table) + 1024
    assert table.expire(now=10) == []                         # refreshed: none is due yet
    assert len(table.expire(now=14.91)) == 2000 and len(table) == 0

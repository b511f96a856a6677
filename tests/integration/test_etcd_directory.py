"""The directory client against a real 3-member etcd cluster (lab/etcd.py) with auth on.

Each test starts its own cluster and ends it (and every client) in a finalizer. Durations are
printed (-s), not asserted: they belong in the bench.
"""
import shutil
import threading
import time

import pytest

from ipop_ryu.core.keys import generate_private_key, signing_public_key_of
from ipop_ryu.directory import layout
from ipop_ryu.directory.client import DirectoryClient
from ipop_ryu.directory.session import PermissionDenied, Session, b64
from ipop_ryu.directory.signing import Signer, Verifier
from ipop_ryu.directory.view import Delete, Put, Resynced
from ipop_ryu.directory.watch import WatchLost, watch_prefix
from ipop_ryu.lab.etcd import EtcdCluster
from ipop_ryu.lab.netns import wait_until

pytestmark = pytest.mark.skipif(shutil.which("etcd") is None or shutil.which("etcdctl") is None,
                                reason="etcd-server/etcd-client missing: run `make apt`")
SITES = {"A": ["10.0.3.0/25"], "B": ["10.0.3.128/25"]}
KEYS = {n: generate_private_key() for n in SITES}
VERIFIER = Verifier.from_text({n: (signing_public_key_of(KEYS[n]), SITES[n]) for n in SITES})
HEARTBEAT = 1.0      # s; silence (a dead watch) after 2.5 of them


@pytest.fixture
def cluster(tmp_path):
    c = EtcdCluster(str(tmp_path), sites=list(SITES))
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def site(cluster):
    """site(node, endpoints=None) -> a started DirectoryClient with .events; all stopped after."""
    clients = []

    def make(node, endpoints=None):
        session = Session(endpoints or cluster.endpoints, *cluster.credentials(node))
        events = []
        client = DirectoryClient(node, session, Signer(node, KEYS[node]), VERIFIER.verify,
                                 events.append, ttl=5, heartbeat=HEARTBEAT, jitter=0)
        client.events = events
        clients.append(client)
        return client.start()

    yield make
    for client in clients:
        client.stop(revoke=False)


def ips_of(client, node):
    return sorted(k.ip for k in client.view.hosts() if k.node == node)


def host(i):
    return f"10.0.3.{128 + i}"


def mac(i):
    return f"02:00:00:00:01:{i:02x}"


def test_publish_watch_withdraw_with_auth(site):
    a, b = site("A"), site("B")
    b.publish(host(1), mac(1))
    wait_until(lambda: ips_of(a, "B") == [host(1)], 10, "A to hold B's host")
    put = next(e for e in a.events if isinstance(e, Put) and e.key.kind == "host")
    assert (put.key.node, put.record["mac"], put.record["seq"]) == ("B", mac(1), 1)
    wait_until(lambda: a.view.alive() == ["A", "B"], 10, "both sites alive")
    b.publish(host(1), mac(2))                      # moved: seq goes up
    wait_until(lambda: a.view.hosts()[layout.Key("host", "B", host(1))]["seq"] == 2, 10, "move")
    b.withdraw(host(1))
    wait_until(lambda: any(isinstance(e, Delete) and e.key.ip == host(1) for e in a.events),
               10, "A to see the withdrawal")
    assert a.session.authentications >= 1 and a.counters["watch-lost"] == 0


def test_a_stale_token_is_replaced(site):
    a = site("A")
    wait_until(lambda: a.view.alive() == ["A"], 10, "A's liveness key")
    before = a.session.authentications
    a.session.http.headers["Authorization"] = "stale.1"     # as after a token's TTL
    assert a.session.call(lambda c: c.get(layout.alive_key("A"))) != []
    assert a.session.authentications == before + 1


def test_another_sites_prefix_is_refused_by_etcd_and_forgeries_by_the_reader(cluster, site):
    a = site("A")
    a.synced.wait(10)
    with pytest.raises(PermissionDenied, match="permission denied"):
        a.session.call(lambda c: c.put(layout.host_key("B", host(1)), "x"))
    # root can write anything: a value under A's prefix signed by B, and one outside A's
    # allowed_ips signed by A, are refused by the reader and counted
    forged = layout.host_key("A", "10.0.3.5")
    cluster.ctl("put", forged, Signer("B", KEYS["B"]).encode(forged, {"ip": "10.0.3.5",
                                                                      "mac": mac(1), "seq": 9}))
    outside = layout.host_key("A", host(7))
    cluster.ctl("put", outside, Signer("A", KEYS["A"]).encode(outside, {"ip": host(7),
                                                                        "mac": mac(7), "seq": 1}))
    wait_until(lambda: a.counters["refused-wrong-signer"] == 1
               and a.counters["refused-outside-allowed-ips"] == 1, 10, "both refused")
    assert ips_of(a, "A") == []


def _publish_steadily(client, count, gap=0.05):
    def run():
        for i in range(1, count + 1):
            client.publish(host(i), mac(i))
            time.sleep(gap)          # a paced writer, not synchronisation
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _puts(client, node):
    return {e.key.ip for e in client.events if isinstance(e, Put) and e.key.node == node
            and e.key.kind == "host"}


def test_a_member_killed_the_client_carries_on_with_no_lost_event(cluster, site):
    a, b = site("A"), site("B")
    a.synced.wait(10)
    writer = _publish_steadily(b, 60)
    wait_until(lambda: len(ips_of(a, "B")) >= 10, 10, "A to see B's first hosts")
    victim = next(n for n, m in cluster.members.items() if m.client_url == a.session.current)
    resyncs = sum(isinstance(e, Resynced) for e in a.events)
    was_leader = cluster.leader() == victim
    killed = time.monotonic()
    cluster.kill(victim)
    wait_until(lambda: sum(isinstance(e, Resynced) for e in a.events) > resyncs, 15,
               "A to relist on another member")
    failover = time.monotonic() - killed
    writer.join(30)
    wait_until(lambda: ips_of(a, "B") == sorted(host(i) for i in range(1, 61)), 20,
               "A to hold all 60 of B's hosts")
    assert _puts(a, "B") == {host(i) for i in range(1, 61)}    # every one as an event
    assert a.session.current != cluster.members[victim].client_url
    print(f"\nfailover after killing {victim} (the leader: {was_leader}): relisted on "
          f"{a.session.current} {failover:.2f}s after the kill")


def test_quorum_lost_and_restored_the_client_relists_and_converges(cluster, site):
    a, b = site("A"), site("B")
    b.publish(host(1), mac(1))
    wait_until(lambda: ips_of(a, "B") == [host(1)], 10, "A to hold B's first host")
    killed = cluster.lose_quorum()
    wait_until(lambda: a.counters["watch-lost"] >= 1, 15, "A to see the watch end")
    b.publish(host(2), mac(2))                       # pending while etcd has no quorum
    assert ips_of(a, "B") == [host(1)]               # A keeps what it holds meanwhile
    restored = time.monotonic()
    for name in killed:
        cluster.restart(name)
    wait_until(lambda: ips_of(a, "B") == [host(1), host(2)], 30, "A to converge")
    converged = time.monotonic() - restored
    wait_until(lambda: a.view.alive() == ["A", "B"], 15, "both sites alive again")
    print(f"\nquorum back: A held B's new host {converged:.2f}s after the restarts began; "
          f"relists {a.counters['relists']}, lease grants A {a.counters['lease-grants']}")


def test_compaction_while_disconnected_is_recovered_by_the_relist(cluster, site):
    m3 = cluster.members["m3"]
    a = site("A", endpoints=[m3.client_url])         # A can reach m3 only
    b = site("B")
    for i in (1, 2, 3):
        b.publish(host(i), mac(i))
    wait_until(lambda: ips_of(a, "B") == [host(1), host(2), host(3)], 10, "A to hold 3 hosts")
    before = a.view.revision
    cluster.kill("m3")                               # A is cut off
    b.withdraw(host(1))
    b.withdraw(host(2))
    wait_until(lambda: b.pending() == 0, 10, "B's withdrawals to land")
    b.publish(host(4), mac(4))      # a second txn: the compaction takes A's next revision too
    wait_until(lambda: b.pending() == 0, 10, "B's new host to land")
    compacted = cluster.compact()
    assert compacted >= before + 2
    # the history A would need is gone: a watch from its revision is refused as compacted
    answers = watch_prefix(b.session, layout.ROOT, before + 1, silence=5)
    with pytest.raises(WatchLost, match="compacted"):
        for _ in range(3):                           # the first answer is "created"
            next(answers)
    back = time.monotonic()
    cluster.restart("m3")
    wait_until(lambda: ips_of(a, "B") == [host(3), host(4)], 30, "A to relist and diff")
    recovered = time.monotonic() - back
    deletes = {e.key.ip for e in a.events if isinstance(e, Delete) and e.revision >= compacted}
    assert deletes == {host(1), host(2)}             # synthesised by the diff
    reason, took = a.last_resync
    print(f"\ncompaction at {compacted} while A was cut off: A converged {recovered:.2f}s after "
          f"m3 restarted; the relist itself took {took * 1000:.1f} ms ({reason})")


def test_a_silent_stream_is_detected_and_left(cluster, site):
    a, b = site("A"), site("B")
    a.synced.wait(10)
    victim = next(n for n, m in cluster.members.items() if m.client_url == a.session.current)
    frozen = time.monotonic()
    cluster.freeze(victim)                           # its sockets stay open, nothing comes
    try:
        wait_until(lambda: a.counters["dead-watches"] >= 1, 4 * HEARTBEAT + 10,
                   "the dead-watch detector")
        detected = time.monotonic() - frozen
        b.publish(host(1), mac(1))
        wait_until(lambda: ips_of(a, "B") == [host(1)], 20, "A to hold B's host via another member")
        assert a.session.current != cluster.members[victim].client_url
        print(f"\nfroze {victim}: detected {detected:.2f}s later (silence limit {a.silence}s)")
    finally:
        cluster.thaw(victim)


def test_watch_answers_are_read_with_progress_notifications(cluster, site):
    """An idle watch still carries answers (the detector relies on them): the cluster's
    progress notifications, and nothing else written."""
    a = site("A")
    a.synced.wait(10)
    revision = int(a.session.call(lambda c: c.post(c.get_url("/kv/range"),
                                                   json={"key": b64(layout.ROOT + "none")}))["header"]
                   ["revision"])
    answers = watch_prefix(a.session, layout.ROOT + "nothing-here/", revision + 1, silence=5)
    assert next(answers) == (revision, [])           # created
    assert next(answers)[1] == []                    # a progress notification, no event

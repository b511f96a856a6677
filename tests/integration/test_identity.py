"""Per-node keys on the lab: each site its own key, claims bound to allowed_ips, reloads."""
import json
import os
import subprocess
import time

from ipop_ryu.core import icc
from ipop_ryu.core.keys import generate_private_key, public_key_of
from ipop_ryu.lab import netns
from ipop_ryu.lab.topology import mesh
from ipop_ryu.lab.traffic import arping, flush_arp, ping

from .util import (add_host, arp_table, controller_alive, flows, peer_states, rest, send_udp,
                   stats, wait_for)

OWN_HOSTS = {"A": "10.0.3.10/32", "B": "10.0.3.30/32", "C": "10.0.3.50/32"}  # mesh(3, 1)


def dropped(site):
    return stats(site)["icc"]["dropped"]


def actions(lines):
    return sorted(line.split(" actions=")[1] for line in lines)


def as_node(link, claimed, msg_type, seq, **fields):
    """A datagram `link`'s node signs with its own valid key, whose payload says `claimed`."""
    return link.encode(msg_type, claimed, seq, time.time(), **fields)


def test_per_node_keys_end_to_end_on_three_sites(lab_factory):
    lab = lab_factory(mesh(3, 1))
    hosts = list(lab.hosts.values())
    with lab.capture("A", "ul0", "udp port 30000") as cap:
        for src in hosts:
            for dst in hosts:
                if src is not dst:
                    assert ping(src, dst.ip, count=1).ok, f"{src.name} -> {dst.name}"
    for site in lab.sites.values():
        assert {(p["name"], p["key"], p["state"]) for p in rest(site, "/ipop/v1/peers")} == \
            {(n, "pair", "up") for n in lab.sites if n != site.name}
        assert dropped(site)["bad_signature"] == 0
    icc_packets = [p["raw"] for p in cap.packets() if p.get("proto") == 17]
    assert icc_packets and all(icc.NODE_MAGIC in raw and icc.MAGIC not in raw
                               for raw in icc_packets), "every datagram signed per pair"


def test_a_node_cannot_speak_for_another_ten_thousand_times(lab_factory):
    """C, with its own valid key, sends as B in every way, and junk in the per-node format:
    all dropped and counted, nothing believed, nothing crashes."""
    lab = lab_factory(mesh(3, 1))
    a, b = lab.sites["A"], lab.sites["B"]
    with lab.capture("A", "ul0", f"udp and src host {b.underlay_ip} and dst port 30000") as cap:
        assert arping(lab.hosts["h10"], "10.0.3.30").ok
        wait_for(lambda: cap.count(lambda p: b'"arp_reply"' in p["raw"]), 5, "B's reply")
    # B's own genuine datagrams to A, sent again (from C's address): never believed twice
    genuine = [p["raw"][p["raw"].index(icc.NODE_MAGIC):] for p in cap.packets()
               if icc.NODE_MAGIC in p["raw"]]
    before = {ip: e["mac"] for ip, e in arp_table(a).items()}
    responder = actions(flows(a, "proxy_arp", "10.0.3.30"))
    c_to_a = lab.link("C", "A")     # dropped before any replay check: C's counter untouched
    claim = {"ip": "10.0.3.30", "mac": "02:00:00:00:00:66"}
    seq = int(time.time() * 1e6)
    honest_header = [as_node(c_to_a, "B", "arp_reply", seq + n, **claim) for n in range(2500)]
    header_b = icc.NODE_MAGIC + b"\x01B"
    forged_header = [header_b + d[len(header_b):] for d in honest_header]   # C's key, B's name
    unsigned = [header_b + bytes(32) + d[len(header_b) + 32:] for d in honest_header]
    junk = [header_b + os.urandom(n % 1400) for n in range(2500)]
    replayed = genuine * (600 // len(genuine) + 1)
    datagrams = honest_header + forged_header + unsigned + junk + replayed
    assert len(datagrams) >= 10000
    send_udp(lab, "C", (a.underlay_ip, 30000), datagrams)
    counts = wait_for(lambda: (lambda d: d if sum(d.values()) >= len(datagrams) else None)(
        dropped(a)), 20, "every datagram counted as dropped", show=lambda: dropped(a))
    assert counts["bad_field"] >= 2500, counts             # signed by C, saying B
    assert counts["bad_signature"] >= 5000, counts         # B's name, not B's key
    assert counts["replay"] + counts["unknown_peer"] >= 600, counts  # from C's address
    assert controller_alive(lab, "A") and "Traceback" not in open(a.log_path).read()
    assert {ip: e["mac"] for ip, e in arp_table(a).items()} == before
    assert actions(flows(a, "proxy_arp", "10.0.3.30")) == responder
    assert ping(lab.hosts["h10"], "10.0.3.30").ok and peer_states(a) == {"B": "up", "C": "up"}


def test_claims_outside_allowed_ips_are_dropped_and_counted(lab_factory):
    lab = lab_factory(mesh(3, 1, allowed_ips=OWN_HOSTS))
    a, c = lab.sites["A"], lab.sites["C"]
    assert arping(lab.hosts["h10"], "10.0.3.30").ok
    owner = arp_table(a)["10.0.3.30"]
    responder = actions(flows(a, "proxy_arp", "10.0.3.30"))
    # a real container at C with an address C may not claim: C learns it, A never does
    host = add_host(lab, "C", "h51", "10.0.3.51", "02:00:0a:00:03:33")
    arping(host, "10.0.3.50", count=1)
    wait_for(lambda: "10.0.3.51" in arp_table(c), 5, "C learns its host")
    wait_for(lambda: stats(a)["icc"]["not_allowed"] >= 1, 5, "C's announcement refused")
    assert "10.0.3.51" not in arp_table(a)
    # C's controller gone, its key claims B's host: a move or a conflict, were it believed
    lab.stop_controller("C")
    c_to_a = lab.link("C", "A")
    seq = int(time.time() * 1e6)
    send_udp(lab, "C", (a.underlay_ip, 30000), [
        as_node(c_to_a, "C", "arp_reply", seq, ip="10.0.3.30", mac="02:00:00:00:00:66"),
        as_node(c_to_a, "C", "bindings", seq + 1, bindings=[["10.0.3.30", "02:00:00:00:00:66"],
                                                            ["10.0.3.99", "02:00:00:00:00:99"]])])
    wait_for(lambda: stats(a)["icc"]["not_allowed"] >= 4, 5, "claims counted")
    row = arp_table(a)["10.0.3.30"]
    assert (row["node"], row["mac"]) == (owner["node"], owner["mac"]) == ("B", owner["mac"])
    assert "10.0.3.99" not in arp_table(a)
    assert actions(flows(a, "proxy_arp", "10.0.3.30")) == responder
    assert stats(a)["table"]["moves"] == stats(a)["table"]["conflicts"] == 0
    assert "ipop_icc_not_allowed_total" in rest(a, "/metrics")


def background_ping(host, ip, count, interval=0.05):
    return subprocess.Popen(netns.exec_argv(host.ns, [
        "ping", "-n", "-c", str(count), "-i", str(interval), "-W", "1", ip]),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def reloaded(lab, *sites):
    answers = {}
    for name in sites:
        proc = lab.reload(name)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        answers[name] = json.loads(proc.stdout)
    return answers


def test_reload_adds_removes_and_rotates_under_traffic(lab_factory):
    lab = lab_factory(mesh(3, 1))
    a, b, c = lab.sites["A"], lab.sites["B"], lab.sites["C"]
    h10, h30, h50 = lab.hosts["h10"], lab.hosts["h30"], lab.hosts["h50"]
    assert ping(h10, h50.ip).ok and ping(h10, h30.ip).ok and ping(h30, h50.ip).ok
    pinger = background_ping(h10, h50.ip, count=200)       # A <-> C all along: 10 s
    try:
        # B leaves A's and C's peers
        with open(lab.peers_path, "w") as f:
            f.write(lab.peers_file_text(sites=[a, c]))
        answers = reloaded(lab, "A", "C")
        assert answers["A"]["removed"] == ["B"] and answers["C"]["removed"] == ["B"]
        assert "10.0.3.30" not in arp_table(a) and not flows(a, "proxy_arp", "10.0.3.30")
        assert set(peer_states(a)) == {"C"}
        # B comes back: exchanging at once (A learns B's host from B's sync, unasked)
        with open(lab.peers_path, "w") as f:
            f.write(lab.peers_file_text())
        assert reloaded(lab, "A", "C")["A"]["added"] == ["B"]
        wait_for(lambda: peer_states(a).get("B") == "up", 5, "B up again at A")
        wait_for(lambda: "10.0.3.30" in arp_table(a), 5, "B's host synced to A")
        # B's key rotated: B first, then its peers
        b_key = generate_private_key()
        with open(b.key_file, "w") as f:
            f.write(b_key + "\n")
        b.public_key = public_key_of(b_key)
        with open(lab.peers_path, "w") as f:
            f.write(lab.peers_file_text())
        answers = reloaded(lab, "B", "A", "C")
        assert sorted(answers["B"]["changed"]) == ["A", "C"] and answers["A"]["changed"] == ["B"]
        output, _ = pinger.communicate(timeout=30)
    finally:
        netns.terminate(pinger)
    assert " 200 received" in output and ", 0% packet loss" in output, output
    # the rotated key is the one in use: a fresh resolution to B's host crosses ICC
    flush_arp(h10)
    before = stats(b)["icc"]["received"]["hello"]
    wait_for(lambda: stats(b)["icc"]["received"]["hello"] > before, 10, "a hello under the "
             "new key")
    assert arping(h10, h30.ip).ok and ping(h10, h30.ip).ok
    assert dropped(a)["bad_signature"] <= 5, "only datagrams sent while the pair rotated"
    assert stats(a)["reloads"] == {"applied": 3, "refused": 0}


def test_a_bad_peers_file_on_reload_keeps_the_running_configuration(lab_factory):
    lab = lab_factory(mesh(2, 1))
    a = lab.sites["A"]
    assert ping(lab.hosts["h10"], "10.0.3.30").ok
    good = open(lab.peers_path).read()
    with open(lab.peers_path, "w") as f:
        f.write(good.replace("allowed_ips = ", "allowed_ips = 10.0.3.0/33, ", 1))
    proc = lab.reload("A")
    assert proc.returncode == 1
    assert "reload refused" in proc.stderr and lab.peers_path in proc.stderr and \
        "[A] allowed_ips" in proc.stderr, proc.stderr
    lab.reload("A", via="signal")
    wait_for(lambda: "reload (SIGHUP) refused" in open(a.log_path).read(), 5,
             "the refused SIGHUP logged")
    with open(a.config_path) as f:
        conf = f.read()
    with open(a.config_path, "w") as f:
        f.write(conf + "this line is not INI\n")
    proc = lab.reload("A")
    assert proc.returncode == 1 and a.config_path in proc.stderr, proc.stderr
    assert stats(a)["reloads"] == {"applied": 0, "refused": 3}
    assert peer_states(a) == {"B": "up"} and "10.0.3.30" in arp_table(a)
    flush_arp(lab.hosts["h10"])
    assert arping(lab.hosts["h10"], "10.0.3.30").ok and ping(lab.hosts["h10"], "10.0.3.30").ok

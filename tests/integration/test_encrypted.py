"""The encrypted lab: sites joined by WireGuard, each keyed with its controller's own key."""
import os
import re
import signal
import sys

from ipop_ryu.lab import wireguard
from ipop_ryu.lab.lab import ENCRYPTED_MTU
from ipop_ryu.lab.topology import seed_two_sites
from ipop_ryu.lab.traffic import arping, flush_arp, is_arp, ping
from ipop_ryu.overlay.wireguard import UAPI_DIR

from .test_cli_lab import alive, lab as lab_cli, lab_json, new_root, remove_root, suffix_of
from .util import flows, n_packets, stats, wait_for

ICMP, UDP = 1, 17


def test_only_wireguard_crosses_the_underlay_while_arp_suppression_works(lab_factory):
    lab = lab_factory(seed_two_sites(encrypt=True))
    a, h3, h5 = lab.sites["A"], lab.hosts["h3"], lab.hosts["h5"]
    with lab.capture("A", "ul0", "") as cap:
        # The underlay resolves its own WireGuard endpoints by ARP (again whenever an entry
        # goes stale, every 15-45 s): flushed here so that the capture surely holds such
        # frames, which must carry underlay addresses only.
        a.exec(["ip", "neigh", "flush", "dev", "ul0"])
        assert ping(h3, "10.0.3.7").ok and arping(h5, "10.0.3.104").ok
        wait_for(lambda: flows(a, "proxy_arp", "10.0.3.7"), 5, "a responder for h7")
        answered = n_packets(flows(a, "proxy_arp", "10.0.3.7"))
        before = stats(a)["icc"]["sent"]["arp_request"]
        flush_arp(h3)
        assert arping(h3, "10.0.3.7").ok and ping(h3, "10.0.3.7").ok
        assert n_packets(flows(a, "proxy_arp", "10.0.3.7")) > answered, "answered by the flow"
        assert stats(a)["icc"]["sent"]["arp_request"] == before, "no relay once learned"
    packets = cap.packets()
    assert packets, "the traffic crossed the underlay"
    endpoints = {s.underlay_ip for s in lab.sites.values()}

    def underlay_arp(p):
        return is_arp(p) and {p["spa"], p["tpa"]} <= endpoints

    def wireguard_udp(p):
        return p.get("proto") == UDP and wireguard.PORT in (p.get("sport"), p.get("dport"))
    assert cap.count(underlay_arp), "the flushed underlay neighbour was resolved again"
    clear = [p for p in packets if not (underlay_arp(p) or wireguard_udp(p))]
    assert clear == [], f"{len(clear)} frames not WireGuard, e.g. {clear[:3]}"
    raw = b"".join(p["raw"] for p in packets)
    for plain in (b"IPON", b"IPOP", b'"arp_reply"', bytes.fromhex("0a000307")):
        assert plain not in raw, f"{plain!r} in clear on the underlay"


def test_full_size_packets_cross_and_one_more_byte_is_refused_locally(lab_factory):
    lab = lab_factory(seed_two_sites(encrypt=True, ipv6=True))
    h3 = lab.hosts["h3"]
    assert lab.mtu == ENCRYPTED_MTU == 1370
    for family, target, headers in (("-4", "10.0.3.7", 28), ("-6", lab.hosts["h7"].ip6, 48)):
        biggest = ENCRYPTED_MTU - headers     # IP and ICMP headers
        ok = h3.exec(["ping", family, "-n", "-c", "2", "-W", "2", "-M", "do", "-s",
                      str(biggest), target], check=False)
        assert ok.returncode == 0 and " 0% packet loss" in ok.stdout, ok.stdout + ok.stderr
        over = h3.exec(["ping", family, "-n", "-c", "1", "-W", "2", "-M", "do", "-s",
                        str(biggest + 1), target], check=False)
        assert over.returncode != 0 and "message too long, mtu" in over.stdout + over.stderr
    # a TCP transfer at full segment size completes (no black hole)
    lab.hosts["h7"].exec(["iperf3", "-s", "-1", "-D", "-B", "10.0.3.7"])
    result = wait_for(lambda: (lambda r: r if r.returncode == 0 else None)(
        h3.exec(["iperf3", "-c", "10.0.3.7", "-n", "8M", "-f", "m"], check=False)), 15,
        "iperf3 to connect")
    assert re.search(r"receiver", result.stdout), result.stdout


def test_bridge_setup_encrypt_between_two_sites(lab_factory, tmp_path):
    """The command for real sites, run in the lab's site namespaces (their own OVS): a
    WireGuard interface keyed with each site's key, a handshake, and a second bridge whose
    tunnel ports point at the peer's tunnel address. Its node ids X, Y keep its ports apart
    from the lab's own ipop-A/ipop-B."""
    lab = lab_factory(seed_two_sites())
    sites = list(lab.sites.values())
    names = {"A": "X", "B": "Y"}
    with open(tmp_path / "peers.conf", "w") as f:
        for site in sites:
            f.write(f"[{names[site.name]}]\nendpoint = 198.51.100.{site.index + 1}:30000\n"
                    f"public_key = {site.public_key}\n"
                    f"wireguard_endpoint = {site.underlay_ip}:{wireguard.PORT}\n\n")
    ipop_ryu = os.path.join(sys.prefix, "bin", "ipop-ryu")
    for site in sites:
        conf = tmp_path / f"{site.name}.conf"
        conf.write_text(f"[ipop]\nnode_id = {names[site.name]}\nprivate_key_file = "
                        f"{site.key_file}\npeers_file = {tmp_path}/peers.conf\n")
        for _ in range(2):          # idempotent: the second run changes nothing
            done = site.exec([ipop_ryu, "bridge", "setup", "br9", "--encrypt", "--config",
                              conf, "--wg-interface", f"wg{lab.suffix}{site.index}"],
                             check=False)
            assert done.returncode == 0, done.stdout + done.stderr
        assert "set the container ports' MTU to 1370" in done.stdout
    a, b = sites
    wait_for(lambda: a.exec(["ping", "-n", "-c", "1", "-W", "1", "198.51.100.2"],
                            check=False).returncode == 0, 10, "A reaches B's tunnel address")
    shown = a.exec(["wg", "show", f"wg{lab.suffix}0"]).stdout
    assert b.public_key in shown and "latest handshake" in shown, shown
    options = a.exec(["ovs-vsctl", "get", "interface", "ipop-Y", "options"]).stdout
    assert '198.51.100.2' in options and a.exec(["ovs-vsctl", "port-to-br", "ipop-Y"]) \
        .stdout.strip() == "br9"
    for site in sites:              # and down again: the interface and its wireguard-go go
        ifname = f"wg{lab.suffix}{site.index}"
        gone = site.exec([ipop_ryu, "bridge", "teardown", "br9", "--encrypt", "--wg-interface",
                          ifname], check=False)
        assert gone.returncode == 0 and f"{ifname}: removed" in gone.stdout, gone.stderr
        assert not os.path.exists(f"{UAPI_DIR}/{ifname}.sock")
        assert ifname not in site.exec(["ip", "-br", "link"]).stdout
    assert "br9" not in a.exec(["ovs-vsctl", "list-br"]).stdout


def test_cli_lab_shows_watches_and_ends_its_wireguard_go():
    """`lab up --encrypt` from one process, `status` and `down` from others: the map names
    the WireGuard addresses, status notices a dead wireguard-go, down ends the others."""
    root = new_root()
    try:
        up = lab_cli(root, "up", "--encrypt")
        assert up.returncode == 0, up.stderr
        sfx = suffix_of(up.stdout)
        assert re.search(rf"encrypted: .*A wg{sfx}0 203\.0\.113\.1/24, B wg{sfx}1 "
                         rf"203\.0\.113\.2/24.* container MTU 1370", up.stdout), up.stdout
        desc = lab_json(root, sfx)
        userspace = [s["pids"]["wireguard-go"] for s in desc["sites"]
                     if "wireguard-go" in s["pids"]]
        assert len(userspace) == (0 if wireguard.kernel_has_wireguard() else 2), desc
        assert all(map(alive, userspace))
        if userspace:
            os.kill(userspace[0], signal.SIGTERM)
            status = wait_for(lambda: (lambda p: p if p.returncode == 1 else None)(
                lab_cli(root, "status")), 10, "status to notice the dead wireguard-go")
            assert f"A: wireguard-go not running; A: wg{sfx}0 missing" in status.stdout, \
                status.stdout
        down = lab_cli(root, "down")
        assert down.returncode == 0, down.stderr
        wait_for(lambda: not any(map(alive, userspace)), 10, "every wireguard-go to end")
    finally:
        remove_root(root)

"""`ipop-ryu flows` run as the installed console script on a lab site driven by ipop-ryu."""
import json
import os
import re
import sys

from ipop_ryu.lab.topology import seed_two_sites
from ipop_ryu.lab.traffic import arping

from .util import flows, one_line_error, wait_for

CLI = os.path.join(sys.prefix, "bin", "ipop-ryu")


def cli(site, *args):
    return site.exec([CLI, *args], check=False)


def test_flows_shows_the_proxy_arp_answers(lab_factory):
    lab = lab_factory(seed_two_sites())
    site, h7 = lab.sites["A"], lab.hosts["h7"]
    assert arping(lab.hosts["h5"], "10.0.3.7").ok                  # learned through site B
    wait_for(lambda: flows(site, "proxy_arp", "10.0.3.7"), 5, "the responder flow")
    result = arping(lab.hosts["h3"], "10.0.3.7")                    # answered by the flow
    assert result.ok and result.mac == h7.mac, result.output
    line = re.compile(rf"proxy-ARP 10\.0\.3\.7 -> {h7.mac} \((\d+) answered\)")

    def answered():
        # ovs-vswitchd folds datapath statistics into its flow table a moment later
        proc = cli(site, "flows", "br0")
        assert proc.returncode == 0, proc.stderr
        m = line.search(proc.stdout)
        return proc.stdout if m and int(m.group(1)) > 0 else None
    out = wait_for(answered, 10, "a non-zero proxy-ARP count")
    assert out.startswith("br0: ") and "proxy_arp: proxy-ARP responder" in out, out
    assert "other:" not in out, "every flow on an ipop-ryu bridge carries our cookie"

    data = json.loads(cli(site, "flows", "--json").stdout)
    [responder] = [f for f in data["flows"] if f["purpose"] == "proxy_arp"]
    assert (responder["ip"], responder["mac"]) == ("10.0.3.7", h7.mac)
    assert responder["n_packets"] > 0 and responder["hard_timeout"] > 0
    assert data["purposes"]["proxy_arp"]["packets"] == responder["n_packets"]
    assert data["bridge"] == "br0" and len(data["flows"]) > 10


def test_unknown_bridge_and_ovs_down(lab_factory):
    lab = lab_factory(seed_two_sites())
    site = lab.sites["A"]
    one_line_error(cli(site, "flows", "br9"), "no bridge named br9 (bridges: br0)")
    lab.stop_ovs("A")
    one_line_error(cli(site, "flows"), "ovs-vswitchd is not running")
    site.ovs.stop()
    one_line_error(cli(site, "flows", "--json"), "Open vSwitch is not running")

"""The site services' command lines (host/services.py) and `ipop-ryu dhcp --print`."""
import pytest

from ipop_ryu.cli import main
from ipop_ryu.core.config import parse
from ipop_ryu.host import CommandError
from ipop_ryu.host import services as host

BASE = {"node_id": "A", "icc": "false", "gateway": "10.0.3.1/24", "site_address": "10.0.3.2",
        "dhcp_range": "10.0.3.100-10.0.3.149"}


def svc(**extra):
    return host.services_of(parse({**BASE, **extra}), "site.conf", "br0")


def argv_of(commands):
    return [list(c.argv) for c in commands]


def test_dnsmasq_serves_the_bridge_port_only_from_the_site_pool():
    argv = host.dnsmasq_argv(svc(dns_hosts_dir="/h", dhcp_lease_file="/l"), user="nobody")
    assert argv[0] == "dnsmasq" and "--keep-in-foreground" in argv
    assert {"--bind-interfaces", "--interface=br0", "--except-interface=lo",
            "--listen-address=10.0.3.1", "--dhcp-range=10.0.3.100,10.0.3.149,255.255.255.0",
            "--dhcp-option=option:router,10.0.3.1", "--dhcp-option=option:dns-server,10.0.3.1",
            "--domain=lxc", "--local=/lxc/", "--dhcp-authoritative", "--dhcp-leasefile=/l",
            "--hostsdir=/h", "--user=nobody", "--conf-file=/dev/null"} <= set(argv)
    assert "--no-ping" not in argv        # the ping check skips addresses some site holds
    assert not any("enable-ra" in a for a in argv)


def test_dnsmasq_sends_ras_for_gateway6_and_uses_dns_domain():
    argv = host.dnsmasq_argv(svc(gateway6="fd00:3::1/64", site_address6="fd00:3::2",
                                 dns_domain="example"))
    assert "--enable-ra" in argv and "--dhcp-range=::,constructor:br0,ra-stateless" in argv
    assert "--domain=example" in argv and "--local=/example/" in argv


def test_no_pool_no_dnsmasq():
    with pytest.raises(CommandError, match=r"dhcp_range"):
        host.dnsmasq_argv(svc(dhcp_range=""))


def test_a_site_without_gateway_has_nothing_to_set_up():
    with pytest.raises(CommandError, match=r"site.conf: \[ipop\] gateway is not set"):
        host.services_of(parse({"node_id": "A", "icc": "false"}), "site.conf", "br0")


def test_setup_puts_the_gateway_on_the_bridge_and_the_host_on_its_own_port():
    s = svc()
    commands = host.setup_commands(s, "eth9", {"net.ipv4.ip_forward": 0})
    argv = argv_of(commands)
    vsctl = " ".join(argv[0])
    assert 'other-config:hwaddr="02:49:50:4f:50:01"' in vsctl
    assert "--may-exist add-port br0 site0" in vsctl and "type=internal" in vsctl
    assert f'mac="{s.site_mac}"' in vsctl and s.site_mac != s.gateway_mac
    assert ["ip", "address", "replace", "10.0.3.1/24", "dev", "br0", "noprefixroute"] in argv
    assert ["ip", "address", "replace", "10.0.3.2/24", "dev", "site0"] in argv
    for key in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
                "net.ipv4.conf.br0.send_redirects=0", "net.ipv4.conf.site0.send_redirects=0",
                "net.ipv4.conf.br0.arp_ignore=1", "net.ipv4.conf.br0.rp_filter=2",
                "net.ipv4.conf.all.arp_ignore=1"):  # no answer from a port's own veth
        assert ["sysctl", "-q", "-w", key] in argv
    assert not any("ipv6" in a for c in argv for a in c)
    nft = commands[-1]
    assert nft.argv == ("nft", "-f", "-")
    assert nft.input.startswith("add table inet ipop_br0\ndelete table inet ipop_br0\n")
    assert 'oifname "eth9" ip saddr 10.0.3.0/24 ip daddr != 10.0.3.0/24 masquerade' in nft.input
    assert "nft -f - <<'EOF'" in str(nft)      # --dry-run prints the ruleset too


def test_setup_with_gateway6_forwards_and_masquerades_ipv6():
    commands = host.setup_commands(svc(gateway6="fd00:3::1/64", site_address6="fd00:3::2"),
                                   "eth9", {})
    argv = argv_of(commands)
    assert ["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"] in argv
    # the host's own IPv6 source in the segment is the site port's, never the gateway's
    for port in ("br0", "site0"):
        assert ["sysctl", "-q", "-w", f"net.ipv6.conf.{port}.disable_ipv6=0"] in argv
    assert ["ip", "-6", "address", "replace", "fd00:3::1/64", "dev", "br0", "noprefixroute",
            "nodad"] in argv
    assert ["ip", "-6", "address", "replace", "fd00:3::2/64", "dev", "site0"] in argv
    assert ["ip", "-6", "route", "replace", "fd00:3::/64", "dev", "site0"] in argv
    assert "ip6 saddr fd00:3::/64 ip6 daddr != fd00:3::/64 masquerade" in commands[-1].input


def test_gateway6_needs_an_ipv6_site_address():
    with pytest.raises(CommandError, match=r"site.conf: \[ipop\] site_address6 is not set"):
        svc(gateway6="fd00:3::1/64")


def test_teardown_removes_what_is_there_and_restores_the_sysctls():
    s = svc()
    saved = {"net.ipv4.ip_forward": 0, "net.ipv4.conf.br0.arp_ignore": 0,
             "net.ipv4.conf.site0.arp_ignore": 0}
    argv = argv_of(host.teardown_commands(s, saved, {"bridge": True, "port": True,
                                                     "table": True, "gateway": True}))
    assert argv[0] == ["nft", "delete", "table", "inet", "ipop_br0"]
    assert ["ip", "address", "del", "10.0.3.1/24", "dev", "br0"] in argv
    assert ["sysctl", "-q", "-w", "net.ipv4.ip_forward=0"] in argv
    assert ["sysctl", "-q", "-w", "net.ipv4.conf.br0.arp_ignore=0"] in argv
    assert not any("site0.arp_ignore" in a for c in argv for a in c)   # gone with the port
    assert "del-port" in argv[-1] and "hwaddr" in argv[-1]
    assert host.teardown_commands(s, {}, {"bridge": True}) == []       # nothing left: no-op


def test_saved_sysctls_survive_ovs_vsctl_quoting():
    saved = {"net.ipv4.ip_forward": 0, "net.ipv4.conf.all.send_redirects": 1}
    # as ovs-vsctl get prints the value setup wrote
    printed = '"' + host._encode(saved) + '"\n'
    assert host.decode_saved(printed) == saved and host.decode_saved("") == {}


def test_dhcp_print(tmp_path, capsys):
    conf = tmp_path / "A.conf"
    conf.write_text("[ipop]\n" + "".join(f"{k} = {v}\n" for k, v in BASE.items()))
    assert main(["dhcp", "--config-file", str(conf), "--print", "--user", "nobody"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("dnsmasq --keep-in-foreground") and "--interface=br0" in line
    assert "--hostsdir=/run/ipop-ryu/A.hosts" in line, "dns_hosts_dir's default"
    assert "--dhcp-leasefile=/var/lib/misc/dnsmasq.ipop-A.leases" in line
    conf.write_text(conf.read_text() + "dns_hosts_dir = /srv/names\n")
    assert main(["dhcp", "--config-file", str(conf), "--print", "--user", "nobody"]) == 0
    assert "--hostsdir=/srv/names" in capsys.readouterr().out, "the option: one place"


def test_dhcp_bad_config_is_one_line(tmp_path, capsys):
    conf = tmp_path / "A.conf"
    conf.write_text("[ipop]\nnode_id = A\nicc = false\ngateway = 10.0.3.1/24\n"
                    "site_address = 10.0.3.2\ndhcp_range = 10.0.4.1-10.0.4.9\n")
    assert main(["dhcp", "--config-file", str(conf), "--print"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dhcp_range" in err[0] and str(conf) in err[0]

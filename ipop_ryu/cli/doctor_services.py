"""doctor's checks of a site's services (what lxc-net gave lxcbr0), when [ipop] gateway is set:
dnsmasq serving on the bridge, the gateway's address and MAC on the bridge's port, the site
port's address, forwarding on, send_redirects off, our NAT table present. The pool inside
allowed_ips is the parser's check (a site file with it outside does not load at all)."""
import subprocess

from ipop_ryu.host import CommandError
from ipop_ryu.host import services as host

from .services import addresses, read_sysctl, table_exists


def dhcp_servers(bridge):
    """Processes with a UDP 67 socket that serves `bridge` (bound to it, or to every
    interface): ['dnsmasq', ...]; None when ss cannot say."""
    proc = subprocess.run(["ss", "-H", "-lunp", "sport = :67"], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        return None
    found = []
    for line in proc.stdout.splitlines():
        fields = line.split()
        local = next((f for f in fields if f.endswith(":67")), "")
        if local.startswith(("0.0.0.0:", "*:")) or f"%{bridge}:" in local:
            found += [part.split('"')[1] for part in line.split("((")[1:]] or ["?"]
    return found


def check(site, bridge, site_port=host.DEFAULT_SITE_PORT):
    options = site.options
    if not options.site_services:
        return []
    try:
        svc = host.services_of(options, site.path, bridge, site_port)
    except CommandError as exc:
        return [str(exc)]
    setup = f"ipop-ryu services setup {bridge} --config-file {site.path}"
    problems = []
    held = addresses(bridge)
    if held is None:
        return [f"no interface {bridge}: create the bridge, then run {setup}"]
    if str(svc.gateway) not in held:
        problems.append(f"{bridge} does not hold the gateway {svc.gateway}: run {setup}")
    mac = _read(f"/sys/class/net/{bridge}/address")
    if mac != svc.gateway_mac:
        problems.append(f"{bridge}'s MAC is {mac}, not gateway_mac {svc.gateway_mac} (every "
                        f"site's gateway answers with the same one): run {setup}")
    if svc.gateway6 and str(svc.gateway6) not in held:
        problems.append(f"{bridge} does not hold the IPv6 gateway {svc.gateway6}: run {setup}")
    on_port = addresses(site_port) or set()
    for name, interface in (("site_address", svc.site_interface),
                            ("site_address6", svc.site_interface6)):
        if interface and str(interface) not in on_port:
            problems.append(f"{site_port} does not hold {name} {interface} (the host's own "
                            f"source in the segment): run {setup}")
    wanted = {"net.ipv4.ip_forward": 1}
    if svc.gateway6:
        wanted["net.ipv6.conf.all.forwarding"] = 1
    for key, value in wanted.items():
        if read_sysctl(key) != value:
            problems.append(f"{key} is off: containers cannot leave the site; run {setup} "
                            f"(or sysctl -w {key}=1)")
    for port in ("all", bridge, site_port):
        key = f"net.ipv4.conf.{port}.send_redirects"
        if read_sysctl(key) == 1:
            problems.append(f"{key} is on: the host would send ICMP redirects to containers "
                            f"for hosts they cannot reach directly; run sysctl -w {key}=0")
    if read_sysctl("net.ipv4.conf.all.arp_ignore") == 0:
        problems.append(f"net.ipv4.conf.all.arp_ignore is 0: with the userspace datapath the "
                        f"kernel answers a container's ARP for the gateway with the MAC of its "
                        f"veth, which no other site has; run {setup}")
    if not table_exists(svc):
        problems.append(f"no NAT for {svc.segment} (nftables table inet {svc.table} missing): "
                        f"run {setup}")
    if svc.dhcp_range is not None:
        servers = dhcp_servers(bridge)
        if servers is not None and "dnsmasq" not in servers:
            problems.append(f"no DHCP server on {bridge} (no dnsmasq on UDP 67"
                            f"{', only ' + ', '.join(servers) if servers else ''}): start it: "
                            f"systemctl start ipop-ryu-dhcp@{site.service.split('@')[1]} (or "
                            f"ipop-ryu dhcp --config-file {site.path} --bridge {bridge})")
    return problems


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip().lower()
    except OSError:
        return None

"""The site host's share of what lxc-net gave a bridge: the anycast gateway on the bridge's own
port, the site host's own address on a port of its own, forwarding, NAT to the uplink, and
dnsmasq's command line. Each piece is a list of commands (argv, optional stdin), so that the
CLI runs them, --dry-run prints them and the unit tests read them.

Why two ports: the gateway's address and MAC are the same at every site, so nothing the host
originates may carry them (an answer would land at whichever site the replier is). The
bridge's LOCAL port holds the gateway (as lxcbr0 held 10.0.3.1) with `noprefixroute`; the site
port (an OVS internal port, its own MAC) holds site_address (and site_address6 with gateway6)
and the segment's routes, so the host's own traffic into the segment leaves from them.
"""
import ipaddress
import json
import re
import shutil
from dataclasses import dataclass
from typing import Optional, Tuple

from ipop_ryu.core.config import site_mac_of

from . import CommandError

DEFAULT_SITE_PORT = "site0"     # not ipop*: overlay_ports' default would take it for a tunnel
SAVED = "ipop-services-saved"   # bridge external_ids key: sysctls as they were before setup
DNSMASQ_HINT = "dnsmasq not found: install it with `apt install dnsmasq-base`"


@dataclass(frozen=True)
class Command:
    argv: Tuple[str, ...]
    input: Optional[str] = None     # stdin (nft -f -)

    def __str__(self):
        line = " ".join(quote(a) for a in self.argv)
        return f"{line} <<'EOF'\n{self.input.rstrip()}\nEOF" if self.input else line


def quote(arg):
    return arg if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", arg) else "'" + \
        arg.replace("'", "'\\''") + "'"


def cmd(*argv, input=None):
    return Command(tuple(map(str, argv)), input)


@dataclass(frozen=True)
class Services:
    """One site's services, from its [ipop] options."""
    bridge: str
    gateway: ipaddress.IPv4Interface
    gateway_mac: str
    site_address: ipaddress.IPv4Address
    dhcp_range: Optional[Tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]] = None
    gateway6: Optional[ipaddress.IPv6Interface] = None
    site_address6: Optional[ipaddress.IPv6Address] = None     # set whenever gateway6 is
    dns_domain: str = "lxc"
    site_port: str = DEFAULT_SITE_PORT
    hosts_dir: str = ""         # [ipop] dns_hosts_dir: the names the controller writes
    lease_file: str = ""        # [ipop] dhcp_lease_file: the controller reads it at start

    @property
    def segment(self):
        return self.gateway.network

    @property
    def site_interface(self):
        return ipaddress.ip_interface(f"{self.site_address}/{self.segment.prefixlen}")

    @property
    def site_interface6(self):
        return self.site_address6 and ipaddress.ip_interface(
            f"{self.site_address6}/{self.gateway6.network.prefixlen}")

    @property
    def site_mac(self):
        return site_mac_of(str(self.site_address))

    @property
    def table(self):
        """Our own nftables table (nft names allow no '-')."""
        return "ipop_" + re.sub(r"[^A-Za-z0-9_]", "_", self.bridge)


def services_of(options, path, bridge, site_port=DEFAULT_SITE_PORT):
    """Services from [ipop] options as core.config parsed them (which already checked that
    they fit together); CommandError naming the option and file when the site has none."""
    def missing(name, example):
        return CommandError(f"{path}: [ipop] {name} is not set (e.g. {name} = {example}): "
                            f"this site has no gateway, DHCP or NAT to set up")
    if options.gateway is None:
        raise missing("gateway", "10.0.3.1/24")
    if options.site_address is None:
        raise missing("site_address", "10.0.3.2")
    if options.gateway6 is not None and options.site_address6 is None:
        raise missing("site_address6", "fd00:3::2")
    pool = options.dhcp_range
    return Services(bridge=bridge, gateway=options.gateway, gateway_mac=options.gateway_mac,
                    site_address=ipaddress.ip_address(options.site_address),
                    dhcp_range=pool and (ipaddress.ip_address(pool.start),
                                         ipaddress.ip_address(pool.end)),
                    gateway6=options.gateway6,
                    site_address6=options.site_address6 and ipaddress.ip_address(
                        options.site_address6),
                    dns_domain=options.dns_domain,
                    site_port=site_port, hosts_dir=options.dns_hosts_dir,
                    lease_file=options.dhcp_lease_file)


# --- dnsmasq ----------------------------------------------------------------------------------

def dnsmasq_argv(svc, user="dnsmasq", program="dnsmasq"):
    """dnsmasq as lxc-net runs it, bound to the bridge's own port only: DHCPv4 from the site's
    slice (router and DNS: the gateway), names under dns_domain, RAs for gateway6. Its ping
    check stays on (the default) for the site's own hosts; the gateway's frames never cross,
    so disjoint pools (checked by the controller) keep other sites' addresses out."""
    if svc.dhcp_range is None:
        raise CommandError(f"no dhcp_range for bridge {svc.bridge}: set [ipop] dhcp_range = "
                           f"START-END (this site's own slice of {svc.segment})")
    start, end = svc.dhcp_range
    domain = svc.dns_domain
    argv = [program, "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null",
            f"--user={user}", "--pid-file",  # no pid file: the caller owns the process
            "--strict-order", "--bind-interfaces", f"--interface={svc.bridge}",
            "--except-interface=lo", f"--listen-address={svc.gateway.ip}",
            f"--dhcp-range={start},{end},{svc.segment.netmask}",
            f"--dhcp-option=option:router,{svc.gateway.ip}",
            f"--dhcp-option=option:dns-server,{svc.gateway.ip}",
            f"--domain={domain}", f"--local=/{domain}/", "--expand-hosts",
            "--dhcp-authoritative", "--dhcp-no-override",
            f"--dhcp-leasefile={svc.lease_file}",
            f"--hostsdir={svc.hosts_dir}"]
    if svc.gateway6:
        # SLAAC only, from the link-local every site shares (gateway_mac's EUI-64)
        argv += ["--enable-ra", f"--dhcp-range=::,constructor:{svc.bridge},ra-stateless",
                 f"--listen-address={svc.gateway6.ip}"]
    return argv


def dnsmasq_user():
    """dnsmasq drops to its own user where the package made one, else to nobody (lxc-net)."""
    import pwd
    try:
        pwd.getpwnam("dnsmasq")
        return "dnsmasq"
    except KeyError:
        return "nobody"


def find_dnsmasq():
    path = shutil.which("dnsmasq", path="/usr/sbin:/sbin:/usr/local/sbin:/usr/bin:/bin")
    if path is None:
        raise CommandError(DNSMASQ_HINT)
    return path


# --- the host's addresses, forwarding and NAT -------------------------------------------------

def sysctls(svc):
    """Every sysctl setup sets, key -> value.

    send_redirects off: the gateway forwards between hosts of one segment (a container at
    another site is reached through the site port), and a redirect would point a container at
    a host it cannot ARP for (the seed's "ICMP redirect" issue). arp_ignore=1 / arp_announce=2:
    the two ports share one L2 segment, so each answers ARP only for its own address and asks
    from it. rp_filter=2 (loose) on the bridge port: the segment's route is via the site port,
    so a strict check would drop what containers send to the gateway. all.arp_ignore=1: with
    the userspace datapath the kernel also receives what arrives on every port (a container's
    veth is a plain interface to it) and would answer a container's ARP for the gateway with
    that veth's own MAC, which means nothing at another site."""
    values = {"net.ipv4.ip_forward": 1, "net.ipv4.conf.all.send_redirects": 0,
              "net.ipv4.conf.all.arp_ignore": 1}
    for port in (svc.bridge, svc.site_port):
        values.update({f"net.ipv4.conf.{port}.send_redirects": 0,
                       f"net.ipv4.conf.{port}.arp_ignore": 1,
                       f"net.ipv4.conf.{port}.arp_announce": 2})
    values[f"net.ipv4.conf.{svc.bridge}.rp_filter"] = 2
    if svc.gateway6:
        values["net.ipv6.conf.all.forwarding"] = 1
        for port in (svc.bridge, svc.site_port):
            values[f"net.ipv6.conf.{port}.disable_ipv6"] = 0
    return values


def nft_ruleset(svc, uplink):
    """Our own table: the segment masqueraded out of the uplink (as lxc-net's iptables rule),
    and forwarding accepted both ways. A drop in another table (a firewall's forward policy)
    still applies: nftables accepts a packet only if every base chain does."""
    nets = [f"ip saddr {svc.segment} ip daddr != {svc.segment}"]
    if svc.gateway6:
        net6 = svc.gateway6.network
        nets.append(f"ip6 saddr {net6} ip6 daddr != {net6}")
    masquerade = "".join(f"\t\toifname \"{uplink}\" {n} masquerade\n" for n in nets)
    ports = f'{{ "{svc.bridge}", "{svc.site_port}" }}'
    return (f"table inet {svc.table} {{\n"
            f"\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; "
            f"policy accept;\n{masquerade}\t}}\n"
            f"\tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n"
            f"\t\tiifname {ports} oifname \"{uplink}\" accept\n"
            f"\t\tiifname \"{uplink}\" oifname {ports} ct state established,related accept\n"
            f"\t}}\n}}\n")


def setup_commands(svc, uplink, saved):
    """The commands that make the site a drop-in for lxc-net; running them again changes
    nothing. saved: the sysctls as they were before the first setup (kept on the bridge for
    teardown)."""
    br, port = svc.bridge, svc.site_port
    commands = [
        cmd("ovs-vsctl", "--timeout=10", "--", "set", "bridge", br,
            f"other-config:hwaddr=\"{svc.gateway_mac}\"",
            f"external_ids:{SAVED}=\"{_encode(saved)}\"",
            "--", "--may-exist", "add-port", br, port,
            "--", "set", "interface", port, "type=internal", f"mac=\"{svc.site_mac}\""),
        # the bridge port's MAC follows hwaddr; set it on the link too (no wait for vswitchd)
        cmd("ip", "link", "set", br, "address", svc.gateway_mac, "up"),
        cmd("ip", "link", "set", port, "address", svc.site_mac, "up"),
    ]
    commands += [cmd("sysctl", "-q", "-w", f"{k}={v}") for k, v in sysctls(svc).items()]
    commands += [
        cmd("ip", "address", "replace", str(svc.gateway), "dev", br, "noprefixroute"),
        cmd("ip", "address", "replace", str(svc.site_interface), "dev", port),
    ]
    if svc.gateway6:
        # the site address: DAD on, as a container's (the overlay's DAD guards it too)
        commands += [cmd("ip", "-6", "address", "replace", str(svc.gateway6), "dev", br,
                         "noprefixroute", "nodad"),
                     cmd("ip", "-6", "address", "replace", str(svc.site_interface6), "dev",
                         port),
                     cmd("ip", "-6", "route", "replace", str(svc.gateway6.network), "dev",
                         port)]
    # "add table" then "delete table": one atomic transaction that works whether or not it
    # was there, and leaves exactly our ruleset
    commands.append(cmd("nft", "-f", "-", input=f"add table inet {svc.table}\n"
                                                f"delete table inet {svc.table}\n"
                        + nft_ruleset(svc, uplink)))
    return commands


def teardown_commands(svc, saved, present):
    """Undo setup: our table, the addresses, the site port, the gateway MAC, and the sysctls
    setup changed put back as they were. present: what exists now (see probe())."""
    br, port = svc.bridge, svc.site_port
    commands = []
    if present.get("table"):
        commands.append(cmd("nft", "delete", "table", "inet", svc.table))
    if present.get("gateway6"):
        commands.append(cmd("ip", "-6", "address", "del", str(svc.gateway6), "dev", br))
    if present.get("gateway"):
        commands.append(cmd("ip", "address", "del", str(svc.gateway), "dev", br))
    # the site port's sysctls go with the port
    commands += [cmd("sysctl", "-q", "-w", f"{k}={v}") for k, v in saved.items()
                 if f".{port}." not in k and (f".{br}." not in k or present.get("bridge"))]
    if present.get("bridge") and (present.get("port") or saved):
        commands.append(cmd("ovs-vsctl", "--timeout=10", "--if-exists", "del-port", br, port,
                            "--", "remove", "bridge", br, "other-config", "hwaddr",
                            "--", "remove", "bridge", br, "external_ids", SAVED))
    return commands


def _encode(saved):
    return json.dumps(saved, separators=(",", ":"), sort_keys=True).replace('"', "'")


def decode_saved(text):
    """The external_ids value setup wrote (ovs-vsctl prints it quoted)."""
    text = text.strip().strip('"').replace("\\'", "'")
    if not text:
        return {}
    try:
        return json.loads(text.replace("'", '"'))
    except ValueError:
        return {}

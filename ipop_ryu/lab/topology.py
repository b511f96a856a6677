"""Lab descriptions: sites, their container hosts, and which controller drives the bridges."""
import ipaddress
import os
import string
from dataclasses import dataclass, field

CONTROLLERS = ("ipop", "simple_switch_13", "normal")
KEY_MODES = ("node", "shared")          # per-node keys and a peers file, or one shared key
# what each site may claim by default: all of the segment (hosts move between sites)
ALLOWED_IPS = "10.0.3.0/24, fd00:3::/64, fe80::/64"
CONTAINER_NET = ipaddress.ip_network("10.0.3.0/24")
CONTAINER_NET6 = ipaddress.ip_network("fd00:3::/64")    # with LabSpec(ipv6=True)


@dataclass
class HostSpec:
    name: str  # also the OVS port name in the site: at most 15 characters
    ip: str


@dataclass
class SiteSpec:
    name: str
    hosts: list


@dataclass
class LabSpec:
    sites: list
    controller: str = "ipop"
    arp_timeout: int = 300
    extra_options: dict = field(default_factory=dict)  # extra [ipop] options for site.conf
    ipv6: bool = False  # containers get IPv6: link-local and fd00:3::N (see host_ipv6)
    keys: str = "node"  # "node": each site its own key (private_key_file, peers_file);
    # "shared": one icc_key_file for all
    allowed_ips: dict = field(default_factory=dict)  # site -> its peers_file allowed_ips
    # (default ALLOWED_IPS; None: no allowed_ips line, any address)
    encrypt: bool = False  # sites joined by WireGuard: VXLAN and ICC inside, on TUNNEL_NET
    services: bool = False  # each site the anycast gateway, its site address, dnsmasq (its
    # own pool), NAT to its uplink, and an upstream at UPSTREAM_IP (see services_options);
    # with ipv6 also GATEWAY6's router advertisements and an IPv6 site address

    def validate(self):
        if self.controller not in CONTROLLERS:
            raise ValueError(f"controller must be one of {CONTROLLERS}")
        if self.keys not in KEY_MODES:
            raise ValueError(f"keys must be one of {KEY_MODES}")
        if self.encrypt and self.controller != "ipop":
            raise ValueError("encrypt needs the ipop controller (its keys key WireGuard)")
        names = [s.name for s in self.sites]
        hosts = [h for s in self.sites for h in s.hosts]
        if self.services and len(self.sites) > MAX_SERVICE_SITES:
            raise ValueError(f"services: at most {MAX_SERVICE_SITES} sites (one pool each)")
        ips = [h.ip for h in hosts]
        if len(set(names)) != len(names) or "ul" in names:
            raise ValueError(f"site names must be unique and not 'ul': {names}")
        if not 1 <= len(self.sites) <= 250:
            raise ValueError("1 to 250 sites")
        if len({h.name for h in hosts}) != len(hosts) or len(set(ips)) != len(ips):
            raise ValueError("host names and ips must be unique across the lab")
        for s in self.sites:
            # ipop-<peer> must fit IFNAMSIZ; site names also end up in namespace names.
            if not s.name.isalnum() or len(s.name) > 10:
                raise ValueError(f"site name {s.name!r}: alphanumeric, at most 10 chars")
        for h in hosts:
            if not 0 < len(h.name) <= 15 or h.name in ("ul0", "br0", "lo") \
                    or h.name.startswith("ipop"):
                raise ValueError(f"bad host name {h.name!r}")
            if ipaddress.ip_address(h.ip) not in CONTAINER_NET:
                raise ValueError(f"host ip {h.ip} outside {CONTAINER_NET}")
            if self.services and (h.ip == GATEWAY.split("/")[0]
                                  or ipaddress.ip_address(h.ip) in SERVICE_BLOCK):
                raise ValueError(f"host ip {h.ip}: with services, {SERVICE_BLOCK} holds the "
                                 f"pools and site addresses, {GATEWAY} is the gateway")
        return self


def seed_two_sites(controller="ipop", **kw):
    """The IPOP seed picture: A{h3, h5} and B{h7, h104}."""
    return LabSpec([SiteSpec("A", [HostSpec("h3", "10.0.3.3"), HostSpec("h5", "10.0.3.5")]),
                    SiteSpec("B", [HostSpec("h7", "10.0.3.7"), HostSpec("h104", "10.0.3.104")])],
                   controller=controller, **kw)


def mesh(n_sites, hosts_per_site, controller="ipop", **kw):
    """Sites A, B, C, ...; host j (0-based) of site i is h<N> with ip 10.0.3.<N>,
    N = 10 + 20*i + j: site A uses .10-.29, B .30-.49, ... (up to 6 sites x 20 hosts)."""
    if not 1 <= n_sites <= 6 or not 0 <= hosts_per_site <= 20:
        raise ValueError("mesh supports 1-6 sites and 0-20 hosts per site")
    sites = []
    for i in range(n_sites):
        numbers = [10 + 20 * i + j for j in range(hosts_per_site)]
        sites.append(SiteSpec(string.ascii_uppercase[i],
                              [HostSpec(f"h{n}", f"10.0.3.{n}") for n in numbers]))
    return LabSpec(sites, controller=controller, **kw)


def host_ipv6(ip):
    """The container's global IPv6 address with LabSpec(ipv6=True): 10.0.3.N -> fd00:3::N
    (N's decimal digits read as hex, so it looks the same)."""
    return f"fd00:3::{ip.rsplit('.', 1)[1]}"


def host_mac(ip):
    """Deterministic locally administered MAC: 10.0.3.5 -> 02:00:0a:00:03:05."""
    return "02:00:" + ":".join(f"{b:02x}" for b in ipaddress.ip_address(ip).packed)


def tunnel_ip(index):
    """WireGuard address of the site at position index (encrypted labs): 203.0.113.(index+1)
    (TEST-NET-3; TEST-NET-2 is the stand-in internet of LabSpec(services=True))."""
    return f"203.0.113.{index + 1}"


def underlay_ip(index):
    """Underlay address of the site at position index: 192.0.2.(index+1)."""
    return f"192.0.2.{index + 1}"


def vni(index_a, index_b):
    """VXLAN id unique per unordered site pair (the kernel refuses duplicate id+port)."""
    lo, hi = sorted((index_a, index_b))
    return 1000 + 256 * lo + hi


# --- LabSpec(services=True): what lxc-net gave each host, per site -----------------------------
GATEWAY = "10.0.3.1/24"         # the anycast gateway, the same at every site
GATEWAY6 = "fd00:3::1/64"       # and its IPv6 one, with LabSpec(services=True, ipv6=True)
UPSTREAM_IP = "198.51.100.1"    # the stand-in internet (TEST-NET-2), on the underlay's wire
UPSTREAM_PREFIX = 24
POOL_SIZE, POOL_BASE, POOL_STRIDE = 18, 130, 20     # site i's pool: .130+20i to .147+20i
SITE_ADDRESS_BASE = 248                             # site i's own address: .248+i
MAX_SERVICE_SITES = 6
# pools and site addresses: no hand-set host may use these (mesh hosts are .10-.129)
SERVICE_BLOCK = ipaddress.ip_network(f"10.0.3.{POOL_BASE}/25", strict=False)   # .128-.255


def uplink_ip(index):
    """Site i's address towards the upstream, on its underlay link: 198.51.100.(101+i)."""
    return f"198.51.100.{101 + index}"


def site_address(index):
    return f"10.0.3.{SITE_ADDRESS_BASE + index}"


def dhcp_pool(index):
    """(first, last) of site i's own DHCP slice."""
    first = POOL_BASE + POOL_STRIDE * index
    return f"10.0.3.{first}", f"10.0.3.{first + POOL_SIZE - 1}"


def services_allowed_ips(index, host_ips):
    """What site i may claim when each site serves its own pool: its hand-set hosts, its site
    address and its pool (other sites' pools may not overlap it), and IPv6 as before."""
    first, last = map(ipaddress.ip_address, dhcp_pool(index))
    nets = [ipaddress.ip_network(ip) for ip in (*host_ips, site_address(index))]
    nets += ipaddress.summarize_address_range(first, last)
    return ", ".join([str(n) for n in ipaddress.collapse_addresses(nets)] +
                     [part.strip() for part in ALLOWED_IPS.split(",")[1:]])


def services_options(index, rundir, ipv6=False):
    """The [ipop] options of site i's services (its names and leases in rundir); with ipv6,
    router advertisements for CONTAINER_NET6 from GATEWAY6 and the site host's own address
    there."""
    options = {"gateway": GATEWAY, "site_address": site_address(index),
               "dhcp_range": "-".join(dhcp_pool(index)),
               "dns_hosts_dir": os.path.join(rundir, "hosts"),
               "dhcp_lease_file": os.path.join(rundir, "dnsmasq.leases")}
    if ipv6:
        options.update(gateway6=GATEWAY6, site_address6=host_ipv6(site_address(index)))
    return options

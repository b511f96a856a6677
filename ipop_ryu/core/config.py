"""The `[ipop]` options, validated without any framework.

The Ryu shell reads raw strings with oslo.config and hands them to `parse`, which returns
`Options` or raises ConfigError naming the option, the bad value and the file it came from.
"""
import configparser
import ipaddress
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

from .addr import Subnets
from .icc import is_node_id
from .keys import decode_key, pair_keys, public_key_of

GATEWAY_MAC = "02:49:50:4f:50:01"     # locally administered, "IPOP" 01
DNS_HOSTS_DIR = "/run/ipop-ryu/{node_id}.hosts"
DHCP_LEASE_FILE = "/var/lib/misc/dnsmasq.ipop-{node_id}.leases"     # beside lxc-net's
PORT_SECURITY = ("none", "dhcp")

# name -> (default as written in a config file, help); docs/reference/options.md is made from it
OPTIONS: Dict[str, Tuple[Optional[str], str]] = {
    "node_id": (None, "this controller's name, unique in the overlay (required)"),
    "icc": ("true", "inter-controller communication on/off; off = one-site switch with local "
                    "proxy ARP"),
    "icc_address": ("0.0.0.0", "UDP bind address for ICC"),
    "icc_port": ("30000", "ICC UDP port"),
    "peers": ("", "comma list NAME@HOST:PORT of the other controllers"),
    "overlay_ports": ("ipop*", "comma list of OVS port names leading to other sites; a "
                               "trailing * is a prefix"),
    "icc_key_file": (None, "file holding the shared secret; every ICC datagram is signed with "
                           "it (required when icc is on without private_key_file; weaker: "
                           "any holder can sign as any node)"),
    "private_key_file": (None, "this node's private key as `wg genkey` writes it; ICC "
                               "datagrams between two nodes are then signed with a key only "
                               "those two share (peers_file gives each peer's public_key)"),
    "peers_file": (None, "INI file, one section per node id: endpoint = HOST:PORT, "
                         "public_key = BASE64, allowed_ips = CIDR, CIDR (what the node may "
                         "claim; absent = any), wireguard_endpoint = HOST:PORT; adds to peers, "
                         "re-read on SIGHUP"),
    "arp_timeout": ("300", "seconds a learned neighbour, IPv4 (ARP) or IPv6 (ND), lives "
                           "without refresh"),
    "announce": ("true", "announce local hosts to every peer before anyone asks (refreshed "
                         "every arp_timeout/3, withdrawn when gone); false = pull only"),
    "pending_timeout": ("5", "seconds a relayed ARP request waits for its reply"),
    "hello_interval": ("5", "seconds between hellos to each peer"),
    "peer_hold_time": ("15", "a peer silent this long is down: its entries are withdrawn"),
    "punt_rate": ("100", "ARP packets/s one port may send to the controller (an OpenFlow "
                         "meter per port; 0 = no meter)"),
    "overlay_subnet": ("", "comma list of IPv4 and IPv6 CIDRs; addresses of a listed family "
                           "outside them are never learned"),
    "icc_freshness": ("30", "seconds an ICC datagram's timestamp may differ from our clock "
                            "(replay protection; keep the sites' clocks in sync with NTP)"),
    "switch_address": ("", "the bridge's OpenFlow listener to dial, unix:PATH or tcp:HOST:PORT "
                           "(the bridge's controller set to punix:PATH / ptcp:PORT:HOST); "
                           "empty = wait for the bridge to connect to us"),
    # site services, in place of lxc-net (the host side runs dnsmasq and NAT from these)
    "gateway": ("", "ADDRESS/PREFIX of the anycast gateway on the bridge's own port, the same "
                    "at every site, e.g. 10.0.3.1/24; answered at each site, never crosses "
                    "the overlay; empty = no site services"),
    "gateway6": ("", "ADDRESS/PREFIX of the IPv6 anycast gateway, e.g. fd00:3::1/64 (router "
                     "advertisements for the prefix, kept inside the site); empty = none"),
    "gateway_mac": (GATEWAY_MAC, "the gateway's MAC, the same at every site (the bridge's "
                                 "own port carries it)"),
    "site_address": ("", "the site host's own address in gateway's segment, unique per site "
                         "(a local host like any container: the anycast address cannot be a "
                         "source)"),
    "site_address6": ("", "with gateway6: the site host's own IPv6 address in gateway6's "
                          "prefix, unique per site (as site_address)"),
    "dhcp_range": ("", "START-END of this site's DHCPv4 pool: inside gateway's prefix and "
                       "this site's allowed_ips, clear of the gateway, site_address and every "
                       "other site's allowed_ips; empty = no DHCP"),
    "dns_domain": ("lxc", "the domain of the names the site's DHCP server gives out"),
    "dns_hosts_dir": ("", "directory of the hosts file the controller writes (every host of "
                          "another site that has a name: ADDRESS NAME NAME.dns_domain), "
                          "dnsmasq's --hostsdir; empty = /run/ipop-ryu/NODE_ID.hosts"),
    "dhcp_lease_file": ("", "dnsmasq's lease file (ipop-ryu dhcp's --dhcp-leasefile); the "
                            "controller reads it at start, so that with port_security its "
                            "leased hosts keep speaking before they renew; empty = "
                            "/var/lib/misc/dnsmasq.ipop-NODE_ID.leases"),
    "static_hosts": ("", "comma list MAC=IP of this site's hosts with fixed addresses: with "
                         "port_security = dhcp they may speak for IP as if they had leased it "
                         "(the site port's own site_address is always one)"),
    "port_security": ("none", "none, or dhcp: a local port speaks only for the addresses "
                              "its MAC leased"),
}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Peer:
    name: str
    host: str
    port: int
    public_key: Optional[str] = None            # base64, as `wg pubkey` prints it
    allowed_ips: Optional[Subnets] = None       # what it may claim; None: any address
    wireguard_endpoint: Optional[Tuple[str, int]] = None   # its WireGuard on the underlay

    def allows(self, ip: str) -> bool:
        return self.allowed_ips is None or ip in self.allowed_ips

    @property
    def addr(self):
        return (self.host, self.port)


@dataclass(frozen=True)
class Options:
    node_id: str
    icc: bool = True
    icc_address: str = "0.0.0.0"
    icc_port: int = 30000
    peers: Tuple[Peer, ...] = ()
    overlay_ports: Tuple[str, ...] = ("ipop*",)
    icc_key: bytes = field(default=b"", repr=False)
    icc_key_file: str = ""
    private_key: bytes = field(default=b"", repr=False)     # raw X25519, per-node keys
    private_key_file: str = ""
    peers_file: str = ""
    own: Optional[Peer] = None                  # this node's own section of peers_file
    arp_timeout: int = 300
    announce: bool = True
    pending_timeout: int = 5
    hello_interval: float = 5.0
    peer_hold_time: float = 15.0
    icc_freshness: float = 30.0
    punt_rate: int = 100
    overlay_subnet: Subnets = Subnets(())
    switch_address: Optional["SwitchAddress"] = None
    gateway: Optional[ipaddress.IPv4Interface] = None     # .ip, .network, .with_prefixlen
    gateway6: Optional[ipaddress.IPv6Interface] = None
    gateway_mac: str = GATEWAY_MAC
    site_address: Optional[str] = None
    site_address6: Optional[str] = None
    dhcp_range: Optional["AddressRange"] = None
    dns_domain: str = "lxc"
    port_security: str = "none"
    dns_hosts_dir: str = ""
    dhcp_lease_file: str = ""
    static_hosts: Tuple[Tuple[str, str], ...] = ()          # (mac, ip)

    @property
    def site_services(self) -> bool:
        """The site serves its segment (gateway, DHCP, RAs) instead of a host's lxc-net."""
        return self.gateway is not None

    @property
    def gateway_link_local(self) -> Optional[str]:
        """fe80:: EUI-64 of gateway_mac: the router address of every site's RAs."""
        return link_local_of(self.gateway_mac) if self.gateway6 is not None else None

    @property
    def gateway_addresses(self) -> Tuple[str, ...]:
        """Addresses no host may claim and the controller never learns: the anycast gateway."""
        found = []
        if self.gateway is not None:
            found.append(str(self.gateway.ip))
        if self.gateway6 is not None:
            found += [str(self.gateway6.ip), self.gateway_link_local]
        return tuple(found)

    @property
    def unrestricted_peers(self) -> Tuple[str, ...]:
        """Peers with no allowed_ips: they may claim any address (warned about at start)."""
        return tuple(p.name for p in self.peers if p.allowed_ips is None)

    def in_overlay(self, ip: str) -> bool:
        """Inside the configured subnets of ip's family (a family none is given for: yes)."""
        return not self.overlay_subnet.restricts(ip) or ip in self.overlay_subnet

    def is_overlay_port(self, name: str) -> bool:
        """`ipop*` is a prefix; other names match exactly (no other wildcard is special)."""
        for pattern in self.overlay_ports:
            if pattern.endswith("*") and name.startswith(pattern[:-1]) or name == pattern:
                return True
        return False


def _bool(text):
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _int_in(low, high):
    def check(text):
        value = int(text.strip())
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value
    return check


def _seconds(low, high):
    def check(text):
        value = float(text.strip())
        if not low <= value <= high:
            raise ValueError(f"expected seconds from {low:g} to {high:g}")
        return value
    return check


def _subnets(text):
    return Subnets(part.strip() for part in text.split(",") if part.strip())


def _address(text):
    return str(ipaddress.ip_address(text.strip()))


def _node_id(text):
    if not is_node_id(text.strip()):
        raise ValueError("expected 1-64 letters, digits, '.', '_' or '-', starting with a "
                         "letter or digit")
    return text.strip()


def _host_port(text):
    host, colon, port = text.strip().rpartition(":")
    if not colon:
        raise ValueError(f"{text.strip()!r} is not HOST:PORT")
    return _address(host.strip("[]")), _int_in(1, 65535)(port)


def _peers(text):
    peers = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, at, hostport = item.partition("@")
        if not at or ":" not in hostport:
            raise ValueError(f"{item!r} is not NAME@HOST:PORT")
        peers.append(Peer(_node_id(name), *_host_port(hostport)))
    names = [p.name for p in peers]
    if len(set(names)) != len(names):
        raise ValueError("a peer name appears twice")
    return tuple(peers)


@dataclass(frozen=True)
class SwitchAddress:
    """Where the controller dials its bridge: family AF_UNIX (path) or TCP (host, port)."""
    kind: str                   # "unix" or "tcp"
    target: object              # the path, or (host, port)

    def __str__(self):
        if self.kind == "unix":
            return f"unix:{self.target}"
        host, port = self.target
        return f"tcp:[{host}]:{port}" if ":" in host else f"tcp:{host}:{port}"


def _switch_address(text):
    text = text.strip()
    if not text:
        return None
    kind, _, rest = text.partition(":")
    if kind == "unix" and rest.startswith("/"):
        return SwitchAddress("unix", rest)
    host, colon, port = rest.rpartition(":")
    if kind == "tcp" and colon:
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            return SwitchAddress("tcp", (_address(host), _int_in(1, 65535)(port)))
        except ValueError as exc:
            raise ValueError(f"{exc} (expected unix:/PATH or tcp:HOST:PORT)") from None
    raise ValueError("expected unix:/PATH or tcp:HOST:PORT, e.g. "
                     "unix:/var/run/openvswitch/br0.ipop")


@dataclass(frozen=True)
class AddressRange:
    """START-END, both included, of one family."""
    start: str
    end: str

    def __contains__(self, ip) -> bool:
        try:
            value = ipaddress.ip_address(ip)
        except ValueError:
            return False
        first = ipaddress.ip_address(self.start)
        return value.version == first.version and first <= value <= \
            ipaddress.ip_address(self.end)

    def networks(self):
        """The range as the fewest CIDR networks."""
        return ipaddress.summarize_address_range(ipaddress.ip_address(self.start),
                                                 ipaddress.ip_address(self.end))

    def overlaps(self, network) -> bool:
        return any(net.overlaps(network) for net in self.networks()
                   if net.version == network.version)

    def within(self, networks) -> bool:
        """Every address of the range in one of networks (of its family)."""
        return all(any(net.subnet_of(outer) for outer in networks
                       if outer.version == net.version) for net in self.networks())

    def __str__(self):
        return f"{self.start}-{self.end}"


def _interface(version):
    def check(text):
        text = text.strip()
        if not text:
            return None
        if "/" not in text:
            raise ValueError("expected ADDRESS/PREFIX, e.g. "
                             + ("10.0.3.1/24" if version == 4 else "fd00:3::1/64"))
        value = ipaddress.ip_interface(text)
        if value.version != version:
            raise ValueError(f"expected an IPv{version} address")
        if value.ip.is_multicast or value.ip.is_unspecified or value.ip.is_link_local:
            raise ValueError("expected a unicast address of the segment")
        if value.network.num_addresses > 2 and value.ip in (value.network.network_address,
                                                             value.network.broadcast_address):
            raise ValueError(f"{value.ip} is the network's own address, not a host's")
        return value
    return check


def _mac(text):
    text = text.strip().lower().replace("-", ":")
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p)
                                  for p in parts):
        raise ValueError("expected a MAC like 02:49:50:4f:50:01")
    if int(parts[0], 16) & 1 or text == "00:00:00:00:00:00":
        raise ValueError("expected a unicast MAC (the first byte even)")
    return text


def _optional_address(text):
    return _address(text) if text.strip() else None


def _range(text):
    text = text.strip()
    if not text:
        return None
    start, dash, end = text.partition("-")
    if not dash:
        raise ValueError("expected START-END, e.g. 10.0.3.10-10.0.3.99")
    first, last = ipaddress.ip_address(start.strip()), ipaddress.ip_address(end.strip())
    if first.version != 4 or last.version != 4:
        raise ValueError("expected IPv4 addresses (DHCPv4)")
    if first > last:
        raise ValueError(f"{first} comes after {last}")
    return AddressRange(str(first), str(last))


def _domain(text):
    text = text.strip().rstrip(".").lower()
    labels = text.split(".")
    if not text or len(text) > 253 or not all(
            0 < len(label) <= 63 and label[0] != "-" and label[-1] != "-"
            and all(c.isascii() and (c.isalnum() or c == "-") for c in label)
            for label in labels):
        raise ValueError("expected a DNS domain, e.g. lxc")
    return text


def _choice(*choices):
    def check(text):
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"expected {' or '.join(choices)}")
        return value
    return check


def _static_hosts(text):
    pairs = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        mac, equals, ip = part.partition("=")
        if not equals:
            raise ValueError(f"{part!r}: expected MAC=IP, e.g. 02:00:00:00:03:07=10.0.3.7")
        try:
            pairs.append((_mac(mac), _address(ip)))
        except ValueError as exc:
            raise ValueError(f"{part!r}: {exc}") from None
    return tuple(pairs)


def site_mac_of(site_address: str) -> str:
    """The site port's MAC: stable per site (it follows site_address), locally administered,
    not the gateway's."""
    return "02:49:53:" + ":".join(f"{b:02x}" for b in
                                  ipaddress.ip_address(site_address).packed[-3:])


def slaac_of(network, mac: str) -> str:
    """The address SLAAC forms in a /64 network from mac: its modified EUI-64 (RFC 4291
    appendix A) as the interface identifier."""
    raw = bytearray(bytes.fromhex(mac.replace(":", "")))
    raw[0] ^= 0x02
    iid = bytes(raw[:3]) + b"\xff\xfe" + bytes(raw[3:])
    return str(ipaddress.IPv6Address(network.network_address.packed[:8] + iid))


def link_local_of(mac: str) -> str:
    """fe80::/64 with the modified EUI-64 of mac, as SLAAC forms it."""
    return slaac_of(ipaddress.IPv6Network("fe80::/64"), mac)


def _patterns(text):
    patterns = tuple(filter(None, (part.strip() for part in text.split(","))))
    for pattern in patterns:
        if "*" in pattern[:-1] or any(c in pattern for c in "?[]"):
            raise ValueError(f"{pattern!r}: only a trailing '*' is allowed")
    return patterns


PARSERS: Dict[str, Callable] = {
    "node_id": _node_id, "icc": _bool, "icc_address": _address,
    "icc_port": _int_in(1, 65535), "peers": _peers, "overlay_ports": _patterns,
    "icc_key_file": str.strip, "arp_timeout": _int_in(1, 86400), "announce": _bool,
    "pending_timeout": _int_in(1, 600),
    "hello_interval": _seconds(0.1, 3600), "peer_hold_time": _seconds(0.3, 86400),
    "icc_freshness": _seconds(1, 86400), "punt_rate": _int_in(0, 1000000),
    "overlay_subnet": _subnets, "switch_address": _switch_address,
    "private_key_file": str.strip, "peers_file": str.strip,
    "gateway": _interface(4), "gateway6": _interface(6), "gateway_mac": _mac,
    "site_address": _optional_address, "site_address6": _optional_address,
    "dhcp_range": _range, "dns_domain": _domain,
    "port_security": _choice(*PORT_SECURITY), "dns_hosts_dir": str.strip,
    "dhcp_lease_file": str.strip,
    "static_hosts": _static_hosts,
}

PEER_KEYS = ("endpoint", "public_key", "allowed_ips", "wireguard_endpoint")


def _allowed_ips(text):
    if not text.strip():
        raise ValueError("empty: list CIDRs, or leave the line out to allow any address")
    try:
        return _subnets(text)
    except ValueError as exc:
        raise ValueError(f"{exc} (expected CIDR, CIDR: IPv4 and IPv6 networks)") from None


def read_peers_file(path: str) -> Dict[str, Peer]:
    """node id -> Peer, from an INI file with one section per node (this node's own may be
    there too); ValueError naming the file, the section and the key."""
    ini = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"),
                                    default_section="\0none")
    try:
        with open(path) as handle:
            ini.read_file(handle)
    except OSError as exc:
        raise ValueError(f"{path!r}: {exc.strerror}") from None
    except configparser.Error as exc:
        raise ValueError(f"{path!r}: {' '.join(str(exc).split())}") from None
    peers = {}
    for name in ini.sections():
        section = ini[name]
        def bad(key, message):
            return ValueError(f"{path!r}: [{name}] {key}: {message}")
        if not is_node_id(name):
            raise bad("section", "a node id is 1-64 letters, digits, '.', '_' or '-'")
        unknown = [key for key in section if key not in PEER_KEYS]
        if unknown:
            raise bad(unknown[0], f"unknown key (expected {', '.join(PEER_KEYS)})")
        if "endpoint" not in section:
            raise bad("endpoint", "is required (HOST:PORT of its ICC)")
        values = {}
        for key, parser in (("endpoint", _host_port), ("public_key", _public_key),
                            ("allowed_ips", _allowed_ips), ("wireguard_endpoint", _host_port)):
            if key in section:
                try:
                    values[key] = parser(section[key])
                except ValueError as exc:
                    raise bad(key, f"{section[key].strip()!r}: {exc}") from None
        host, port = values.pop("endpoint")
        peers[name] = Peer(name, host, port, **values)
    return peers


def _public_key(text):
    decode_key(text)
    return text.strip()


def parse(raw: Dict[str, Optional[str]], source: Callable[[str], str] = lambda name: "") \
        -> Options:
    """raw: option name -> string (None when unset). source(name) names where it was set."""
    def fail(name, message):
        where = source(name)
        raise ConfigError(f"{where + ': ' if where else ''}[ipop] {name}: {message}")

    values = {}
    for name, parser in PARSERS.items():
        text = raw.get(name)
        if text is None:
            text = OPTIONS[name][0]
        if text is None:
            continue
        try:
            values[name] = parser(str(text))
            if values[name] is None:
                del values[name]
        except ValueError as exc:
            fail(name, f"{text!r}: {exc}")
    if "node_id" not in values:
        fail("node_id", "is required")
    node = values["node_id"]
    if any(p.name == node for p in values["peers"]):
        fail("peers", f"lists this node ({node}) itself")
    if values["peer_hold_time"] <= values["hello_interval"]:
        fail("peer_hold_time", f"must be longer than hello_interval "
                               f"({values['hello_interval']:g}s)")
    if values.get("peers_file"):
        try:
            listed = read_peers_file(values["peers_file"])
        except ValueError as exc:
            fail("peers_file", str(exc))
        values["own"] = listed.pop(node, None)
        twice = sorted(set(listed) & {p.name for p in values["peers"]})
        if twice:
            fail("peers_file", f"{values['peers_file']!r}: [{twice[0]}] is in peers too")
        values["peers"] = values["peers"] + tuple(listed[name] for name in sorted(listed))
    if values["icc"]:
        _keys(values, fail)
    _site_services(values, fail)
    values["dns_hosts_dir"] = values.get("dns_hosts_dir") or DNS_HOSTS_DIR.format(node_id=node)
    values["dhcp_lease_file"] = values.get("dhcp_lease_file") or \
        DHCP_LEASE_FILE.format(node_id=node)
    return Options(**values)


def _site_services(values, fail):
    """site_address and dhcp_range against gateway, this site's allowed_ips and the others'."""
    gateway = values.get("gateway")
    for name in ("site_address", "dhcp_range", "gateway6"):
        if values.get(name) is not None and gateway is None:
            fail(name, "needs gateway (the segment's ADDRESS/PREFIX) to be set")
    if values.get("site_address6") is not None and values.get("gateway6") is None:
        fail("site_address6", "needs gateway6 (the segment's IPv6 ADDRESS/PREFIX) to be set")
    if gateway is None:
        return
    own, peers_file = values.get("own"), values.get("peers_file")
    site = values.get("site_address")
    for name, gw in (("site_address", gateway), ("site_address6", values.get("gateway6"))):
        if values.get(name) is not None:
            _site_address(name, values[name], gw, own, peers_file, fail)
    network = gateway.network
    for mac, ip in values.get("static_hosts", ()):
        if own is not None and not own.allows(ip):
            fail("static_hosts", f"{mac}={ip}: {ip} is outside this site's allowed_ips in "
                                 f"{peers_file!r}")
    pool = values.get("dhcp_range")
    if pool is None:
        return
    if not pool.within([network]):
        fail("dhcp_range", f"{pool} is not inside gateway's prefix {network}")
    if ipaddress.ip_address(pool.start) == network.network_address or \
            ipaddress.ip_address(pool.end) == network.broadcast_address:
        fail("dhcp_range", f"{pool} includes {network}'s network or broadcast address")
    for name, address in (("gateway", str(gateway.ip)), ("site_address", site)):
        if address is not None and address in pool:
            fail("dhcp_range", f"{pool} contains the {name} {address}")
    if own is not None and own.allowed_ips is not None and \
            not pool.within(own.allowed_ips.networks):
        fail("dhcp_range", f"{pool} is not inside this site's allowed_ips "
                           f"{_cidrs(own.allowed_ips)} in {peers_file!r}")
    for peer in values["peers"]:
        clash = next((net for net in (peer.allowed_ips.networks if peer.allowed_ips else ())
                      if pool.overlaps(net)), None)
        if clash is not None:
            where = f" in {peers_file!r}" if peers_file else ""
            fail("dhcp_range", f"{pool} overlaps [{peer.name}]'s allowed_ips {clash}{where}: "
                               f"each site serves its own slice of the segment")


def _site_address(name, site, gateway, own, peers_file, fail):
    network, address = gateway.network, ipaddress.ip_address(site)
    which = "gateway6" if name == "site_address6" else "gateway"
    if address not in network:
        fail(name, f"{site} is outside {which}'s prefix {network}")
    if address == gateway.ip:
        fail(name, f"{site} is the gateway's address (the anycast address cannot be a "
                   f"source: give the site host its own)")
    if address.version == 4 and address in (network.network_address, network.broadcast_address):
        fail(name, f"{site} is not a host address of {network}")
    if own is not None and not own.allows(site):
        fail(name, f"{site} is outside this site's allowed_ips in {peers_file!r}")


def _cidrs(subnets: Subnets) -> str:
    return ", ".join(str(net) for net in subnets.networks)


def _keys(values, fail):
    """The shared key, this node's private key, or both (peers without a public_key then use
    the shared one: a site at a time can move to its own key)."""
    private, shared = values.get("private_key_file"), values.get("icc_key_file")
    if not private and not shared:
        fail("icc_key_file", "is required when icc is on (or set private_key_file)")
    if shared:
        values["icc_key"] = read_key(shared, lambda message: fail("icc_key_file", message))
    if private:
        try:
            with open(private) as handle:
                text = handle.read()
            values["private_key"] = decode_key(text)
        except OSError as exc:
            fail("private_key_file", f"{private!r}: {exc.strerror}")
        except ValueError as exc:
            fail("private_key_file", f"{private!r}: {exc}")
        own = values.get("own")
        if own is not None and own.public_key and own.public_key != public_key_of(text):
            fail("private_key_file", f"{private!r} is not the key of [{own.name}]'s "
                                     f"public_key in {values['peers_file']!r}")
        for peer in values["peers"]:
            try:
                if peer.public_key:
                    pair_keys(values["private_key"], decode_key(peer.public_key))
            except ValueError as exc:
                fail("peers_file", f"{values.get('peers_file')!r}: [{peer.name}] "
                                   f"public_key: {exc}")
    keyless = [p.name for p in values["peers"] if not (private and p.public_key)]
    if keyless and not shared:
        where = f"{values['peers_file']!r}: " if values.get("peers_file") else ""
        fail("peers_file" if where else "peers",
             f"{where}{keyless[0]} has no public_key (required with private_key_file, unless "
             f"icc_key_file is set for peers that have none)")


def read_key(path: str, fail) -> bytes:
    try:
        with open(path, "rb") as handle:
            key = handle.read().strip()
    except OSError as exc:
        fail(f"{path!r}: {exc.strerror}")
    if len(key) < 16:
        fail(f"{path!r}: the key must be at least 16 bytes")
    return key

"""The `[ipop]` options, validated without any framework.

The Ryu shell reads raw strings with oslo.config and hands them to `parse`, which returns
`Options` or raises ConfigError naming the option, the bad value and the file it came from.
"""
import ipaddress
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

from .addr import Subnets
from .icc import is_node_id

# name -> (default as written in a config file, help); the contract of the README
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
                           "it (required when icc is on)"),
    "arp_timeout": ("300", "seconds a learned entry lives without refresh"),
    "announce": ("true", "announce local hosts to every peer before anyone asks (refreshed "
                         "every arp_timeout/3, withdrawn when gone); false = pull only"),
    "pending_timeout": ("5", "seconds a relayed ARP request waits for its reply"),
    "hello_interval": ("5", "seconds between hellos to each peer"),
    "peer_hold_time": ("15", "a peer silent this long is down: its entries are withdrawn"),
    "punt_rate": ("100", "ARP packets/s one port may send to the controller (an OpenFlow "
                         "meter per port; 0 = no meter)"),
    "overlay_subnet": ("", "comma list of CIDRs; when set, addresses outside are never learned"),
    "icc_freshness": ("30", "seconds an ICC datagram's timestamp may differ from our clock "
                            "(replay protection; keep the sites' clocks in sync with NTP)"),
    "switch_address": ("", "the bridge's OpenFlow listener to dial, unix:PATH or tcp:HOST:PORT "
                           "(the bridge's controller set to punix:PATH / ptcp:PORT:HOST); "
                           "empty = wait for the bridge to connect to us"),
}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Peer:
    name: str
    host: str
    port: int

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
    arp_timeout: int = 300
    announce: bool = True
    pending_timeout: int = 5
    hello_interval: float = 5.0
    peer_hold_time: float = 15.0
    icc_freshness: float = 30.0
    punt_rate: int = 100
    overlay_subnet: Subnets = Subnets(())
    switch_address: Optional["SwitchAddress"] = None

    def in_overlay(self, ip: str) -> bool:
        return not self.overlay_subnet or ip in self.overlay_subnet

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


def _peers(text):
    peers = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, at, hostport = item.partition("@")
        host, colon, port = hostport.rpartition(":")
        if not at or not colon:
            raise ValueError(f"{item!r} is not NAME@HOST:PORT")
        host = host.strip("[]")
        peers.append(Peer(_node_id(name), _address(host), _int_in(1, 65535)(port)))
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
}


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
    if any(p.name == values["node_id"] for p in values["peers"]):
        fail("peers", f"lists this node ({values['node_id']}) itself")
    if values["peer_hold_time"] <= values["hello_interval"]:
        fail("peer_hold_time", f"must be longer than hello_interval "
                               f"({values['hello_interval']:g}s)")
    if values["icc"]:
        path = values.get("icc_key_file")
        if not path:
            fail("icc_key_file", "is required when icc is on")
        values["icc_key"] = read_key(path, lambda message: fail("icc_key_file", message))
    return Options(**values)


def read_key(path: str, fail) -> bytes:
    try:
        with open(path, "rb") as handle:
            key = handle.read().strip()
    except OSError as exc:
        fail(f"{path!r}: {exc.strerror}")
    if len(key) < 16:
        fail(f"{path!r}: the key must be at least 16 bytes")
    return key

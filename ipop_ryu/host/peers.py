"""One spelling of a peer for every command that takes `--peer` (init, bridge setup):

    NAME=HOST[:PORT]    B=192.0.2.2, B=192.0.2.2:30000, B=2001:db8::2, B=[2001:db8::2]:30000
    NAME@HOST:PORT      the older form (init, and the `peers` option), still accepted

HOST is the peer's underlay address: where its tunnel ends and its controller speaks ICC;
PORT is its ICC port (init; bridge setup needs only the address).
"""
import ipaddress
from dataclasses import dataclass
from typing import Optional

from ..core.icc import is_node_id
from . import CommandError

FORMS = "NAME=HOST[:PORT] (or NAME@HOST:PORT)"


@dataclass(frozen=True)
class PeerArg:
    name: str
    host: str                   # an IP address, normalised
    port: Optional[int] = None  # its ICC port, when given

    def icc(self, default_port) -> str:
        """As the `peers` option spells it: NAME@HOST:PORT."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name}@{host}:{self.port or default_port}"


def parse_peer(text: str, option: str = "--peer") -> PeerArg:
    """CommandError (one line naming the option) unless text is one of FORMS."""
    def bad(why):
        return CommandError(f"bad {option} {text!r}: {why}; expected {FORMS}, e.g. "
                            "B=192.0.2.2")
    at, eq = text.find("@"), text.find("=")
    cut = min(i for i in (at, eq) if i >= 0) if at >= 0 or eq >= 0 else -1
    if cut < 0:
        raise bad("no '=' after the name")
    name, older, rest = text[:cut], text[cut] == "@", text[cut + 1:]
    if not is_node_id(name):
        raise bad(f"name {name!r} is not 1-64 letters, digits, '.', '_' or '-'")
    host, port = _host_port(rest)
    if older and port is None:
        raise bad("NAME@HOST needs its :PORT")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise bad(f"{host!r} is not an IP address") from None
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise bad(f"port {port!r} is not from 1 to 65535")
    return PeerArg(name, host, int(port) if port is not None else None)


def _host_port(text):
    """'[v6]:P', 'v6', 'v4:P', 'v4' -> (host, port string or None)."""
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close or rest and not rest.startswith(":"):
            return text, None
        return host, rest[1:] if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return text, None

"""The directory's key layout, in one place.

    /ipop/v1/hosts/<node>/<ip>   a host binding, signed by <node> (see signing.py)
    /ipop/v1/sites/<node>/alive  <node>'s liveness, on its lease (gone when the lease expires)

Ownership is in the path: etcd's RBAC gives each site readwrite on its own two prefixes
(rbac.py) and read on ROOT, and a reader refuses a binding whose signer is not the <node> of
its path.
"""
from typing import NamedTuple, Optional

ROOT = "/ipop/v1/"
HOSTS = ROOT + "hosts/"
SITES = ROOT + "sites/"
ALIVE = "alive"


class Key(NamedTuple):
    kind: str          # "host" or "alive"
    node: str
    ip: str = ""       # host keys only


def host_key(node: str, ip: str) -> str:
    return f"{HOSTS}{node}/{ip}"


def alive_key(node: str) -> str:
    return f"{SITES}{node}/{ALIVE}"


def site_prefixes(node: str):
    """The prefixes `node` may write (and nobody else)."""
    return (f"{HOSTS}{node}/", f"{SITES}{node}/")


def parse(key: str) -> Optional[Key]:
    """The Key a path names, or None for one outside the layout."""
    if key.startswith(HOSTS):
        node, sep, ip = key[len(HOSTS):].partition("/")
        if node and sep and ip and "/" not in ip:
            return Key("host", node, ip)
    elif key.startswith(SITES):
        node, sep, rest = key[len(SITES):].partition("/")
        if node and sep and rest == ALIVE:
            return Key("alive", node)
    return None


def valid_node(node: str) -> bool:
    """A node id usable in a path (and as an etcd user name): no '/', no blanks."""
    return bool(node) and "/" not in node and not any(c.isspace() for c in node)

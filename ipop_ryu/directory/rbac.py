"""etcd users and roles for the directory, as etcdctl command lines built in one place.

Each site gets a user and a role of the same name with `readwrite` on its own prefixes
(layout.site_prefixes) and `read` on the whole directory; the root user administers.
The lab runs these; `ipop-ryu init` or a `directory` sub-command can print or run them later.
Passwords go in as `--new-user-password`, never in a positional `name:password`.
"""
from typing import List, Sequence

from . import layout

ROOT_USER = "root"


def site_user(node: str) -> str:
    return f"ipop-{node}"


def site_role(node: str) -> str:
    return f"ipop-{node}"


def etcdctl(endpoints: Sequence[str], *args: str, user: str = "", password: str = "") -> List[str]:
    """One etcdctl argv (API v3), as `user` if given."""
    argv = ["etcdctl", f"--endpoints={','.join(endpoints)}", "--dial-timeout=3s",
            "--command-timeout=5s"]
    if user:
        argv.append(f"--user={user}:{password}")
    return argv + list(args)


def enable_auth(root_password: str) -> List[List[str]]:
    """Create root (with the root role) and turn auth on: run once, before any site."""
    return [["user", "add", ROOT_USER, f"--new-user-password={root_password}",
             "--interactive=false"],
            ["user", "grant-role", ROOT_USER, "root"],
            ["auth", "enable"]]


def add_site(node: str, password: str) -> List[List[str]]:
    """A site's user and role (run as root once auth is on)."""
    if not layout.valid_node(node):
        raise ValueError(f"node id {node!r}: no '/' or blanks allowed in a directory node id")
    role, user = site_role(node), site_user(node)
    commands = [["role", "add", role]]
    commands += [["role", "grant-permission", role, "readwrite", prefix, "--prefix=true"]
                 for prefix in layout.site_prefixes(node)]
    commands += [["role", "grant-permission", role, "read", layout.ROOT, "--prefix=true"],
                 ["user", "add", user, f"--new-user-password={password}", "--interactive=false"],
                 ["user", "grant-role", user, role]]
    return commands


def remove_site(node: str) -> List[List[str]]:
    return [["user", "delete", site_user(node)], ["role", "delete", site_role(node)]]

"""`ipop-ryu bridge setup --encrypt --config SITE.conf`: the site's WireGuard interface, keyed
with its controller's own key, and the tunnel ports to the peers' tunnel addresses.

From the site's [ipop]: private_key_file (the WireGuard key too) and peers_file, whose own
section's `endpoint` host is this site's tunnel address and `wireguard_endpoint` port its
listen port; every other section is a WireGuard peer (public_key, wireguard_endpoint;
allowed-ips its endpoint host) and a tunnel port ipop-NAME to its endpoint host.
"""
import ipaddress
import os
import shutil
from dataclasses import dataclass
from typing import List, Tuple

from ..core.config import ConfigError
from ..overlay.wireguard import (PORT, UAPI_DIR, USERSPACE_ENV, WgPeer, host_route,
                                 kernel_has_wireguard, set_argv, wg_mtu)
from ..host import CommandError
from ..host.site import Site

WG_INTERFACE = "wg-ipop"   # --encrypt's WireGuard interface


@dataclass
class EncryptedSite:
    ifname: str
    key_file: str
    address: str                     # this site's tunnel address
    listen_port: int
    wg_peers: List[WgPeer]
    tunnel_peers: List[Tuple[str, str]]   # (port name, the peer's tunnel address)

    @property
    def family(self):
        return ipaddress.ip_address(self.address).version

    def commands(self, existing_peers=(), kernel=True, exists=False) -> List[list]:
        """argv lists, in order: make the interface (unless it exists), key it, address it,
        route each peer's tunnel address into it. existing_peers: public keys it has now."""
        wanted = {p.public_key for p in self.wg_peers}
        out = []
        if not exists:
            out.append(["ip", "link", "add", self.ifname, "type", "wireguard"] if kernel
                       else ["env", *(f"{k}={v}" for k, v in USERSPACE_ENV.items()),
                             "wireguard-go", self.ifname])
        out.append(set_argv(self.ifname, self.key_file, self.listen_port, self.wg_peers,
                            sorted(set(existing_peers) - wanted)))
        out.append(["ip", "address", "replace", host_route(self.address), "dev", self.ifname])
        out.append(["ip", "link", "set", self.ifname, "mtu", str(wg_mtu()), "up"])
        for peer in self.wg_peers:
            out.append(["ip", "route", "replace", peer.allowed_ips[0], "dev", self.ifname])
        return out


def plan(config_path, ifname=WG_INTERFACE) -> EncryptedSite:
    """What --encrypt sets up, from the site's file; CommandError naming what is missing."""
    try:
        options = Site(config_path).options
    except ConfigError as exc:
        raise CommandError(f"--config: {exc}") from None
    where = f"{options.peers_file!r}" if options.peers_file else config_path
    if not options.private_key or not options.peers_file:
        raise CommandError(f"--encrypt: {config_path} needs private_key_file and peers_file in "
                           f"[ipop] (the site's WireGuard key and its peers)")
    if options.own is None:
        raise CommandError(f"--encrypt: {where} has no [{options.node_id}] section (this "
                           f"site's tunnel address: its endpoint)")
    listen = options.own.wireguard_endpoint[1] if options.own.wireguard_endpoint else PORT
    wg_peers, tunnel_peers = [], []
    for peer in options.peers:
        if not peer.public_key or not peer.wireguard_endpoint:
            raise CommandError(f"--encrypt: {where}: [{peer.name}] needs public_key and "
                               f"wireguard_endpoint (its WireGuard on the underlay)")
        wg_peers.append(WgPeer(peer.public_key, peer.wireguard_endpoint,
                               [host_route(peer.host)]))
        tunnel_peers.append((f"ipop-{peer.name}", peer.host))
    return EncryptedSite(ifname, options.private_key_file, options.own.host, listen, wg_peers,
                         tunnel_peers)


def interface_exists(ifname) -> bool:
    return os.path.exists(os.path.join("/sys/class/net", ifname))


def removal_commands(ifname, uapi_dir=UAPI_DIR) -> List[list]:
    """What removes the interface: wireguard-go ends itself (and its interface) when its
    socket is removed, as under wg-quick down; a kernel link is deleted; none: it is gone."""
    socket = os.path.join(uapi_dir, f"{ifname}.sock")
    if os.path.exists(socket):
        return [["rm", "-f", socket]]
    return [["ip", "link", "del", ifname]] if interface_exists(ifname) else []


def kernel_or_userspace() -> bool:
    """True: make a kernel WireGuard link; False: wireguard-go (CommandError if neither)."""
    if kernel_has_wireguard():
        return True
    if shutil.which("wireguard-go"):
        return False
    raise CommandError("no kernel WireGuard and no wireguard-go: apt install wireguard-go "
                       "wireguard-tools")

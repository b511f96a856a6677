"""A WireGuard interface inside a lab namespace: kernel WireGuard where the kernel has it,
`wireguard-go` (userspace, a process the lab owns) where it does not.

wireguard-go refuses to run on a kernel it believes has WireGuard unless
WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1, and it serves its interface on a socket named
after the interface in /var/run/wireguard (one directory for every namespace): interface
names must be unique on the machine, not only in their namespace.
"""
import os
import subprocess
import time
from typing import Optional

from ..overlay.wireguard import (OVERHEAD, PORT, UAPI_DIR, USERSPACE_ENV, WgPeer, host_route,
                                 kernel_has_wireguard, set_argv)
from . import netns

__all__ = ["OVERHEAD", "PORT", "WgPeer", "bring_up", "host_route", "kernel_has_wireguard"]


def bring_up(ns, ifname, private_key_file, address, prefixlen, peers, mtu, listen_port=PORT,
             log_path="/dev/null", env=None, timeout=10.0) -> Optional[subprocess.Popen]:
    """Create and configure `ifname` in ns; returns the wireguard-go process (None: kernel).
    Raises RuntimeError naming what is missing."""
    proc = None
    if kernel_has_wireguard(ns):
        _run(["ip", "-n", ns, "link", "add", ifname, "type", "wireguard"])
    else:
        try:
            proc = netns.spawn(ns, ["wireguard-go", "-f", ifname], log_path,
                               {**(env or os.environ), **USERSPACE_ENV})
        except FileNotFoundError:
            raise RuntimeError("no kernel WireGuard and no wireguard-go: apt install "
                               "wireguard-go wireguard-tools (`make apt`)") from None
        socket = os.path.join(UAPI_DIR, f"{ifname}.sock")
        deadline = time.monotonic() + timeout
        while not os.path.exists(socket):
            if proc.poll() is not None or time.monotonic() > deadline:
                netns.terminate(proc)
                raise RuntimeError(f"wireguard-go did not bring up {ifname} in {ns}: "
                                   f"see {log_path}")
            time.sleep(0.02)
    try:
        netns_run(ns, set_argv(ifname, private_key_file, listen_port, peers))
        netns.configure(ns, ifname, address=address, prefixlen=prefixlen, mtu=mtu)
    except BaseException:
        netns.terminate(proc)
        raise
    return proc


def netns_run(ns, argv):
    _run(netns.exec_argv(ns, argv))


def _run(argv):
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {(proc.stderr or proc.stdout).strip()}")

"""Polling helpers for the switch-mode integration tests."""
import importlib.util
import ipaddress
import json
import re
import sys
import time

import pytest

from ipop_ryu.cli.status import arp_rows
from ipop_ryu.core import pipeline


def _has_simple_switch_13():
    try:
        return importlib.util.find_spec("ryu.app.simple_switch_13") is not None
    except ImportError:
        return False


# Ryu's example app is the baseline of the lab and bench tests; os-ken ships no example apps
needs_simple_switch_13 = pytest.mark.skipif(
    not _has_simple_switch_13(), reason="Ryu's simple_switch_13 comes with Ryu only")


def wait_for(predicate, timeout=10.0, what="condition", interval=0.1, show=None):
    """Poll predicate until it is truthy; on timeout fail, with show() in the message."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f": {show()}" if show else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{seen}")
        time.sleep(interval)


def one_line_error(proc, *words):
    """A refusal as the CLI makes it: exit 2, nothing on stdout, one line naming words."""
    assert proc.returncode == 2 and proc.stdout == "", (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("ipop-ryu: ") and proc.stderr.count("\n") == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    return proc.stderr


def flows(site, purpose, ip=None):
    """Flow lines of one purpose (and address) on a site's bridge."""
    if ip is None:
        spec = f"cookie={pipeline.cookie(purpose):#x}/0xffffffff00000000"
    else:
        spec = f"cookie={pipeline.cookie(purpose, ip):#x}/-1"
    out = site.ofctl("dump-flows", site.bridge, spec)
    return [line for line in out.splitlines() if "cookie=" in line]


def n_packets(lines):
    return sum(int(m) for line in lines for m in re.findall(r"n_packets=(\d+)", line))


def ping_until_ok(host, ip, timeout=20.0):
    """Seconds until the first successful single ping (each try waits at most 1 s)."""
    start = time.monotonic()
    wait_for(lambda: host.exec(["ping", "-n", "-c", "1", "-W", "1", ip], check=False)
             .returncode == 0, timeout, f"{host.name} -> {ip}")
    return time.monotonic() - start


def controller_alive(lab, site):
    return lab.bridge_connected(site)


def rest(site, path):
    """GET a path of the site's controller REST API from inside its namespace; JSON decoded
    (text for /metrics)."""
    code = ("import sys,urllib.request;sys.stdout.write(urllib.request.urlopen("
            f"'http://{site.underlay_ip}:8080{path}',timeout=5).read().decode())")
    body = site.exec([sys.executable, "-c", code]).stdout
    return body if path == "/metrics" else json.loads(body)


def stats(site):
    return rest(site, "/ipop/v1/stats")


def arp_table(site):
    """The site's whole learned table, {ip: row}, page by page as `ipop-ryu arp` reads it."""
    return {e["ip"]: e for e in arp_rows(lambda path: rest(site, path))}


def peer_states(site):
    return {p["name"]: p["state"] for p in rest(site, "/ipop/v1/peers")}


def add_host(lab, site_name, name, ip, mac, ip6="", attach=True):
    """Plug a new container into a running lab's site (a host that arrives or moves); with
    ip6, with IPv6 (that address without DAD, and a link-local one from the MAC). With
    attach=False its veth is ready but not yet a port of the bridge (see attach_host)."""
    from ipop_ryu.lab.lab import Host
    site = lab.sites[site_name]
    host = Host(name, site_name, f"{site.ns}-{name}", ip, mac, name, lab, ip6=ip6)
    lab._new_ns(host.ns, ipv6=bool(ip6))  # named under the lab's suffix: down() removes it
    plug_veth(lab, host)
    if attach:
        attach_host(lab, host)
    return host


def plug_veth(lab, host):
    """The host's eth0 and its peer in the site's namespace (the bridge's port, by name), as
    the lab makes them: a new container, or one whose veth was deleted."""
    from ipop_ryu.lab import netns
    site = lab.sites[host.site]
    netns.add_veth(host.ns, "eth0", site.ns, host.port)
    netns.configure(host.ns, "eth0", address=host.ip, mac=host.mac, mtu=lab.mtu)
    if host.ip6:
        netns.add_address(host.ns, "eth0", host.ip6, 64, nodad=True)
    netns.configure(site.ns, host.port, mtu=lab.mtu)
    lab.exec(host.ns, ["ethtool", "-K", "eth0", "tx", "off"])


def attach_host(lab, host):
    site = lab.sites[host.site]
    site.vsctl("add-port", site.bridge, host.port)
    site.hosts[host.name] = lab.hosts[host.name] = host


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def send_udp(lab, from_ns, addr, datagrams, rate=5000):
    """Send raw datagrams from inside a lab namespace (hex lines on stdin), at most `rate`
    per second."""
    script = ("import socket,sys,time\n"
              "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); t=time.monotonic()\n"
              "for n,line in enumerate(sys.stdin):\n"
              f"    s.sendto(bytes.fromhex(line.strip()),({addr[0]!r},{addr[1]}))\n"
              f"    if n % 100 == 99: time.sleep(max(0, t + (n + 1) / {rate} - time.monotonic()))\n")
    lines = "".join(d.hex() + "\n" for d in datagrams)
    return lab.exec(from_ns, [sys.executable, "-c", script], input=lines, timeout=120)


def icc_captures(lab, stack, sender, to):
    """Captures of the ICC datagrams `sender` sends, one at each site named in `to` (on its
    underlay), entered into an ExitStack: {site name: Capture}."""
    src = lab.sites[sender].icc_ip
    return {name: stack.enter_context(lab.capture(name, "ul0", f"udp and src host {src}"))
            for name in to}


def first_seen(cap, needle, after):
    """Kernel timestamp of the first captured frame at or after `after` whose bytes hold every
    one of `needle`'s byte strings (None if there is none)."""
    times = [p["time"] for p in cap.packets()
             if p["time"] >= after and all(n in p["raw"] for n in needle)]
    return min(times, default=None)


def in_pool(ip, site):
    """ip lies in the site's DHCP pool (LabSpec(services=True))."""
    from ipop_ryu.lab.topology import dhcp_pool
    first, last = map(ipaddress.ip_address, dhcp_pool(site.index))
    return first <= ipaddress.ip_address(ip) <= last

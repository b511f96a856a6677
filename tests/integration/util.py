"""Polling helpers for the switch-mode integration tests."""
import re
import time

from ipop_ryu.core import pipeline


def wait_for(predicate, timeout=10.0, what="condition", interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


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
    site = lab.sites[site]
    return site.ovs.controller_connected(site.bridge, "tcp:127.0.0.1:6653")


def stats(site):
    """The controller's /ipop/v1/stats, fetched from inside its site namespace."""
    import json
    import sys
    code = ("import sys,urllib.request;sys.stdout.write(urllib.request.urlopen("
            f"'http://{site.underlay_ip}:8080/ipop/v1/stats',timeout=5).read().decode())")
    return json.loads(site.exec([sys.executable, "-c", code]).stdout)


def send_udp(lab, from_ns, addr, datagrams):
    """Send raw datagrams from inside a lab namespace (hex lines on stdin)."""
    import sys
    script = ("import socket,sys\n"
              "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
              "for line in sys.stdin:\n"
              f"    s.sendto(bytes.fromhex(line.strip()),({addr[0]!r},{addr[1]}))\n")
    lines = "".join(d.hex() + "\n" for d in datagrams)
    return lab.exec(from_ns, [sys.executable, "-c", script], input=lines, timeout=120)

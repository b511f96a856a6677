"""The systems under test, all on the same lab topology (sites in a full VXLAN mesh).

    normal            OVS NORMAL action, no controller. A full mesh of 3+ sites loops
                      (no STP), so there the baseline runs with RSTP enabled on every bridge
                      (and a plain NORMAL mesh is only checked for the loop).
    simple_switch_13  Ryu's example learning switch: every broadcast goes through the
                      controller and is flooded to every port. Two sites only; on 3+ it loops,
                      which the bench detects and reports as "loops".
    ipop              ipop_ryu.apps.switchmode (this project), default configuration.
"""
import string
import time

from ipop_ryu.lab import HostSpec, LabSpec, SiteSpec
from ipop_ryu.lab import netns

SYSTEMS = ("normal", "simple_switch_13", "ipop")
LABELS = {"normal": "OVS NORMAL", "simple_switch_13": "Ryu simple_switch_13",
          "ipop": "ipop-ryu"}
FIRST_HOST = 10          # host addresses 10.0.3.10 ...
ALIAS_POOL = range(200, 255)   # 10.0.3.200-254: extra addresses for fresh "cold" targets
MAX_HOSTS = ALIAS_POOL.start - FIRST_HOST


def spec(controller, n_sites, hosts_per_site, **kw):
    """Sites A, B, ... with hosts h<N> (10.0.3.N, N = 10 + i*hosts_per_site + j)."""
    if not 2 <= n_sites <= 26:
        raise ValueError("the bench needs 2 to 26 sites")
    if hosts_per_site < 2:
        raise ValueError("the bench needs 2 hosts per site (a same-site target)")
    if n_sites * hosts_per_site > MAX_HOSTS:
        raise ValueError(f"at most {MAX_HOSTS} hosts in all (10.0.3.{FIRST_HOST}-"
                         f"{ALIAS_POOL.start - 1}); asked for {n_sites} x {hosts_per_site}")
    sites = []
    for i in range(n_sites):
        numbers = [FIRST_HOST + i * hosts_per_site + j for j in range(hosts_per_site)]
        sites.append(SiteSpec(string.ascii_uppercase[i],
                              [HostSpec(f"h{n}", f"10.0.3.{n}") for n in numbers]))
    return LabSpec(sites, controller=controller, **kw)


def loops_on(system, n_sites):
    """True when the plain system has no loop prevention for this many sites."""
    return system in ("normal", "simple_switch_13") and n_sites >= 3


def uses_rstp(system, n_sites):
    return system == "normal" and n_sites >= 3


def enable_rstp(lab, timeout=30.0):
    """RSTP on every NORMAL bridge (site A the root), overlay ports point-to-point and host
    ports edge; returns once every port forwards or is an alternate/backup (discarding)."""
    for site in lab.sites.values():
        args = ["set", "bridge", site.bridge, "rstp_enable=true",
                f"other_config:rstp-priority={4096 if site.index == 0 else 32768}"]
        for port in site.overlay_ports:
            args += ["--", "set", "port", port, "other_config:rstp-port-admin-p2p-mac=true",
                     "other_config:rstp-port-admin-edge=false"]
        for host in site.hosts.values():
            args += ["--", "set", "port", host.port, "other_config:rstp-port-admin-edge=true"]
        site.vsctl(*args)

    def converged():
        for site in lab.sites.values():
            out = site.ovs.appctl("ovs-vswitchd", "rstp/show", check=False).stdout
            rows = [line.split() for line in out.splitlines()
                    if line.strip().startswith("ipop-")]
            if len(rows) != len(site.overlay_ports):
                return False
            for row in rows:
                role, state = row[1], row[2]
                if state not in ("Forwarding", "Discarding") or \
                        state == "Discarding" and role not in ("Alternate", "Backup"):
                    return False
        return True
    start = time.monotonic()
    netns.wait_until(converged, timeout, "RSTP to converge", interval=0.2)
    return time.monotonic() - start


class AliasPool:
    """Fresh addresses for a lab: each one, added to a host, is a target no controller has
    learned yet (the host's kernel answers ARP for every address it owns)."""

    def __init__(self):
        self._free = [f"10.0.3.{n}" for n in ALIAS_POOL]
        self._next6 = 1

    def take(self, host, n):
        if n > len(self._free):
            raise RuntimeError(f"alias pool exhausted ({len(self._free)} left, {n} wanted)")
        taken, self._free = self._free[:n], self._free[n:]
        script = "".join(f"address add {ip}/32 dev eth0\n" for ip in taken)
        host.exec(["ip", "-batch", "-"], input=script)
        return taken

    def take6(self, host, n):
        """The same for IPv6 (a lab with IPv6): fd00:3::1:N, added without DAD."""
        taken = [f"fd00:3::1:{i:x}" for i in range(self._next6, self._next6 + n)]
        self._next6 += n
        script = "".join(f"address add {ip}/128 dev eth0 nodad\n" for ip in taken)
        host.exec(["ip", "-6", "-batch", "-"], input=script)
        return taken

    def left(self):
        return len(self._free)

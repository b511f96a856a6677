"""LabSpec(services=True): each site made a drop-in for lxc-net the way an operator would, with
`ipop-ryu services setup` and `ipop-ryu dhcp` run in the site's namespace, and an upstream
namespace standing for the internet at UPSTREAM_IP on the underlay's wire.

Upstream: namespace ipr-S-up, its up0 = UPSTREAM_IP/24 on the underlay bridge; every site's ul0
also holds uplink_ip(i) in that /24 and its default route points there, so ul0 is the uplink
that `services setup` masquerades to (its default route's interface)."""
import os
import sys

from . import netns
from .topology import GATEWAY, UPSTREAM_IP, UPSTREAM_PREFIX

GATEWAY_IP = GATEWAY.split("/")[0]
UPLINK = "ul0"
DHCP_PORT = 67


def ipop_ryu():
    return os.path.join(sys.prefix, "bin", "ipop-ryu")


def build_upstream(lab):
    ns = lab.upstream_ns
    lab._new_ns(ns)
    netns.add_veth(ns, "up0", lab.underlay_ns, "ul-up")
    netns.configure(lab.underlay_ns, "ul-up", master="br-ul")
    netns.configure(ns, "up0", address=UPSTREAM_IP, prefixlen=UPSTREAM_PREFIX)
    for site in lab.sites.values():
        netns.add_address(site.ns, UPLINK, site.uplink_ip, UPSTREAM_PREFIX)
        lab.exec(site.ns, ["ip", "route", "add", "default", "via", UPSTREAM_IP])


def config_path(lab, site):
    """The site's file ([ipop] services options): the controller's, or for a lab without
    ipop controllers one holding just the services."""
    if site.config_path:
        return site.config_path
    from .topology import services_options
    path = os.path.join(site.rundir, "services.conf")
    if not os.path.exists(path):
        lines = ["[ipop]", f"node_id = {site.name}", "icc = false"]
        options = services_options(site.index, site.rundir, lab.spec.ipv6)
        lines += [f"{k} = {v}" for k, v in options.items()]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    return path


def setup_argv(lab, site, action="setup"):
    argv = [ipop_ryu(), "services", action, site.bridge, "--config-file",
            config_path(lab, site)]
    return argv + (["--uplink", UPLINK] if action == "setup" else [])


def dhcp_argv(lab, site):
    return [ipop_ryu(), "dhcp", "--config-file", config_path(lab, site), "--bridge",
            site.bridge, "--user", "root"]  # the lab's files may sit in a directory only root reads


def setup(lab, site):
    """`ipop-ryu services setup` in the site, as an operator runs it."""
    done = lab.exec(site.ns, setup_argv(lab, site), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"services setup in site {site.name}: "
                           f"{(done.stderr or done.stdout).strip()}")


def spawn_dhcp(lab, site):
    """`ipop-ryu dhcp`, which execs dnsmasq: the pid is dnsmasq's, recorded in the site's
    dnsmasq.pid for `lab down` from another process."""
    return netns.spawn(site.ns, dhcp_argv(lab, site), os.path.join(site.rundir, "dnsmasq.log"),
                       lab._env, pidfile=os.path.join(site.rundir, "dnsmasq.pid"))


def wait_serving(lab, site, proc, timeout=None):
    def serving():
        if proc.poll() is not None:
            log = os.path.join(site.rundir, "dnsmasq.log")
            with open(log, errors="replace") as f:
                raise RuntimeError(f"dnsmasq of site {site.name} exited: {f.read().strip()}")
        return netns.udp_bound(proc.pid, DHCP_PORT)
    netns.wait_until(serving, timeout or lab.timeout, f"dnsmasq of site {site.name}")


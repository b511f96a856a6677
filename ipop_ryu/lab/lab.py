"""Build, run and tear down a multi-site IPOP lab in network namespaces.

Per lab (suffix S, 6 hex): namespace ipr-S-ul holds the underlay Linux bridge; each site X
gets namespace ipr-S-X (own ovsdb-server, userspace ovs-vswitchd with bridge br0, optional
controller (ipop dials the bridge's listener punix:<rundir>/br0.ipop; simple_switch_13 is
dialed by OVS on 127.0.0.1:6653), underlay veth ul0 = 192.0.2.(index+1)/24 and one kernel VXLAN
port ipop-Y per peer site Y); each container H of X is namespace ipr-S-X-H with eth0, whose
peer (named H) is a br0 port. IPv6 is disabled in every namespace so that no traffic appears
unless a test sends it (link-local chatter would otherwise loop in a NORMAL mesh).
Files live under WORKDIR = workdir_root/S: peers.conf (every site's section: ICC endpoint,
public key, allowed_ips) or icc.key (LabSpec(keys="shared")), and one run dir per site, which
holds its node.key.
"""
import itertools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

from ..host.ovsctl import controller_clauses
from ..core.keys import generate_private_key, public_key_of
from ..core.membership import link_from_files
from ..overlay.vxlan import overlay_mtu
from ..overlay.wireguard import inner_mtu
from . import netns
from .ovs import DAEMONS, OvsInstance, dialed_by_controller
from . import wireguard
from .topology import (ALLOWED_IPS, host_ipv6, host_mac, services_allowed_ips,
                       services_options, site_address, tunnel_ip, underlay_ip, uplink_ip, vni)
from . import services as lab_services
from .traffic import Capture, PingLog

WORKDIR_ROOT = os.environ.get("IPOP_RYU_LAB_ROOT") or "/tmp/ipop-ryu-lab"   # as the CLI
NS_PREFIX = "ipr-"
OF_PORT = 6653
CONTROLLER_TARGET = f"tcp:127.0.0.1:{OF_PORT}"   # OVS dials the controller (simple_switch_13)
LISTENER = "{bridge}.ipop"      # ipop: OVS listens here (in the site's rundir), the app dials
ICC_PORT = 30000
MTU = overlay_mtu(1500)         # 1450: 1500 on the underlay, less VXLAN's 50 bytes
ENCRYPTED_MTU = inner_mtu()     # 1370: VXLAN inside WireGuard
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAMS = DAEMONS + ("ryu-manager", "tcpdump", "wireguard-go", "dnsmasq", "etcd")
PUNT_TABLE, PIPELINE_READY = 6, "CONTROLLER"   # ipop's last table, and its default action  # pidfile names contain the program name


@dataclass(eq=False)
class Host:
    name: str
    site: str
    ns: str
    ip: str
    mac: str
    port: str  # OVS port (site-side veth) name
    lab: "Lab" = field(repr=False)
    ip6: str = ""  # fd00:3::N when the lab has IPv6 (its link-local comes from the MAC)

    def exec(self, argv, **kw):
        return self.lab.exec(self.ns, argv, **kw)


@dataclass(eq=False)
class Site:
    name: str
    index: int
    ns: str
    underlay_ip: str
    rundir: str
    ovs: OvsInstance
    config_path: Optional[str]  # site.conf (controller "ipop" only)
    log_path: str  # controller stdout/stderr
    hosts: dict
    overlay_ports: list
    lab: "Lab" = field(repr=False)
    bridge: str = "br0"
    controller_pid: Optional[int] = None
    controller_target: str = CONTROLLER_TARGET     # the bridge's Controller record
    key_file: str = ""          # its private key, WireGuard format (written by Lab.up)
    public_key: str = ""
    tunnel_ip: str = ""         # its WireGuard address (encrypted labs)
    wg_ifname: str = ""
    site_address: str = ""      # LabSpec(services=True): its own address in the segment
    site_address6: str = ""     # and with ipv6, its IPv6 one
    uplink_ip: str = ""         # and towards the upstream (the source NAT gives containers)

    @property
    def icc_ip(self):
        """Where its controller speaks ICC (and its VXLAN ends): inside WireGuard if any."""
        return self.tunnel_ip or self.underlay_ip

    @property
    def dialed(self):
        """The controller dials the bridge (a passive target), as ipop's lab sites do."""
        return dialed_by_controller(self.controller_target)

    def exec(self, argv, **kw):
        return self.lab.exec(self.ns, argv, **kw)

    def ofctl(self, *args):
        return self.ovs.ofctl(*args)

    def vsctl(self, *args):
        return self.ovs.vsctl(*args)


def default_controller():
    """The running venv's `ryu-manager` when it has one (Ryu), else its `ipop-ryu`, run as
    `ipop-ryu controller` (os-ken has no ryu-manager; os-ken 4 has no manager at all)."""
    for name in ("ryu-manager", "ipop-ryu"):
        path = os.path.join(sys.prefix, "bin", name)
        if os.path.exists(path):
            return path
    return shutil.which("ryu-manager") or shutil.which("ipop-ryu") or "ryu-manager"


class Lab:
    def __init__(self, spec, suffix=None, workdir_root=WORKDIR_ROOT, ryu_manager=None,
                 keep_workdir=None, timeout=30.0, progress=None):
        self.spec = spec.validate()
        self.progress = progress  # called with one line per long step of up(), if given
        self.suffix = suffix or secrets.token_hex(3)
        self.workdir_root = workdir_root
        self.workdir = os.path.join(workdir_root, self.suffix)
        self.ryu_manager = ryu_manager or default_controller()
        if keep_workdir is None:  # keep logs/pcaps for post-mortems: IPOP_RYU_LAB_KEEP=1
            keep_workdir = os.environ.get("IPOP_RYU_LAB_KEEP", "") not in ("", "0")
        self.keep_workdir = keep_workdir
        self.timeout = timeout
        self.underlay_ns = f"{NS_PREFIX}{self.suffix}-ul"
        self.key_path = os.path.join(self.workdir, "icc.key")       # keys="shared"
        self.peers_path = os.path.join(self.workdir, "peers.conf")  # keys="node"
        self.timings = {}
        self._env = dict(os.environ, **{netns.MARKER_ENV: self.suffix})
        self._controllers = {}
        self._wireguard = {}      # site -> wireguard-go process (None: kernel WireGuard)
        self._dnsmasq = {}        # site -> its dnsmasq (LabSpec(services=True))
        self.upstream_ns = f"{NS_PREFIX}{self.suffix}-up" if spec.services else None
        self.mtu = ENCRYPTED_MTU if spec.encrypt else MTU    # containers and overlay ports
        self._captures = []
        self._log_marks = {}  # site -> connection log offset before the last (re)connect
        self._state = "new"
        self.sites, self.hosts = {}, {}
        names = [s.name for s in spec.sites]
        for index, s in enumerate(spec.sites):
            rundir = os.path.join(self.workdir, s.name)
            ns = f"{NS_PREFIX}{self.suffix}-{s.name}"
            site = Site(name=s.name, index=index, ns=ns, underlay_ip=underlay_ip(index),
                        rundir=rundir, ovs=OvsInstance(ns, rundir, self.suffix),
                        config_path=os.path.join(rundir, "site.conf")
                        if spec.controller == "ipop" else None,
                        log_path=os.path.join(rundir, "controller.log"), hosts={},
                        overlay_ports=[f"ipop-{p}" for p in names if p != s.name], lab=self)
            if spec.encrypt:      # interface names: unique machine-wide (see wireguard.py)
                site.tunnel_ip, site.wg_ifname = tunnel_ip(index), f"wg{self.suffix}{index}"
            if spec.services:
                site.site_address, site.uplink_ip = site_address(index), uplink_ip(index)
                site.site_address6 = host_ipv6(site.site_address) if spec.ipv6 else ""
            if spec.controller == "ipop":
                site.controller_target = "punix:" + os.path.join(
                    rundir, LISTENER.format(bridge=site.bridge))
            for h in s.hosts:
                host = Host(name=h.name, site=s.name, ns=f"{ns}-{h.name}", ip=h.ip,
                            mac=host_mac(h.ip), port=h.name, lab=self,
                            ip6=host_ipv6(h.ip) if spec.ipv6 else "")
                site.hosts[h.name] = self.hosts[h.name] = host
            self.sites[s.name] = site

    # --- context manager / lifecycle --------------------------------------------------------

    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.down()

    @staticmethod
    def kill_all_leftovers(workdir_root=WORKDIR_ROOT):
        """cleanup_all() for every lab under workdir_root (not while other labs run)."""
        cleanup_all(workdir_root)

    def up(self):
        """Build everything; on any failure tear down what was built and re-raise."""
        if self._state != "new":
            raise RuntimeError(f"lab {self.suffix} is {self._state}; build a new Lab")
        self._state = "up"
        start = time.monotonic()
        try:
            os.makedirs(self.workdir)  # must not exist: a suffix collision fails loudly
            for site in self.sites.values():
                os.makedirs(site.rundir)
            self._make_keys()
            n_ns = 1 + len(self.sites) + len(self.hosts)
            self._step(f"building {n_ns} namespaces, veths and VXLAN links")
            self._build_network()
            self._write_configs()
            # Controllers first: they import slowly, and then bridges connect on first try.
            if self.spec.controller != "normal":
                self._step(f"starting {len(self.sites)} controllers ({self.spec.controller})")
            for site in self.sites.values():
                self.start_controller(site, wait=False)
            self._step(f"starting Open vSwitch in {len(self.sites)} sites")
            for site in self.sites.values():
                site.ovs.start()
            self._step("waiting for the controllers to listen, adding the bridges"
                       if self.spec.controller != "normal" else "adding the bridges")
            for site in self.sites.values():
                if site.controller_pid and not site.dialed:  # spares a failed first connect
                    # and OVS's 1 s backoff; a controller that dials needs no wait
                    netns.wait_until(lambda s=site: self._controller_listening(s), self.timeout,
                                     f"controller of site {site.name} to listen")
                self._configure_bridge(site)
            if self.spec.controller != "normal":
                self._step(f"waiting for {len(self.sites)} bridges to connect")
            self.wait_connected()
            if self.spec.services:
                self._step(f"gateway, NAT and dnsmasq in {len(self.sites)} sites")
                for site in self.sites.values():
                    lab_services.setup(self, site)
                    self.start_dhcp(site)
        except BaseException:
            self.down()
            raise
        self.timings["up"] = time.monotonic() - start
        return self

    def _step(self, message):
        if self.progress:
            self.progress(message)

    def down(self):
        """Stop every process and remove every namespace of this lab (idempotent)."""
        if self._state == "down":
            return
        start = time.monotonic()
        self._state = "down"
        try:
            for cap in self._captures:
                cap.stop()
            for site in self.sites.values():
                self.stop_dhcp(site)
                self.stop_controller(site)
                site.ovs.stop()
                netns.terminate(self._wireguard.pop(site.name, None))
        finally:
            cleanup_all(self.workdir_root, suffix=self.suffix, remove_workdir=not self.keep_workdir)
        self.timings["down"] = time.monotonic() - start

    # --- building ---------------------------------------------------------------------------

    def _new_ns(self, name, ipv6=False):
        netns.create(name)
        netns.sysctl(name, net__ipv6__conf__all__disable_ipv6=int(not ipv6),
                     net__ipv6__conf__default__disable_ipv6=int(not ipv6))
        netns.configure(name, "lo")

    def _build_network(self):
        ul = self.underlay_ns
        self._new_ns(ul)
        netns.add_bridge(ul, "br-ul")
        netns.configure(ul, "br-ul")
        for site in self.sites.values():
            self._new_ns(site.ns)
            netns.add_veth(site.ns, "ul0", ul, f"ul-{site.name}")
            netns.configure(site.ns, "ul0", address=site.underlay_ip)
            netns.configure(ul, f"ul-{site.name}", master="br-ul")
            for host in site.hosts.values():
                self._new_ns(host.ns, ipv6=bool(host.ip6))
                netns.add_veth(host.ns, "eth0", site.ns, host.port)
                netns.configure(host.ns, "eth0", address=host.ip, mac=host.mac, mtu=self.mtu)
                if host.ip6:    # no DAD at build time: nothing is there to answer it yet
                    netns.add_address(host.ns, "eth0", host.ip6, 64, nodad=True)
                netns.configure(site.ns, host.port, mtu=self.mtu)
                if self.spec.services:      # as DHCP would have set it
                    self.exec(host.ns, ["ip", "route", "add", "default", "via",
                                        lab_services.GATEWAY_IP])
                # The userspace datapath forwards partial checksums as they are: make the
                # container compute them (this also turns TSO off).
                self.exec(host.ns, ["ethtool", "-K", "eth0", "tx", "off"])
        if self.spec.services:
            lab_services.build_upstream(self)
        if self.spec.encrypt:
            for site in self.sites.values():
                self._bring_up_wireguard(site)
        for a, b in itertools.combinations(self.sites.values(), 2):
            for x, y in ((a, b), (b, a)):
                netns.add_vxlan(x.ns, f"ipop-{y.name}", vni(a.index, b.index),
                                local=x.icc_ip, remote=y.icc_ip,
                                dev=x.wg_ifname or "ul0", mtu=self.mtu)

    def _bring_up_wireguard(self, site):
        """wg interface = the site's tunnel address, one WireGuard peer per other site."""
        peers = [wireguard.WgPeer(p.public_key, (p.underlay_ip, wireguard.PORT),
                                  [wireguard.host_route(p.tunnel_ip)])
                 for p in self.sites.values() if p is not site]
        pidfile = os.path.join(site.rundir, "wireguard-go.pid")
        proc = wireguard.bring_up(site.ns, site.wg_ifname, site.key_file, site.tunnel_ip, 24,
                                  peers, mtu=1500 - wireguard.OVERHEAD,
                                  log_path=os.path.join(site.rundir, "wireguard-go.log"),
                                  env=self._env)
        self._wireguard[site.name] = proc
        if proc is not None:
            with open(pidfile, "w") as f:
                f.write(f"{proc.pid}\n")

    def wireguard_process(self, site):
        """The wireguard-go process of a site (None: not encrypted, or kernel WireGuard)."""
        return self._wireguard.get(self._site(site).name)

    def _make_keys(self):
        """Each site's own key pair (its ICC identity, and its WireGuard key when encrypted)."""
        for site in self.sites.values():
            private = generate_private_key()
            site.key_file = os.path.join(site.rundir, "node.key")
            _write_secret(site.key_file, private)
            site.public_key = public_key_of(private)

    def peers_file_text(self, allowed_ips=None, sites=None):
        """peers.conf: a section per site; allowed_ips: site -> CIDRs (None: the line left
        out), default the spec's, else ALLOWED_IPS."""
        allowed = {**self.spec.allowed_ips, **(allowed_ips or {})}
        lines = []
        for site in sites or self.sites.values():
            lines += [f"[{site.name}]", f"endpoint = {site.icc_ip}:{ICC_PORT}",
                      f"public_key = {site.public_key}"]
            cidrs = allowed.get(site.name, services_allowed_ips(
                                    site.index, [h.ip for h in site.hosts.values()])
                                if self.spec.services else ALLOWED_IPS)
            if cidrs is not None:
                lines.append(f"allowed_ips = {cidrs}")
            lines.append("")
        return "\n".join(lines)

    def key_args(self, as_site, to_site):
        """Arguments of the bench tools (feeder, iccgen) to speak as one site to another."""
        if self.spec.keys == "shared":
            return ["--key-file", self.key_path]
        return ["--key-file", self.sites[as_site].key_file, "--peer-key",
                self.sites[to_site].public_key, "--peer-node", to_site]

    def link(self, as_site, to_site):
        """An encoder/decoder speaking as one site to another (tests that play a peer)."""
        if self.spec.keys == "shared":
            return link_from_files(self.key_path, as_site, to_site)
        return link_from_files(self.sites[as_site].key_file, as_site, to_site,
                               self.sites[to_site].public_key)

    def reload(self, site, via="rest"):
        """Have a site's controller re-read its files: via "rest" (`ipop-ryu reload`, run in
        the site; returns its CompletedProcess) or "signal" (SIGHUP to the controller)."""
        site = self._site(site)
        if via == "signal":
            os.kill(site.controller_pid, signal.SIGHUP)
            return None
        return site.exec([os.path.join(sys.prefix, "bin", "ipop-ryu"), "reload", "--json",
                          "--controller", f"http://{site.underlay_ip}:8080"], check=False)

    def _write_configs(self):
        if self.spec.controller != "ipop":
            return
        if self.spec.keys == "shared":
            _write_secret(self.key_path, secrets.token_hex(32))
            keys = {"icc_key_file": self.key_path}
        else:
            with open(self.peers_path, "w") as f:
                f.write(self.peers_file_text())
            keys = {"peers_file": self.peers_path}
        for site in self.sites.values():
            peers = ",".join(f"{p.name}@{p.icc_ip}:{ICC_PORT}"
                             for p in self.sites.values() if p is not site)
            if self.spec.keys == "shared":
                keys["peers"] = peers
            else:
                keys["private_key_file"] = site.key_file
            options = {"node_id": site.name, "icc": "true", "icc_address": site.icc_ip,
                       "icc_port": ICC_PORT, "overlay_ports": "ipop*", **keys,
                       "arp_timeout": self.spec.arp_timeout,
                       "switch_address": site.controller_target[1:],   # punix:P -> unix:P
                       **(services_options(site.index, site.rundir, self.spec.ipv6)
                          if self.spec.services else {}),
                       **self.spec.extra_options}
            lines = ["[DEFAULT]", "ofp_listen_host = 127.0.0.1", f"ofp_tcp_listen_port = {OF_PORT}",
                     f"wsapi_host = {site.underlay_ip}", "wsapi_port = 8080", "", "[ipop]"]
            lines += [f"{k} = {_ini_value(v)}" for k, v in options.items()]
            with open(site.config_path, "w") as f:
                f.write("\n".join(lines) + "\n")

    def _configure_bridge(self, site):
        controlled = self.spec.controller != "normal"
        args = ["--", "add-br", site.bridge, "--", "set", "bridge", site.bridge,
                "datapath_type=netdev", "protocols=OpenFlow13",
                f"fail-mode={'secure' if controlled else 'standalone'}",
                f"other-config:datapath-id={site.index + 1:016x}",
                "other-config:disable-in-band=true"]
        # Deterministic OpenFlow port numbers: hosts 1.., overlay port to site i: 100+i.
        ports = [(h.port, n) for n, h in enumerate(site.hosts.values(), 1)]
        ports += [(f"ipop-{p.name}", 100 + p.index) for p in self.sites.values() if p is not site]
        for name, ofport in ports:
            args += ["--", "add-port", site.bridge, name,
                     "--", "set", "interface", name, f"ofport_request={ofport}"]
        if controlled:  # as `ipop-ryu bridge setup` sets it
            args += controller_clauses(site.bridge, site.controller_target)
        site.vsctl(*args)

    # --- controllers / OVS restarts ---------------------------------------------------------

    def _site(self, site):
        return site if isinstance(site, Site) else self.sites[site]

    def start_controller(self, site, wait=True):
        site = self._site(site)
        if self.spec.controller == "normal":
            return None
        proc = self._controllers.get(site.name)
        if proc is None or proc.poll() is not None:
            self._log_marks[site.name] = site.ovs.log_size(site.controller_target)
            if self.spec.controller == "ipop":
                args = ["--config-file", site.config_path, "ipop_ryu.apps.switchmode"]
            else:
                args = ["--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(OF_PORT),
                        "ryu.app.simple_switch_13"]
            command = [self.ryu_manager, *args]
            if os.path.basename(self.ryu_manager) == "ipop-ryu":
                command.insert(1, "controller")
            proc = netns.spawn(site.ns, command, site.log_path,
                               dict(self._env, PYTHONUNBUFFERED="1"),
                               pidfile=os.path.join(site.rundir, "ryu-manager.pid"),
                               cwd=REPO_ROOT)
            self._controllers[site.name] = proc
            site.controller_pid = proc.pid
        if wait:
            self.wait_connected([site])
        return proc.pid

    def start_dhcp(self, site):
        """The site's dnsmasq, started as `ipop-ryu dhcp` (it execs dnsmasq), once it serves."""
        site = self._site(site)
        proc = lab_services.spawn_dhcp(self, site)
        self._dnsmasq[site.name] = proc
        lab_services.wait_serving(self, site, proc)
        return proc.pid

    def stop_dhcp(self, site):
        netns.terminate(self._dnsmasq.pop(self._site(site).name, None))

    def stop_controller(self, site):
        site = self._site(site)
        netns.terminate(self._controllers.pop(site.name, None))
        site.controller_pid = None

    def _controller_listening(self, site):
        self._check_controller(site)
        return netns.tcp_listening(site.controller_pid, OF_PORT)

    def _check_controller(self, site):
        proc = self._controllers.get(site.name)
        if proc is None or proc.poll() is not None:
            raise RuntimeError(f"controller of site {site.name} is not running; "
                               f"{site.log_path}:\n{_tail(site.log_path)}")

    def bridge_connected(self, site, since=0):
        """The site's bridge is connected to its controller, as last logged after byte
        offset `since` of the connection log (a controller that dials the bridge logs no
        goodbye when killed: it must also be running)."""
        site = self._site(site)
        if site.dialed:
            proc = self._controllers.get(site.name)
            if proc is None or proc.poll() is not None:
                return False
        return site.ovs.controller_connected(site.bridge, site.controller_target, since)

    def wait_connected(self, sites=None, timeout=None):
        """Wait until each site's bridge is connected to its controller (OpenFlow hello
        done, as vswitchd logs it; the db's is_connected lags by up to 5 s)."""
        if self.spec.controller == "normal":
            return
        for site in [self._site(s) for s in (sites or self.sites.values())]:
            def connected(site=site):
                self._check_controller(site)
                return self.bridge_connected(site, self._log_marks.get(site.name, 0))
            netns.wait_until(connected, timeout or self.timeout,
                             f"controller connection of site {site.name}", interval=0.05)
            # OVS before 3.1.3 (2.17.9, 3.0.7, 3.2.2) hands the controller's timers
            # (max_backoff) to its connection only on a reconfiguration while connected (OVS
            # commit 155f632e); without it the bridge backs off to 8 s as by default.
            self._sync(site)
            if self.spec.controller == "ipop":
                # the app installs its pipeline once the port list comes back: until then
                # an ARP request would meet an empty table and be dropped
                netns.wait_until(lambda site=site: PIPELINE_READY in site.ofctl(
                    "dump-flows", site.bridge, f"table={PUNT_TABLE}"), timeout or self.timeout,
                    f"ipop pipeline on site {site.name}", interval=0.05)

    def stop_ovs(self, site, db=False, hard=False):
        """Stop ovs-vswitchd (and ovsdb-server if db) of a site, with SIGKILL if hard (a
        crash); conf.db is kept for start_ovs."""
        self._site(site).ovs.stop(db=db, hard=hard)

    def start_ovs(self, site, wait=True):
        """Restart the site's daemons from the same conf.db (bridges/ports come back)."""
        site = self._site(site)
        self._log_marks[site.name] = site.ovs.log_size(site.controller_target)
        site.ovs.start()
        self._sync(site)
        if wait:
            self.wait_connected([site])

    @staticmethod
    def _sync(site):
        """Make ovs-vswitchd reconfigure from the db, and wait for it: any write without
        --no-wait returns only once vswitchd has applied the db (one that changes nothing is
        not written at all)."""
        site.vsctl("set", "open_vswitch", ".", f"external_ids:lab-sync={time.time_ns()}")

    # --- running things ---------------------------------------------------------------------

    def _env_for(self, ns):
        """A site's namespace gets its OVS_* variables, so ovs-* tools find its daemons."""
        return next((s.ovs.env for s in self.sites.values() if s.ns == ns), self._env)

    def resolve_ns(self, where):
        """Namespace of a site name, host name or a namespace name."""
        if where in self.sites:
            return self.sites[where].ns
        if where in self.hosts:
            return self.hosts[where].ns
        return where

    def exec(self, ns, argv, check=True, timeout=30, input=None):
        """Run argv in namespace ns (site/host names accepted); text CompletedProcess."""
        ns = self.resolve_ns(ns)
        proc = subprocess.run(netns.exec_argv(ns, list(map(str, argv))), env=self._env_for(ns),
                              input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def capture(self, where, iface, bpf_filter="", max_packets=None):
        """tcpdump on iface in a site's (or host's) namespace: `with lab.capture(...) as cap`.
        max_packets makes tcpdump stop by itself after that many (see Capture.wait)."""
        ns = self.resolve_ns(where)
        path = self._capture_path(f"tcpdump-{len(self._captures):03d}-{where}-{iface}.pcap")
        cap = Capture(ns, iface, bpf_filter, path, self._env_for(ns), max_packets)
        self._captures.append(cap)
        return cap

    def ping_log(self, where, ip, interval=0.05):
        """ping -D from a host (or namespace) at 1/interval per second:
        `with lab.ping_log("h5", ip) as pings`, then pings.longest_gap()."""
        ns = self.resolve_ns(where)
        path = self._capture_path(f"ping-{len(self._captures):03d}-{where}-{ip}.log")
        log = PingLog(ns, ip, path, self._env_for(ns), interval)
        self._captures.append(log)          # stopped by down() as captures are
        return log

    def _capture_path(self, name):
        capdir = os.path.join(self.workdir, "captures")
        os.makedirs(capdir, exist_ok=True)
        return os.path.join(capdir, name)

    def namespaces(self):
        """This lab's namespaces that currently exist."""
        return netns.list_namespaces(f"{NS_PREFIX}{self.suffix}-")


def _write_secret(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def _ini_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v)


def _tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "\n".join(f.read().splitlines()[-lines:])
    except OSError:
        return "(no log)"


FOREIGN_GRACE = 60.0  # s: another lab's namespaces younger than this may still be being built


def cleanup_all(workdir_root=WORKDIR_ROOT, suffix=None, remove_workdir=True,
                grace=FOREIGN_GRACE):
    """Tear down the lab `suffix`, or with suffix=None every lab under workdir_root plus the
    ipr-* namespaces of other labs that have no process left (dead leftovers).

    Kills only pids recorded in pidfiles or found in the lab's namespaces, and only while
    they still carry the lab's marker (and, for pidfiles, the program's name). Labs under
    workdir_root are torn down even if running: call suffix=None only when none should be.
    grace: other labs' namespaces younger than this many seconds are left alone even with no
    process in them (a lab being built by someone else, another test run on this machine,
    has none yet)."""
    if suffix:
        suffixes = [suffix]
    else:
        suffixes = sorted(os.listdir(workdir_root)) if os.path.isdir(workdir_root) else []
    namespaces = {}
    for ns in netns.list_namespaces(f"{NS_PREFIX}{suffix}-" if suffix else NS_PREFIX):
        namespaces.setdefault(ns[len(NS_PREFIX):].split("-", 1)[0], []).append(ns)
    pids = netns.pids_by_ns() if namespaces else {}
    for sfx in sorted(set(suffixes) | set(namespaces)):
        names = namespaces.get(sfx, [])
        if sfx not in suffixes and any(pids.get(ns) for ns in names):
            continue  # a live lab kept under another workdir_root
        if sfx not in suffixes and grace and min(map(_ns_age, names)) < grace:
            continue  # maybe another lab still being built
        if sfx in suffixes:
            _kill_pidfiles(os.path.join(workdir_root, sfx), sfx)
        for ns in names:
            for pid in pids.get(ns, []):
                netns.kill_recorded(pid, sfx, "")
            netns.delete(ns)
        if remove_workdir and sfx in suffixes:
            shutil.rmtree(os.path.join(workdir_root, sfx), ignore_errors=True)


def _ns_age(name):
    try:
        return time.time() - os.stat(os.path.join("/run/netns", name)).st_mtime
    except OSError:
        return float("inf")


def _kill_pidfiles(workdir, sfx):
    for dirpath, _, files in os.walk(workdir):
        for name in files:
            prog = next((p for p in PROGRAMS if p in name), None)
            if not name.endswith(".pid") or prog is None:
                continue
            try:
                with open(os.path.join(dirpath, name)) as f:
                    pid = int(f.read().strip())
            except (OSError, ValueError):
                continue
            netns.kill_recorded(pid, sfx, prog)

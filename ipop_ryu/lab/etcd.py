"""A real 3-member etcd cluster for the lab and the tests, in a namespace of its own.

Namespace ipr-S-etcd (S: the lab suffix) holds the members, each on its own address of the
namespace's veth etcd0 (client port 2379, peer port 2380) with its own data directory under
workdir/etcd/<member>. The veth's other end, ipe-S, is in the root namespace, so the tests
(and later the lab's underlay) reach the members. Addresses are a /29 of 198.51.100.0/24 (the
stand-in internet) that no other cluster on this machine holds: .8k+1 the root side, .8k+2..4
the members. Members run with the lab's marker and pidfiles etcd-<member>.pid, so
lab.cleanup_all ends them by pid like every other lab process. No auto-compaction: the tests
compact when they mean to. Watch progress notifications every PROGRESS_INTERVAL, so a client's
dead-watch detector has something to wait for on an idle stream.
"""
import fcntl
import ipaddress
import json
import os
import secrets
import signal
import subprocess
from typing import Dict, List, Optional

from pyroute2 import IPRoute

from ..directory import rbac
from . import netns

NS_PREFIX = "ipr-"
CLIENT_PORT, PEER_PORT = 2379, 2380
NET = ipaddress.ip_network("198.51.100.0/24")
SLOT = 8                     # a /29 per cluster
MEMBERS = ("m1", "m2", "m3")
PROGRESS_INTERVAL = "1s"     # etcd 3.4's default is 10 min
ROOT_PASSWORD_BYTES = 12
_SLOT_LOCK = "/run/ipop-ryu-etcd-slots.lock"


class Member:
    def __init__(self, name, ip, data_dir, log_path, pidfile):
        self.name, self.ip = name, ip
        self.data_dir, self.log_path, self.pidfile = data_dir, log_path, pidfile
        self.proc: Optional[subprocess.Popen] = None

    @property
    def client_url(self):
        return f"http://{self.ip}:{CLIENT_PORT}"

    @property
    def peer_url(self):
        return f"http://{self.ip}:{PEER_PORT}"

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None


class EtcdCluster:
    """start() -> three members up with quorum, auth on (root plus one user per site given).
    Everything it starts it ends in stop(), by pid."""

    def __init__(self, workdir, suffix=None, sites=(), timeout=30.0):
        self.suffix = suffix or secrets.token_hex(3)
        self.workdir = os.path.join(workdir, "etcd")
        self.ns = f"{NS_PREFIX}{self.suffix}-etcd"
        self.root_ifname = f"ipe-{self.suffix}"
        self.timeout = timeout
        self.sites = list(sites)
        self.root_password = secrets.token_hex(ROOT_PASSWORD_BYTES)
        self.passwords: Dict[str, str] = {}        # site node -> its etcd password
        self.members: Dict[str, Member] = {}
        self._env = dict(os.environ, **{netns.MARKER_ENV: self.suffix})
        self._started = False

    # --- lifecycle ----------------------------------------------------------------------

    def start(self):
        self._started = True
        try:
            os.makedirs(self.workdir)   # must not exist: members start a new cluster
            self._build_network()
            for m in self.members.values():
                self._spawn(m, state="new")
            self.wait_healthy()
            self._enable_auth()
            for node in self.sites:
                self.add_site(node)
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        """End every member (by pid) and remove the namespace and its veth (idempotent)."""
        for m in self.members.values():
            self._end(m, hard=True)
        if self._started:
            netns.delete(self.ns)   # takes the veth, both ends, with it
            self._started = False

    # --- faults -------------------------------------------------------------------------

    def kill(self, name, hard=True):
        """SIGKILL (or SIGTERM) one member."""
        self._end(self.members[name], hard=hard)

    def restart(self, name):
        """Start a member that was killed, on its data dir (it rejoins the cluster)."""
        m = self.members[name]
        if not m.running:
            self._spawn(m, state="existing")

    def freeze(self, name):
        """SIGSTOP: the member keeps its sockets and answers nothing (a hung member)."""
        os.kill(self.members[name].proc.pid, signal.SIGSTOP)

    def thaw(self, name):
        os.kill(self.members[name].proc.pid, signal.SIGCONT)

    def lose_quorum(self, keep=None):
        """Kill all members but one (`keep`, or the first): the one left has no quorum.
        Returns the names killed (restart() each to restore quorum)."""
        keep = keep or MEMBERS[0]
        killed = [n for n, m in self.members.items() if n != keep and m.running]
        for name in killed:
            self.kill(name)
        return killed

    def compact(self, revision=None):
        """Compact the history up to `revision` (default: the current one); returns it."""
        revision = revision or self.revision()
        self.ctl("compact", str(revision), "--physical=true")
        return revision

    def defrag(self):
        self.ctl("defrag")

    # --- queries ------------------------------------------------------------------------

    @property
    def endpoints(self) -> List[str]:
        return [m.client_url for m in self.members.values()]

    def running_endpoints(self):
        return [m.client_url for m in self.members.values() if m.running]

    def revision(self):
        out = self.ctl("endpoint", "status", "--write-out=json",
                       endpoints=self.running_endpoints()[:1])
        return int(json.loads(out)[0]["Status"]["header"]["revision"])

    def leader(self):
        """The name of the member that is leader now, or None."""
        out = self.ctl("endpoint", "status", "--write-out=json", check=False,
                       endpoints=self.running_endpoints())
        try:
            rows = json.loads(out)
        except ValueError:
            return None
        for row in rows:
            status = row["Status"]
            if status["leader"] == status["header"]["member_id"]:
                return next(n for n, m in self.members.items() if m.client_url == row["Endpoint"])
        return None

    def healthy(self):
        """True when every running member answers a linearizable read (quorum)."""
        eps = self.running_endpoints()
        if not eps:
            return False
        result = subprocess.run(
            rbac.etcdctl(eps, "endpoint", "health", *self._root_args()),
            capture_output=True, text=True)
        return result.returncode == 0

    def wait_healthy(self, timeout=None):
        netns.wait_until(self.healthy, timeout or self.timeout, "etcd cluster to be healthy",
                         interval=0.1)

    # --- etcdctl ------------------------------------------------------------------------

    def ctl(self, *args, user=None, password=None, endpoints=None, check=True):
        """Run etcdctl (as root once auth is on, or as `user`); returns stdout."""
        auth = [f"--user={user}:{password}"] if user else self._root_args()
        argv = rbac.etcdctl(endpoints or self.running_endpoints(), *auth, *args)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if check and result.returncode:
            raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip() or result.stdout}")
        return result.stdout if check else result.stdout + result.stderr

    def _root_args(self):
        return [f"--user={rbac.ROOT_USER}:{self.root_password}"] if self._auth_on else []

    _auth_on = False

    def _enable_auth(self):
        for args in rbac.enable_auth(self.root_password):
            self.ctl(*args)
        self._auth_on = True

    def add_site(self, node):
        """A user and role for `node` (its password in self.passwords)."""
        self.passwords[node] = secrets.token_hex(ROOT_PASSWORD_BYTES)
        for args in rbac.add_site(node, self.passwords[node]):
            self.ctl(*args)

    def credentials(self, node):
        """(user, password) of a site."""
        return rbac.site_user(node), self.passwords[node]

    # --- building -----------------------------------------------------------------------

    def _build_network(self):
        netns.create(self.ns)
        netns.configure(self.ns, "lo")
        with IPRoute(netns=self.ns) as ipr:
            ipr.link("add", ifname="etcd0", kind="veth", peer={"ifname": self.root_ifname})
            root_side = ipr.link_lookup(ifname=self.root_ifname)[0]
            with open("/proc/self/ns/net") as root_ns:
                ipr.link("set", index=root_side, net_ns_fd=root_ns.fileno())
        # choose and claim a free /29 under a lock: another cluster may be choosing now
        os.makedirs(os.path.dirname(_SLOT_LOCK), exist_ok=True)
        with open(_SLOT_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            base = self._free_slot()
            netns.configure(None, self.root_ifname, address=str(base + 1), prefixlen=29)
        for i, name in enumerate(MEMBERS):
            netns.add_address(self.ns, "etcd0", str(base + 2 + i), 29)
        netns.configure(self.ns, "etcd0")
        for i, name in enumerate(MEMBERS):
            d = os.path.join(self.workdir, name)
            self.members[name] = Member(name, str(base + 2 + i), os.path.join(d, "data"),
                                        os.path.join(d, "etcd.log"),
                                        os.path.join(self.workdir, f"etcd-{name}.pid"))
            os.makedirs(d, exist_ok=True)

    @staticmethod
    def _free_slot():
        with IPRoute() as ipr:
            used = {ipaddress.ip_address(a.get_attr("IFA_ADDRESS"))
                    for a in ipr.get_addr(family=2)}
        for k in range(1, NET.num_addresses // SLOT):
            base = NET.network_address + SLOT * k
            if not any(base <= ip < base + SLOT for ip in used):
                return base
        raise RuntimeError(f"no free /29 in {NET} for another etcd cluster")

    def _spawn(self, m, state):
        cluster = ",".join(f"{x.name}={x.peer_url}" for x in self.members.values())
        argv = ["etcd", f"--name={m.name}", f"--data-dir={m.data_dir}",
                f"--listen-client-urls={m.client_url}", f"--advertise-client-urls={m.client_url}",
                f"--listen-peer-urls={m.peer_url}", f"--initial-advertise-peer-urls={m.peer_url}",
                f"--initial-cluster={cluster}", f"--initial-cluster-state={state}",
                f"--initial-cluster-token=ipop-{self.suffix}",
                f"--experimental-watch-progress-notify-interval={PROGRESS_INTERVAL}",
                "--heartbeat-interval=100", "--election-timeout=1000",
                "--logger=zap", "--log-outputs=stderr"]
        m.proc = netns.spawn(self.ns, argv, m.log_path, self._env, pidfile=m.pidfile)

    @staticmethod
    def _end(m, hard):
        if m.proc is not None and m.proc.poll() is None:
            try:
                os.kill(m.proc.pid, signal.SIGCONT)   # a frozen member cannot die of SIGTERM
            except ProcessLookupError:
                pass
        netns.terminate(m.proc, hard=hard)

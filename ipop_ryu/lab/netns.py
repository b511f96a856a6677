"""Namespace, link and process helpers (pyroute2 for netlink, `ip netns exec` for processes)."""
import os
import signal
import subprocess
import time

from pyroute2 import IPRoute
from pyroute2 import netns as _netns

from ..overlay import vxlan

# Every process the lab starts carries this variable (value: the lab suffix), so leftover
# cleanup can check that a recorded pid still belongs to a lab before killing it.
MARKER_ENV = "IPOP_RYU_LAB"

# ip, ovs-*, tcpdump, ethtool and arping live in sbin, which non-login root shells may lack.
_path = os.environ.get("PATH", "").split(os.pathsep)
os.environ["PATH"] = os.pathsep.join(_path + [d for d in ("/usr/sbin", "/sbin") if d not in _path])


def wait_until(predicate, timeout, what, interval=0.02):
    """Poll predicate() until it returns a truthy value (returned) or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --- namespaces -------------------------------------------------------------------------

def create(name):
    _netns.create(name)


def delete(name):
    try:
        _netns.remove(name)
    except FileNotFoundError:
        pass


def list_namespaces(prefix=""):
    return sorted(n for n in _netns.listnetns() if n.startswith(prefix))


def pids_by_ns():
    """{namespace name: [pids of processes in it]}."""
    return _netns.ns_pids()


PID_NS = "pid:"     # "pid:N": the network namespace of process N (an LXC container's)


def exec_argv(ns, argv):
    if ns.startswith(PID_NS):       # only its network: the host's programs, the host's files
        return ["nsenter", "-t", ns[len(PID_NS):], "-n", *argv]
    return ["ip", "netns", "exec", ns, *argv]


def sysctl(ns, **settings):
    """sysctl in a namespace; keys use '__' for '.', e.g. net__ipv6__conf__all__disable_ipv6=1."""
    args = [f"{k.replace('__', '.')}={v}" for k, v in settings.items()]
    subprocess.run(exec_argv(ns, ["sysctl", "-q", "-w", *args]), check=True)


# --- links ------------------------------------------------------------------------------

def _index(ipr, ifname):
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise LookupError(f"no link {ifname}")
    return found[0]


def add_veth(ns, ifname, peer_ns, peer_ifname):
    """Create a veth pair directly inside namespaces (no name ever appears in the root ns)."""
    with IPRoute(netns=ns) as ipr:
        ipr.link("add", ifname=ifname, kind="veth",
                 peer={"ifname": peer_ifname, "net_ns_fd": peer_ns})


def add_bridge(ns, ifname):
    with IPRoute(netns=ns) as ipr:
        ipr.link("add", ifname=ifname, kind="bridge")


def add_vxlan(ns, ifname, vni, local, remote, dev, mtu):
    """A kernel VXLAN device to one remote, up, made as `ipop-ryu bridge setup` makes it."""
    for argv in (vxlan.add_argv(ifname, vni, remote, local, dev=dev, ns=ns),
                 vxlan.up_argv(ifname, mtu, ns=ns)):
        subprocess.run(argv, check=True, capture_output=True)


def configure(ns, ifname, address=None, prefixlen=24, mac=None, mtu=None, master=None, up=True):
    """Set mac/mtu/master/address on a link in ns and bring it up."""
    with IPRoute(netns=ns) as ipr:
        idx = _index(ipr, ifname)
        attrs = {}
        if mac:
            attrs["address"] = mac
        if mtu:
            attrs["mtu"] = mtu
        if master:
            attrs["master"] = _index(ipr, master)
        if attrs:
            ipr.link("set", index=idx, **attrs)
        if address:
            ipr.addr("add", index=idx, address=address, prefixlen=prefixlen)
        if up:
            ipr.link("set", index=idx, state="up")


def add_address(ns, ifname, address, prefixlen, nodad=False):
    """Add an address (IPv6: nodad skips duplicate address detection)."""
    with IPRoute(netns=ns) as ipr:
        flags = 0x02 if nodad else 0      # IFA_F_NODAD
        ipr.addr("add", index=_index(ipr, ifname), address=address, prefixlen=prefixlen,
                 flags=flags)


def link_names(ns):
    with IPRoute(netns=ns) as ipr:
        return [link.get("ifname") for link in ipr.get_links()]


# --- processes --------------------------------------------------------------------------

def spawn(ns, argv, log_path, env, pidfile=None, cwd=None):
    """Start argv inside ns (ip netns exec execs, so the Popen pid is argv's own pid)."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(exec_argv(ns, argv), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(f"{proc.pid}\n")
    return proc


def terminate(proc, timeout=5.0, hard=False):
    """SIGTERM (SIGKILL if hard, or after timeout) a Popen we started; reaps it."""
    if proc is None or proc.poll() is not None:
        return
    if hard:
        proc.kill()
    else:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def process_marker(pid):
    """Value of MARKER_ENV in /proc/pid/environ, or None (no such process / not ours)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read().split(b"\0")
    except OSError:
        return None
    prefix = MARKER_ENV.encode() + b"="
    for item in environ:
        if item.startswith(prefix):
            return item[len(prefix):].decode()
    return None


def process_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _sockets(pid, proto):
    """Rows of /proc/pid/net/{tcp,udp}: sl local_address(hex ip:port) rem_address st ..."""
    try:
        with open(f"/proc/{pid}/net/{proto}") as f:
            return [line.split() for line in f.readlines()[1:]]
    except OSError:
        return []


def tcp_listening(pid, port):
    """True if some socket listens on TCP `port` in the network namespace of `pid`."""
    # st 0A = LISTEN
    return any(r[3] == "0A" and int(r[1].split(":")[1], 16) == port
               for r in _sockets(pid, "tcp"))


def udp_bound(pid, port):
    """True if some socket is bound to UDP `port` in the network namespace of `pid`."""
    return any(int(r[1].split(":")[1], 16) == port for r in _sockets(pid, "udp"))


def kill_recorded(pid, marker, needle, timeout=3.0):
    """Kill pid only if it still carries our marker and its cmdline contains needle."""
    if process_marker(pid) != marker or needle not in process_cmdline(pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: process_marker(pid) is None or _is_zombie(pid), timeout,
                   f"pid {pid} to exit")
    except ProcessLookupError:
        return True
    except TimeoutError:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return True


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True

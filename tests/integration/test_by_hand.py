"""Two sites set up the documented by-hand way, not through `Lab`: the shell blocks of
docs/by-hand.md run as written, on the userspace datapath, with only paths and namespace
names made unique. Each site is a namespace with its underlay `eth0` (192.0.2.1, .2) on a
bridge in a third; the doc's own commands start OVS, write the sites' files, make the
containers (namespaces), the bridges and the controllers, and ping across at the MTU that
`bridge setup` printed."""
import os
import re
import secrets
import shlex
import subprocess
import sys

import pytest

from ipop_ryu.lab import netns
from .util import one_line_error, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(REPO, "docs", "by-hand.md")
UNDERLAY = {"A": "192.0.2.1", "B": "192.0.2.2"}
CONTAINER = {"A": "10.0.3.10", "B": "10.0.3.130"}
DAEMONS = ("ovsdb-server", "ovs-vswitchd")


def doc_blocks():
    """[(where, text)] of the doc's ```sh blocks: where is "A", "B" or "each site" from a
    first line `# on ...`; the blocks of the other ways (`# with the kernel module, on A`)
    are not run here."""
    with open(DOC) as f:
        text = f.read()
    blocks = []
    for body in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S):
        first = body.splitlines()[0]
        m = re.fullmatch(r"# on (A|B|each site)", first)
        blocks.append((m.group(1) if m else None, body))
    return blocks


class Site:
    def __init__(self, name, sfx, tmp):
        self.name = name
        self.ns = f"ibh-{sfx}-{name}"
        self.container = f"ibh-{sfx}-c{name.lower()}"
        self.rundir = os.path.join(tmp, f"ovs-{name}")
        self.etc = os.path.join(tmp, f"etc-{name}")
        self.env = dict(os.environ, PATH=os.pathsep.join(
            [os.path.join(sys.prefix, "bin"), os.environ["PATH"], "/usr/sbin", "/sbin"]),
            **{netns.MARKER_ENV: sfx})
        self.controller = None
        self.log = os.path.join(tmp, f"controller-{name}.log")

    def substitute(self, text, sites):
        """The doc's paths and names -> this test's unique ones."""
        for other in sites.values():
            text = text.replace(f"peers-{other.name}.conf",
                                os.path.join(other.etc, "peers.conf"))
            text = text.replace(f"ctr-{other.name.lower()}", other.container)
        text = text.replace("/var/run/ipop-ovs", self.rundir).replace("/etc/ipop", self.etc)
        # init writes to /etc/ipop by default: here to the site's own directory
        return re.sub(r"^ipop-ryu init ", f"ipop-ryu init --dir {self.etc} ", text, flags=re.M)

    def sh(self, text, check=True):
        """A doc block in this site's namespace; its `export` lines stay for the next ones.

        `ip netns add` runs outside it, as on a real host: a namespace named inside `ip netns
        exec` is bound only in that command's own mount namespace, and is gone with it."""
        for line in text.splitlines():
            if line.startswith("ip netns add "):
                subprocess.run(shlex.split(line), check=True)
                text = text.replace(line + "\n", "")
            if line.startswith("export "):
                for word in shlex.split(line)[1:]:
                    key, _, value = word.partition("=")
                    self.env[key] = os.path.expandvars(value)
        proc = subprocess.run(netns.exec_argv(self.ns, ["sh", "-ec", text]), env=self.env,
                              capture_output=True, text=True, timeout=60)
        if check:
            assert proc.returncode == 0, f"on {self.name}:\n{text}\n{proc.stdout}{proc.stderr}"
        return proc

    def ipop_ryu(self, *args):
        return subprocess.run(netns.exec_argv(self.ns, ["ipop-ryu", *args]), env=self.env,
                              capture_output=True, text=True, timeout=60)

    def start_controller(self, text):
        argv = shlex.split(text.splitlines()[1])
        assert argv[:2] == ["ipop-ryu", "controller"], text
        self.controller = netns.spawn(self.ns, argv, self.log, self.env, cwd=REPO)

    def stop(self):
        """Finalizer: the controller and the OVS daemons, by pid (only while they are the
        processes started here: they carry its marker), then the namespaces (the VXLAN
        devices go with them)."""
        netns.terminate(self.controller)
        for daemon in DAEMONS:
            try:
                with open(os.path.join(self.rundir, f"{daemon}.pid")) as f:
                    netns.kill_recorded(int(f.read()), self.env[netns.MARKER_ENV], daemon)
            except (OSError, ValueError):
                continue
        netns.delete(self.container)
        netns.delete(self.ns)


@pytest.fixture
def sites(tmp_path, request):
    """Sites A and B: a namespace each, with eth0 on the underlay; nothing else yet."""
    sfx = secrets.token_hex(3)
    underlay = f"ibh-{sfx}-ul"
    made = {name: Site(name, sfx, str(tmp_path)) for name in UNDERLAY}

    def clean():
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            for site in made.values():
                for path in (site.log, os.path.join(site.rundir, "ovs-vswitchd.log")):
                    if os.path.exists(path):
                        with open(path, errors="replace") as f:
                            print(f"--- {path}\n" + "".join(f.readlines()[-25:]))
        for site in made.values():
            site.stop()
        netns.delete(underlay)
    request.addfinalizer(clean)
    netns.create(underlay)
    netns.add_bridge(underlay, "br-ul")
    netns.configure(underlay, "br-ul")
    for name, site in made.items():
        netns.create(site.ns)
        netns.sysctl(site.ns, net__ipv6__conf__all__disable_ipv6=1,
                     net__ipv6__conf__default__disable_ipv6=1)
        netns.configure(site.ns, "lo")
        netns.add_veth(site.ns, "eth0", underlay, f"ul-{name}")
        netns.configure(site.ns, "eth0", address=UNDERLAY[name])
        netns.configure(underlay, f"ul-{name}", master="br-ul")
    return made


def run_doc(sites, where_wanted=None, until=None):
    """Run the doc's blocks in order (those for `where_wanted` only, if given); stop before
    the first block for which until(text) holds. Returns {(where, first command): proc}."""
    out = {}
    for where, body in doc_blocks():
        if until and until(body):
            break
        if where is None:
            continue
        for site in sites.values():
            if where not in ("each site", site.name) or \
                    where_wanted and site.name not in where_wanted:
                continue
            text = site.substitute(body, sites)
            if "ipop-ryu controller" in body:     # (the doc's text: not its paths)
                site.start_controller(text)
            elif " ping " in body:
                out[(site.name, "ping")] = text
            else:
                out[(site.name, text.splitlines()[1])] = site.sh(text)
    return out


def test_two_sites_by_hand_ping_across_at_the_printed_mtu(sites):
    blocks = doc_blocks()
    assert sum(1 for where, _ in blocks if where) >= 11, "the doc's steps are all there"
    done = run_doc(sites)
    setup = {name: proc for (name, first), proc in done.items()
             if first.startswith("ipop-ryu bridge setup")}
    assert set(setup) == {"A", "B"}
    printed = re.search(r"^overlay MTU (\d+) ", setup["A"].stdout, re.M)
    assert printed and "peers by kernel VXLAN devices" in setup["A"].stdout, setup["A"].stdout
    mtu = int(printed.group(1))
    assert mtu == 1450, "VXLAN over the 1500-byte underlay"
    a, b = sites["A"], sites["B"]
    # what the doc told the containers and the ping is what was printed
    assert a.sh(f"ip -n {a.container} -o link show eth0").stdout.count(f"mtu {mtu} ") == 1
    ping = done[("A", "ping")]
    assert f"-M do -s {mtu - 28} {CONTAINER['B']}" in ping
    assert a.sh("ip -o link show c1").stdout.count(f"mtu {mtu} ") == 1, "mtu_request"
    # the full-size ping across, as the doc writes it, once both controllers have met
    wait_for(lambda: a.sh(ping, check=False).returncode == 0, 30,
             "A's container to ping B's at full size",
             show=lambda: a.ipop_ryu("peers", "--controller", "http://127.0.0.1:8080").stdout)
    full = a.sh(ping)
    assert " 0% packet loss" in full.stdout and f"{mtu - 28 + 8} bytes from" in full.stdout
    over = a.sh(f"ip netns exec {a.container} ping -c 1 -W 2 -M do -s {mtu - 27} "
                f"{CONTAINER['B']}", check=False)
    assert over.returncode != 0 and f"mtu={mtu}" in over.stdout + over.stderr, over
    # and the other way
    assert b.sh(f"ip netns exec {b.container} ping -c 2 -M do -s {mtu - 28} "
                f"{CONTAINER['A']}").returncode == 0
    # idempotent: the same command again changes nothing and still works
    again = a.sh(a.substitute(next(body for where, body in blocks if where == "A" and
                                   "bridge setup" in body), sites))
    assert again.stdout == setup["A"].stdout


def test_bridge_setup_faults_are_refused_or_kept(sites):
    """Each fault of issue 19 made on purpose, on site A with OVS started as the doc does."""
    run_doc(sites, "A", until=lambda body: "ipop-ryu init" in body)
    a = sites["A"]
    a.sh("ip link add c1 type veth peer name c1p && ip link add ipop-x type veth peer name xp")
    base = ["bridge", "setup", "br0", "--datapath-type", "netdev", "--port", "c1"]
    # a port asked for whose name matches the peer prefix: added and kept
    done = a.ipop_ryu(*base, "--port", "ipop-x", "--peer", "B=192.0.2.2")
    assert done.returncode == 0 and "removed" not in done.stdout, done.stdout + done.stderr
    assert a.sh("ovs-vsctl list-ports br0").stdout.split() == ["c1", "ipop-B", "ipop-x"]
    done = a.ipop_ryu(*base, "--port", "ipop-x", "--peer", "B=192.0.2.2")
    assert done.returncode == 0 and "ipop-x" in a.sh("ovs-vsctl list-ports br0").stdout
    # dropping the peer removes its port and the VXLAN device bridge setup made for it
    done = a.ipop_ryu(*base, "--port", "ipop-x")
    assert "removed peers no longer listed: ipop-B" in done.stdout, done.stdout + done.stderr
    assert a.sh("ip link show ipop-B", check=False).returncode != 0
    # an unknown interface
    one_line_error(a.ipop_ryu(*base, "--port", "nosuch0"), "no such network interface: nosuch0")
    # a peer that is this host
    one_line_error(a.ipop_ryu(*base, "--peer", "B=192.0.2.1"), "an address of this host")
    # --datapath-type netdev forgotten where there is no OVS kernel module
    if os.path.isdir("/sys/module/openvswitch"):
        pytest.skip("this host has the OVS kernel module")
    one_line_error(a.ipop_ryu("bridge", "setup", "br1", "--port", "c1p"),
                   "the OVS kernel module is not loaded", "use --datapath-type netdev")
    assert "br1" not in a.sh("ovs-vsctl list-br").stdout.split(), "nothing changed"

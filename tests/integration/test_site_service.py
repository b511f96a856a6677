"""A site as a service on the real lab: `ipop-ryu init` -> `ipop-ryu doctor` -> a running
site, and every problem doctor names, each made for real (OVS, the bridge, the controller, the
peers, a peer's clock) and undone in a finalizer."""
import os
import subprocess
import sys

import pytest

from ipop_ryu.core.icc import Codec
from ipop_ryu.lab import netns, seed_two_sites
from ipop_ryu.lab.lab import ICC_PORT
from ipop_ryu.lab.traffic import ping

from .util import wait_for

CLI = os.path.join(sys.prefix, "bin", "ipop-ryu")
FAST = {"hello_interval": "0.5", "peer_hold_time": "2"}


@pytest.fixture
def lab(lab_factory):
    return lab_factory(seed_two_sites(extra_options=FAST, keys="shared"))


def doctor(lab, site="A", conf=None, env=None):
    """`ipop-ryu doctor` in the site's namespace: (exit status, its lines)."""
    argv = [CLI, "doctor", "--config-file", conf or lab.sites[site].config_path]
    if env is None:
        proc = lab.exec(site, argv, check=False)
    else:
        proc = subprocess.run(netns.exec_argv(lab.sites[site].ns, argv), env=env,
                              capture_output=True, text=True, timeout=30)
    assert proc.stderr == "", proc.stderr
    return proc.returncode, proc.stdout.splitlines()


def problems_until(lab, words, site="A", conf=None, timeout=15.0):
    """Poll doctor until one of its lines holds `words`; the problem lines then."""
    seen = {}

    def found():
        seen["out"] = doctor(lab, site, conf)
        return any(words in line for line in seen["out"][1])
    wait_for(found, timeout, f"doctor to report {words!r}", show=lambda: seen.get("out"))
    status, lines = seen["out"]
    assert status == 1 and lines[-1].startswith("doctor: ") and " problem" in lines[-1], lines
    return lines[:-1]


def vsctl(lab, site, *args):
    return lab.sites[site].vsctl(*args)


def test_init_then_doctor_then_a_running_site(lab_factory, tmp_path):
    lab = lab_factory(seed_two_sites(keys="shared"))   # the defaults init writes: hellos every 5 s
    a, b = lab.sites["A"], lab.sites["B"]
    etc = str(tmp_path / "etc")
    init = [CLI, "init", "--node-id", "A", "--peer", f"B@{b.underlay_ip}:{ICC_PORT}",
            "--icc-address", a.underlay_ip, "--key", lab.key_path, "--wsapi-host", a.underlay_ip,
            "--switch-address", a.controller_target[1:], "--dir", etc]   # the lab's listener
    written = subprocess.run(init, capture_output=True, text=True, timeout=30)
    assert written.returncode == 0 and written.stderr == "", written.stderr
    conf = os.path.join(etc, "A.conf")
    again = subprocess.run(init, capture_output=True, text=True, timeout=30)
    assert again.returncode == 2 and "exists: not overwritten" in again.stderr

    lab.stop_controller(a)                      # site A now runs on what init wrote
    a.config_path = conf
    lab.start_controller(a)
    ok = {}

    def healthy():
        ok["out"] = doctor(lab, "A", conf)
        return ok["out"][0] == 0
    wait_for(healthy, 20, "doctor to find site A healthy", show=lambda: ok["out"])
    assert ok["out"][1] == ["doctor: site A is healthy (bridge br0 secure and connected, "
                            "1 peer(s) up, frames to 0 traced into the overlay)"]
    result = ping(lab.hosts["h3"], "10.0.3.7")
    assert result.ok, result.output
    wait_for(lambda: doctor(lab, "A", conf)[1][-1].endswith("frames to 1 traced into the "
                                                            "overlay)"), 10,
             "doctor to trace a frame to B's host, once learned", show=lambda: doctor(lab, "A",
                                                                                     conf))


def test_each_problem_doctor_names(lab, request, tmp_path):
    a = lab.sites["A"]
    target = a.controller_target                # punix:...: A's controller dials it
    wait_for(lambda: doctor(lab)[0] == 0, 10, "a healthy site A", show=lambda: doctor(lab))

    # overlay ports: the file names ports the bridge does not have
    other = tmp_path / "other.conf"
    other.write_text(open(a.config_path).read().replace("overlay_ports = ipop*",
                                                        "overlay_ports = tun*"))
    lines = problems_until(lab, "matches overlay_ports", conf=str(other))
    assert lines == [f"no port of br0 matches overlay_ports 'tun*' (ports: h3, h5, ipop-B): "
                     f"add the tunnel ports (ipop-ryu bridge setup br0 --controller {target} "
                     f"--peer NAME=IP) or fix overlay_ports in {other}"]

    # fail-mode
    request.addfinalizer(lambda: vsctl(lab, "A", "set-fail-mode", "br0", "secure"))
    vsctl(lab, "A", "set-fail-mode", "br0", "standalone")
    lines = problems_until(lab, "not secure")
    assert lines == ["bridge br0 fail-mode is standalone, not secure (without its controller "
                     "it would act as a learning switch across sites): run ovs-vsctl "
                     "set-fail-mode br0 secure"]
    vsctl(lab, "A", "set-fail-mode", "br0", "secure")

    # a peer's clock: B's controller stops; "B" (a sender on B's address with B's key)
    # says hello with a clock 100 s behind
    lab.stop_controller("B")                    # (the lab's teardown stops the rest)
    lines = problems_until(lab, "peer B")
    assert lines == [f"peer B ({lab.sites['B'].underlay_ip}:{ICC_PORT}) is down (last heard "
                     f"{_heard(lines)}s ago): check that its controller runs, that UDP port "
                     f"{ICC_PORT} passes both ways and that both sites hold the same icc.key"]
    late_hellos(lab, seconds=100)
    lines = problems_until(lab, "clock")
    assert lines == [f"peer B ({lab.sites['B'].underlay_ip}:{ICC_PORT}): its clock is 100s "
                     f"behind ours (icc_freshness 30s), so its datagrams are dropped as stale: "
                     f"keep both clocks in sync (timedatectl set-ntp true)"]

    # our controller stopped: the bridge is not connected, the REST API does not answer
    lab.stop_controller("A")
    lines = problems_until(lab, "not connected")
    url = f"http://{a.underlay_ip}:8080/ipop/v1/peers"
    assert lines == [f"bridge br0 is not connected to its controller {target}: start the "
                     f"controller (systemctl start ipop-ryu@site) and read its log "
                     f"(journalctl -u ipop-ryu@site)",
                     f"the controller's REST API at {url} does not answer ([Errno 111] "
                     f"Connection refused): is the controller running? (systemctl status "
                     f"ipop-ryu@site)"]

    # not our controller at all
    request.addfinalizer(lambda: vsctl(lab, "A", "set-controller", "br0", target))
    vsctl(lab, "A", "set-controller", "br0", "tcp:127.0.0.1:6999")
    lines = problems_until(lab, "not ours")
    assert lines[0] == (f"bridge br0's controller is tcp:127.0.0.1:6999, not ours ({target}): "
                        f"run ipop-ryu bridge setup br0 --controller {target}")

    # OVS not reachable
    env = dict(a.ovs.env, OVS_RUNDIR=str(tmp_path / "no-ovs-here"))
    status, lines = doctor(lab, env=env)
    # (the site's own OVS runs in its namespace: doctor names its run directory)
    assert status == 1 and lines[0].startswith(
        f"Open vSwitch is not running in {tmp_path / 'no-ovs-here'} (") and lines[0].endswith(
        f"; export OVS_RUNDIR={a.ovs.env['OVS_RUNDIR']} (where this host's Open vSwitch "
        f"runs)"), lines


def _heard(lines):
    return lines[0].split("last heard ")[1].split("s ago")[0]


def late_hellos(lab, seconds, count=20):
    """Signed hellos from B's address and ICC port with B's name and a clock `seconds`
    behind, sent from B's namespace (B's controller is stopped)."""
    b, a = lab.sites["B"], lab.sites["A"]
    key = open(lab.key_path, "rb").read().strip()
    code = (
        "import socket, sys, time\n"
        "from ipop_ryu.core.icc import Codec\n"
        f"codec = Codec({key!r})\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"s.bind(({b.underlay_ip!r}, {ICC_PORT}))\n"
        f"for i in range({count}):\n"
        f"    ts = time.time() - {seconds}\n"
        "    s.sendto(codec.encode('hello', 'B', int(ts * 1e6), ts, boot='late'),"
        f" ({a.underlay_ip!r}, {ICC_PORT}))\n"
        "    time.sleep(0.1)\n")
    assert Codec(key)       # the lab's key is a valid one
    lab.exec("B", [sys.executable, "-c", code], timeout=30)

"""`ipop-ryu lab up|status|exec|down`, run as the installed console script. Every lab lives
under a private workdir root, so these tests never see a user's lab or another test's."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from ipop_ryu.lab import Lab, cleanup_all, mesh
from ipop_ryu.lab import netns

from .conftest import _skip_reason
from .util import needs_simple_switch_13, wait_for

CLI = os.path.join(sys.prefix, "bin", "ipop-ryu")


def lab(root, action, *args, timeout=120, **kw):
    """`ipop-ryu lab ACTION --workdir-root ROOT ARGS...` (text, captured)."""
    return subprocess.run([CLI, "lab", action, "--workdir-root", root, *args],
                          capture_output=True, text=True, timeout=timeout, **kw)


def one_line_error(proc, status, *words):
    assert proc.returncode == status and proc.stdout == "", (proc.returncode, proc.stdout,
                                                             proc.stderr)
    assert proc.stderr.startswith("ipop-ryu: ") and proc.stderr.count("\n") == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


def new_root():
    return tempfile.mkdtemp(prefix="iprl-", dir="/tmp")  # short: OVS socket paths


def remove_root(root):
    cleanup_all(workdir_root=root)
    shutil.rmtree(root, ignore_errors=True)


def lab_json(root, suffix):
    with open(os.path.join(root, suffix, "lab.json")) as f:
        return json.load(f)


def pids(desc):
    return [p for s in desc["sites"] for p in s["pids"].values()]


def alive(pid):
    return netns.process_marker(pid) is not None


def suffix_of(up_stdout):
    return re.match(r"lab ([0-9a-f]{6}): ", up_stdout).group(1)


@pytest.fixture
def root():
    path = new_root()
    yield path
    remove_root(path)


@pytest.fixture(scope="module")
def seed():
    """The seed's two sites with ipop controllers, built once by `ipop-ryu lab up`."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    path = new_root()
    try:
        up = lab(path, "up")
        assert up.returncode == 0, up.stderr
        sfx = suffix_of(up.stdout)
        yield {"root": path, "up": up, "suffix": sfx, "desc": lab_json(path, sfx)}
    finally:
        remove_root(path)


def test_up_prints_the_map_and_leaves_the_lab_running(seed):
    out, err, sfx = seed["up"].stdout, seed["up"].stderr, seed["suffix"]
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    for site, ip in (("A", "192.0.2.1"), ("B", "192.0.2.2")):
        assert f"ipr-{sfx}-{site} " in rows[site] and f" {ip}/24 " in rows[site], out
        assert f"http://{ip}:8080" in rows[site] and "connected" in rows[site], out
    for host, ip, mac in (("h3", "10.0.3.3", "02:00:0a:00:03:03"),
                          ("h5", "10.0.3.5", "02:00:0a:00:03:05"),
                          ("h7", "10.0.3.7", "02:00:0a:00:03:07"),
                          ("h104", "10.0.3.104", "02:00:0a:00:03:68")):
        assert f" {ip}/24 " in rows[host] and f" {mac} " in rows[host], out
    assert "ipop-ryu lab exec h5 -- ping -c 3 10.0.3.7" in out
    # one progress line per long step, on stderr, with the elapsed time
    steps = re.findall(r"^lab up \[\s*\d+\.\ds\] (.*)$", err, re.M)
    for words in ("building 7 namespaces", "starting 2 controllers", "starting Open vSwitch",
                  "waiting for 2 bridges to connect", f"lab {sfx} is up"):
        assert any(words in step for step in steps), err
    # the CLI has exited; the daemons it started have not
    desc = seed["desc"]
    assert desc["state"] == "up" and desc["controller"] == "ipop"
    assert len(pids(desc)) == 6 and all(map(alive, pids(desc)))
    # 7 for the sites, hosts and underlay; 1 for the upstream the sites' NAT reaches
    assert len(netns.list_namespaces(f"ipr-{sfx}-")) == 8


def test_status_of_a_running_lab(seed):
    proc = lab(seed["root"], "status")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    for site in ("A", "B"):
        assert rows[site].count(" alive") == 3 and "br0 connected" in rows[site], proc.stdout
        flows = int(re.search(r"br0 connected\s+(\d+)", rows[site]).group(1))
        assert flows > 10, proc.stdout
    assert "10.0.3.104" in rows["h104"] and f"ipr-{seed['suffix']}-B-h104" in rows["h104"]
    assert proc.stdout.rstrip().splitlines()[-1].startswith("healthy: 2 sites")


def test_exec_in_a_site_reaches_that_sites_ovs(seed):
    root = seed["root"]
    proc = lab(root, "exec", "A", "--", "ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "br0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("cookie=0x4950") > 10, proc.stdout
    proc = lab(root, "exec", "B", "--", "ovs-vsctl", "get", "bridge", "br0",
               "other-config:datapath-id")
    assert proc.stdout.strip() == '"0000000000000002"', proc  # B's database, not A's
    proc = lab(root, "exec", "A", "--", "ovs-appctl", "version")  # default target
    assert proc.returncode == 0 and "ovs-vswitchd" in proc.stdout, proc
    proc = lab(root, "exec", "A", "--", "ip", "-4", "-o", "addr", "show", "ul0")
    assert "192.0.2.1/24" in proc.stdout, proc


def test_exec_in_a_container_and_the_underlay(seed):
    root = seed["root"]
    proc = lab(root, "exec", "h3", "--", "ip", "-4", "addr", "show", "eth0")
    assert proc.returncode == 0 and "inet 10.0.3.3/24" in proc.stdout, proc
    proc = lab(root, "exec", "h5", "--", "ping", "-n", "-c", "1", "-W", "5", "10.0.3.7")
    assert proc.returncode == 0 and "1 received" in proc.stdout, proc
    proc = lab(root, "exec", "ul", "--", "ip", "-o", "link", "show", "br-ul")
    assert proc.returncode == 0 and "br-ul" in proc.stdout, proc


def test_exec_passes_streams_and_exit_status_through(seed):
    root = seed["root"]
    proc = lab(root, "exec", "h3", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, "out\n", "err\n")
    proc = lab(root, "exec", "A", "--", "cat", input="through stdin\n")
    assert (proc.returncode, proc.stdout) == (0, "through stdin\n")
    assert lab(root, "exec", "h104", "--", "false").returncode == 1
    # no command: a shell in the namespace (here reading its commands from stdin)
    proc = lab(root, "exec", "h7", input="ip -4 -o addr show eth0\n",
               env=dict(os.environ, SHELL="/bin/sh"))
    assert proc.returncode == 0 and "10.0.3.7/24" in proc.stdout, proc


def test_exec_errors(seed):
    root, sfx = seed["root"], seed["suffix"]
    one_line_error(lab(root, "exec", "h9", "--", "true"), 2, "no site or container 'h9'",
                   f"in lab {sfx}", "sites: A, B", "containers: h3, h5, h7, h104")
    one_line_error(lab(root, "exec", "h3", "--", "no-such-command"), 127,
                   "no-such-command: command not found")
    one_line_error(lab(root, "exec", "--lab", "abcdef", "h3", "--", "true"), 2,
                   f"no lab abcdef under {root} (labs there: {sfx})")


def test_commands_without_a_lab(root):
    env = dict(os.environ, IPOP_RYU_LAB_ROOT=root)  # the root from the environment
    for argv in (["status"], ["exec", "A", "--", "true"], ["down"]):
        proc = subprocess.run([CLI, "lab", *argv], capture_output=True, text=True, env=env,
                              timeout=60)
        one_line_error(proc, 1, f"no lab is up under {root}", "ipop-ryu lab up")


def test_up_errors(root):
    one_line_error(lab(root, "up", "--hosts-per-site", "1"), 2, "--hosts-per-site needs --sites")
    one_line_error(lab(root, "up", "--sites", "7"), 2, "1-6 sites")
    one_line_error(lab(root, "up", "--arp-timeout", "0"), 2, "--arp-timeout")
    assert lab(root, "up", "--controller", "pox").returncode == 2  # argparse's usage error
    proc = lab(root, "up", "--ryu-manager", "/bin/false")
    assert proc.returncode == 1, proc
    assert proc.stderr.splitlines()[-1] == ("ipop-ryu: lab up failed, nothing left behind: "
                                            "controller of site A is not running"), proc.stderr
    sfx = re.search(r"lab up \[\s*0\.\ds\] lab ([0-9a-f]{6}):", proc.stderr).group(1)
    assert not netns.list_namespaces(f"ipr-{sfx}-") and os.listdir(root) == []


@needs_simple_switch_13
def test_several_labs_then_down_all_removes_what_any_run_left(root):
    first = lab(root, "up", "--sites", "3", "--hosts-per-site", "1", "--controller", "normal")
    assert first.returncode == 0, first.stderr
    first_sfx = suffix_of(first.stdout)
    assert re.search(r"^C +ipr-\S+-C +192\.0\.2\.3/24 +br0, standalone \(NORMAL\) +ipop-A "
                     r"ipop-B", first.stdout, re.M), first.stdout
    assert re.search(r"^h50 +C .* 10\.0\.3\.50/24 +02:00:0a:00:03:32", first.stdout, re.M)
    second = lab(root, "up", "--sites", "1", "--hosts-per-site", "1", "--controller",
                 "simple_switch_13")
    assert second.returncode == 0, second.stderr
    second_sfx = suffix_of(second.stdout)
    # A run that did not go through the CLI (no lab.json) and was never torn down.
    leftover = Lab(mesh(1, 1, controller="normal"), workdir_root=root).up()
    every = [first_sfx, second_sfx, leftover.suffix]
    all_pids = pids(lab_json(root, first_sfx)) + pids(lab_json(root, second_sfx)) + \
        list(leftover.sites["A"].ovs.pids.values())
    assert len(all_pids) == 6 + 3 + 2 and all(map(alive, all_pids))

    # the most recent lab is the current one; --lab picks another
    status = lab(root, "status")
    assert status.returncode == 0 and f"lab {second_sfx}: controller simple_switch_13" in \
        status.stdout, status
    assert f"note: 2 labs under {root}; showing the most recent, {second_sfx}" in status.stderr
    status = lab(root, "status", "--lab", first_sfx)
    assert status.returncode == 0 and "br0 standalone" in status.stdout, status

    down = lab(root, "down")  # the current one
    assert down.returncode == 0, down.stderr
    assert re.fullmatch(rf"lab {second_sfx} is down: 4 processes stopped, 4 namespaces "
                        r"removed \(\d+\.\d s\)\n", down.stdout), down.stdout
    assert not netns.list_namespaces(f"ipr-{second_sfx}-")
    status = lab(root, "status")
    assert status.returncode == 0 and f"lab {first_sfx}:" in status.stdout, status

    down = lab(root, "down", "--all")
    assert down.returncode == 0, down.stderr
    # the first lab's 6 and its 3 sites' dnsmasq, the leftover's 2; namespaces 8 + 3
    assert down.stdout.startswith(f"removed 2 labs ({', '.join(sorted(every[::2]))}): 11 "
                                  f"processes stopped, 11 namespaces removed"), down.stdout
    assert not [n for n in netns.list_namespaces("ipr-") if n.split("-")[1] in every]
    wait_for(lambda: not any(map(alive, all_pids)), 10, "every lab process to exit")
    assert os.listdir(root) == []
    down = lab(root, "down", "--all")
    assert down.stdout.startswith("nothing to remove: no lab under "), down.stdout
    one_line_error(lab(root, "down", "--all", "--lab", first_sfx), 2, "exclude each other")


def test_status_reports_a_dead_controller_and_down_removes_the_lab(seed):
    """Last in this module: it takes the module's lab down."""
    root, sfx, desc = seed["root"], seed["suffix"], seed["desc"]
    controller = desc["sites"][0]["pids"]["ryu-manager"]
    os.kill(controller, signal.SIGTERM)

    def degraded():
        proc = lab(root, "status")
        return proc if proc.returncode == 1 else None
    proc = wait_for(degraded, 30, "status to notice the dead controller")
    row = next(line for line in proc.stdout.splitlines() if line.startswith("A "))
    assert f"{controller} DEAD" in row and "br0 NOT CONNECTED" in row, proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith(
        "NOT healthy: A: controller not running; A: br0 not connected"), proc.stdout

    down = lab(root, "down")
    assert down.returncode == 0, down.stderr
    assert down.stdout.startswith(f"lab {sfx} is down: 7 processes stopped, 8 namespaces "
                                  "removed"), down.stdout
    assert not netns.list_namespaces(f"ipr-{sfx}-") and not any(map(alive, pids(desc)))
    assert not os.path.exists(desc["workdir"])
    one_line_error(lab(root, "status"), 1, "no lab is up")

"""`ipop-ryu demo` (what `make demo` runs), as the installed console script, under a private
workdir root."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from ipop_ryu.lab import cleanup_all
from ipop_ryu.lab import netns

from .util import wait_for

CLI = os.path.join(sys.prefix, "bin", "ipop-ryu")


@pytest.fixture
def root():
    path = tempfile.mkdtemp(prefix="iprd-", dir="/tmp")  # short: OVS socket paths
    yield path
    cleanup_all(workdir_root=path)
    shutil.rmtree(path, ignore_errors=True)


def demo(root, *args):
    return subprocess.run([CLI, "demo", "--workdir-root", root, *args], capture_output=True,
                          text=True, timeout=300)


def suffix_of(stdout):
    return re.search(r"^lab ([0-9a-f]{6}): 2 sites", stdout, re.M).group(1)


def nothing_left(root, sfx):
    assert os.listdir(root) == []
    assert not netns.list_namespaces(f"ipr-{sfx}-")
    assert not [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                if netns.process_marker(pid) == sfx]


def section(out, title):
    """The text of the demo section whose heading contains title."""
    return out.split(title, 1)[1].split("\n== ", 1)[0]


def test_demo_pings_shows_tables_and_flows_and_tears_down(root):
    proc = demo(root)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    verdict = out.rstrip().splitlines()[-1]
    assert re.fullmatch(r"demo: OK — 3/3 seed pings succeeded \(first ping \d+\.\d\d s after "
                        r"lab up; lab up \d+\.\d s, whole demo \d+\.\d s\)", verdict), verdict
    sfx = suffix_of(out)
    assert "http://192.0.2.1:8080" in out and "02:00:0a:00:03:68" in out  # the map
    pings = section(out, "== the seed's pings ==")
    for cmd in ("lab exec h5 -- ping -n -c 3 -i 0.2 -w 10 10.0.3.7",
                "lab exec h3 -- ping -n -c 3 -i 0.2 -w 10 10.0.3.104",
                "lab exec h3 -- ping -n -c 3 -i 0.2 -w 10 10.0.3.5"):
        assert cmd in pings, pings
    assert pings.count("3 packets transmitted, 3 received, 0% packet loss") == 3, pings

    tables = section(out, "what each controller learned")
    a, b = tables.split("lab exec B -- ipop-ryu arp --controller http://192.0.2.2:8080")
    rows_a = {line.split()[0]: line for line in a.splitlines() if line.startswith("10.")}
    rows_b = {line.split()[0]: line for line in b.splitlines() if line.startswith("10.")}
    for ip, mac in (("10.0.3.7", "02:00:0a:00:03:07"), ("10.0.3.104", "02:00:0a:00:03:68")):
        assert re.search(rf"{mac} +B +remote .* yes$", rows_a[ip]), tables
        assert re.search(rf"{mac} +B +local port h", rows_b[ip]), tables
    assert "local port h5" in rows_a["10.0.3.5"]

    flows = section(out, "proxy-ARP flows")
    a, b = flows.split("$ ipop-ryu lab exec B -- ")
    assert "cookie=0x495000040a000307" in a and "arp_tpa=10.0.3.7," in a, flows
    assert "set_field:02:00:0a:00:03:68->arp_sha" in a, flows
    assert "arp_tpa=10.0.3.5," in b, flows

    # 2 x (ovsdb-server, ovs-vswitchd, controller, dnsmasq); ul, up, 2 sites, 4 containers
    assert re.search(rf"^lab {sfx} is down: 8 processes stopped, 8 namespaces removed",
                     out, re.M), out
    assert "waiting for 2 bridges to connect" in proc.stderr  # lab up's progress
    nothing_left(root, sfx)


def test_demo_failure_still_ends_with_a_verdict(root):
    proc = demo(root, "--ryu-manager", "/bin/false")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().splitlines()[-1] == (
        "demo: FAILED — lab up failed, nothing left behind: controller of site A is not "
        "running")
    sfx = re.search(r"lab up \[\s*\d+\.\ds\] lab ([0-9a-f]{6}):", proc.stderr).group(1)
    nothing_left(root, sfx)


def test_ctrl_c_during_the_demo_tears_the_lab_down(root):
    # a shell's background job inherits SIGINT ignored (CI may run us so): Ctrl-C as a
    # terminal would deliver it needs the default disposition back
    proc = subprocess.Popen([CLI, "demo", "--workdir-root", root], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        def lab_is_up():
            for name in os.listdir(root):
                try:
                    with open(os.path.join(root, name, "lab.json")) as f:
                        if json.load(f)["state"] == "up":
                            return name
                except (OSError, ValueError):
                    pass
            assert proc.poll() is None, "the demo ended before it was interrupted"
            return None
        sfx = wait_for(lab_is_up, 120, "the demo's lab to be up", interval=0.02)
        # the demo takes about a second past this point: hold it while Ctrl-C is pressed,
        # so the interrupt lands in the demo, not after its last step
        proc.send_signal(signal.SIGSTOP)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out + err
    assert out.rstrip().splitlines()[-1].startswith("demo: FAILED — interrupted ("), out
    assert f"lab {sfx} is down: " in out
    nothing_left(root, sfx)

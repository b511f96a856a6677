"""Integration fixtures: namespace labs with private userspace OVS instances (needs root)."""
import os
import shutil

import pytest

from ipop_ryu.lab import Lab
from ipop_ryu.lab import netns

TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl",
         "ip", "tcpdump", "ethtool", "arping", "ping")
_session_suffixes = []


def _skip_reason():
    if os.geteuid() != 0:
        return "integration tests need root (network namespaces, OVS daemons)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing tools {missing}: run `make apt`"
    return None


@pytest.fixture(autouse=True)
def _require_lab_tools():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def lab_factory(request):
    """make(spec, **Lab kwargs) -> a Lab that is up; every lab is torn down afterwards,
    and on failure the tails of its controller and vswitchd logs are printed."""
    labs = []

    def make(spec, **kw):
        lab = Lab(spec, **kw)
        labs.append(lab)
        _session_suffixes.append(lab.suffix)
        return lab.up()

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for lab in labs:
        if failed:
            _print_logs(lab)
        lab.down()


def module_lab(spec):
    """A lab up for a module-scoped fixture, down after: `yield from module_lab(spec)`
    (each test of the module undoes what it breaks)."""
    lab = Lab(spec)
    _session_suffixes.append(lab.suffix)
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


def _print_logs(lab):
    for site in lab.sites.values():
        for path in (site.log_path, site.ovs.path("ovs-vswitchd", "log")):
            try:
                with open(path, errors="replace") as f:
                    tail = f.read().splitlines()[-25:]
            except OSError:
                continue
            print(f"--- {path}\n" + "\n".join(tail))


@pytest.fixture(scope="session", autouse=True)
def _no_leftovers():
    yield
    if not _session_suffixes:
        return
    ours = set(_session_suffixes)
    left = [ns for ns in netns.list_namespaces("ipr-") if ns.split("-")[1] in ours]
    procs = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
             if netns.process_marker(pid) in ours]
    assert not left and not procs, f"left over: namespaces {left}, processes {procs}"


# --- real LXC containers (ipop_ryu/lab/lxc.py): a module using `containers` defines the
# lab they run on as its fixture `services_lab`

@pytest.fixture(scope="session")
def lxc_base():
    from ipop_ryu.lab import lxc
    base = lxc.LxcBase()
    yield base
    base.remove()


@pytest.fixture
def containers(lxc_base, services_lab):
    """start(site, **Container options) -> a running Container on that site; all stopped
    and destroyed after."""
    from ipop_ryu.lab import lxc
    made = []

    def start(site, **options):
        site = services_lab.sites[site]
        container = lxc.Container(lxc_base, services_lab, site,
                                  lxc_base.new_name(f"c{services_lab.suffix}"), **options)
        made.append(container)
        return container.start()

    yield start
    for container in made:
        container.destroy()

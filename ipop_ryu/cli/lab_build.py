"""Building and removing labs for `ipop-ryu lab` and `ipop-ryu demo`: the spec from the
command line, `build` (everything removed again when it fails or is interrupted), `teardown`,
`down_all`, finding a described lab, and the guard against pyroute2's forked helpers running
our code on Ctrl-C.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from . import CommandError

DEFAULT_ROOT = "/tmp/ipop-ryu-lab"  # ipop_ryu.lab.WORKDIR_ROOT, without importing pyroute2
ROOT_ENV = "IPOP_RYU_LAB_ROOT"
CONTROLLERS = ("ipop", "simple_switch_13", "normal")
TOOLS = ("ip", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ethtool")
DOWN_ALL_GRACE = 30.0  # s: another root's namespaces younger than this may be a lab being built
NO_LAB_STATUS = 1


class Progress:
    """One line per long step on stderr, with the time since the start."""

    def __init__(self, prefix, stream=None):
        self.prefix, self.stream, self.start = prefix, stream or sys.stderr, time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.start

    def __call__(self, message):
        print(f"{self.prefix} [{self.elapsed():5.1f}s] {message}", file=self.stream, flush=True)


def workdir_root(args):
    return getattr(args, "workdir_root", None) or os.environ.get(ROOT_ENV) or DEFAULT_ROOT


def check_can_build():
    if os.geteuid() != 0:
        raise CommandError("the lab needs root (network namespaces, Open vSwitch daemons)")
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = [t for t in TOOLS if shutil.which(t, path=path) is None]
    if missing:
        raise CommandError(f"missing {', '.join(missing)}: run `make setup` (as root)")


def lab_spec(sites=None, hosts_per_site=None, controller="ipop", arp_timeout=300,
             announce=True, ipv6=False, encrypt=False, services=False):
    from ..lab.topology import mesh, seed_two_sites
    if arp_timeout < 1:
        raise CommandError(f"bad --arp-timeout {arp_timeout}: at least 1 second")
    if encrypt and controller != "ipop":
        raise CommandError("--encrypt needs --controller ipop (its per-site keys key "
                           "WireGuard)")
    kw = dict(controller=controller, arp_timeout=arp_timeout, ipv6=ipv6, encrypt=encrypt,
              services=services,
              extra_options={} if announce else {"announce": "false"})
    if sites is None:
        if hosts_per_site is not None:
            raise CommandError("--hosts-per-site needs --sites N (without --sites: the seed's "
                               "two sites A{h3,h5} and B{h7,h104})")
        return seed_two_sites(**kw)
    try:
        return mesh(sites, 2 if hosts_per_site is None else hosts_per_site, **kw)
    except ValueError as exc:
        raise CommandError(f"bad --sites/--hosts-per-site: {exc}") from None


_forks_guarded = []


def _quiet_fork_child():
    # pyroute2 forks helpers (namespace creation, netlink in a namespace) that return with
    # os._exit, unless a Ctrl-C sent to the whole process group raises KeyboardInterrupt in
    # them: then they would run this process's code (its teardown, its output) as well.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def guard_forks():
    if not _forks_guarded:
        os.register_at_fork(after_in_child=_quiet_fork_child)
        _forks_guarded.append(True)


def wait_for_forks(timeout=3.0):
    """Wait for the forked helpers of this process (its children that still run this very
    program, e.g. pyroute2's) to finish: one interrupted halfway may still create a namespace."""
    me, cmdline = os.getpid(), _cmdline(os.getpid())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for name in os.listdir("/proc"):
            if not name.isdigit() or name == str(me):
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != "Z" and _cmdline(int(name)) == cmdline:
                busy = True
                break
        if not busy:
            return
        time.sleep(0.02)


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None


def build(spec, root, ryu_manager=None, progress=None, built=None):
    """Build a lab under root and describe it in its lab.json: (Lab, description).
    On failure everything built is removed and CommandError (status 1) raised. The Lab is
    appended to `built` before anything is built, so that a caller interrupted at any point
    can still tear it down."""
    from ..lab import state
    from ..lab.lab import Lab, cleanup_all
    check_can_build()
    guard_forks()
    if ryu_manager is not None and not os.access(ryu_manager, os.X_OK):
        raise CommandError(f"bad --ryu-manager {ryu_manager!r}: not an executable file")
    os.makedirs(root, exist_ok=True)
    progress = progress or Progress("lab up")
    created, saved = time.time(), []

    def step(message):
        if not saved and os.path.isdir(lab.workdir):  # from here on `lab down` finds it
            state.save(lab, "starting", created)
            saved.append(True)
        progress(message)
    lab = Lab(spec, workdir_root=root, ryu_manager=ryu_manager, progress=step)
    if built is not None:
        built.append(lab)
    step(f"lab {lab.suffix}: {len(lab.sites)} sites, {len(lab.hosts)} containers, "
         f"controller {spec.controller}, files in {lab.workdir}")
    try:
        lab.up()
    except BaseException as exc:  # up() has torn down what it built
        wait_for_forks()
        cleanup_all(root, suffix=lab.suffix)  # what an interrupted helper made meanwhile
        state.forget({"workdir_root": root, "suffix": lab.suffix})
        if built is not None and lab in built:
            built.remove(lab)
        if not isinstance(exc, Exception):
            raise
        text = str(exc)
        if isinstance(exc, subprocess.CalledProcessError) and exc.stderr:
            text += f" {exc.stderr.strip()}"
        lines = text.strip().splitlines() or [type(exc).__name__]
        if len(lines) > 1:
            print("\n".join(lines[1:]), file=sys.stderr)
        first = re.sub(r";? (/\S+?):?$",  # a log path that went with the workdir
                       lambda m: "" if not os.path.exists(m.group(1)) else m.group(0), lines[0])
        raise CommandError(f"lab up failed, nothing left behind: {first}", status=1)
    try:
        desc = state.save(lab, "up", created)
        for site in desc["sites"]:
            state.link_ctl_sockets(site)
    except BaseException:
        lab.down()
        wait_for_forks()
        cleanup_all(root, suffix=lab.suffix)
        state.forget({"workdir_root": root, "suffix": lab.suffix})
        raise
    progress(f"lab {lab.suffix} is up")
    return lab, desc


def teardown(lab):
    """Stop and remove one lab (a Lab built here, or state.attach()ed); one-line summary."""
    from ..lab import state
    from ..lab.lab import cleanup_all
    guard_forks()
    wait_for_forks()
    start = time.monotonic()
    sfx = lab.suffix
    before = [p for p, m in state.marked_processes().items() if m == sfx]
    namespaces = lab.namespaces()
    lab.down()
    if lab.namespaces():  # made by a helper that was still running when down() looked
        wait_for_forks()
        cleanup_all(lab.workdir_root, suffix=sfx, remove_workdir=not lab.keep_workdir)
    state.forget({"workdir_root": lab.workdir_root, "suffix": sfx})
    stopped = [p for p in before if not state.alive(p, sfx)]
    left = lab.namespaces()
    summary = (f"lab {sfx} is down: {len(stopped)} processes stopped, "
               f"{len(namespaces) - len(left)} namespaces removed "
               f"({time.monotonic() - start:.1f} s)")
    if left or len(stopped) < len(before):
        raise CommandError(f"{summary}, but left: namespaces {left}, "
                           f"pids {sorted(set(before) - set(stopped))}", status=1)
    return summary


def find_lab(args):
    from ..lab import state
    root = workdir_root(args)
    try:
        return state.find(root, getattr(args, "lab", None))
    except state.NoLab as exc:
        if exc.suffix:
            raise CommandError(str(exc)) from None
        raise CommandError(f"{exc} (start one with `ipop-ryu lab up`)",
                           status=NO_LAB_STATUS) from None


def down_all(root):
    """cleanup_all(): every lab under root, running or not, and other roots' dead leftovers."""
    from ..lab import netns, state
    from ..lab.lab import cleanup_all
    if os.geteuid() != 0:
        raise CommandError("lab down --all needs root")
    start = time.monotonic()
    ns_before = netns.list_namespaces("ipr-")
    dirs_before = set(os.listdir(root)) if os.path.isdir(root) else set()
    procs_before = state.marked_processes()
    cleanup_all(root, grace=DOWN_ALL_GRACE)
    ns_after = set(netns.list_namespaces("ipr-"))
    dirs_after = set(os.listdir(root)) if os.path.isdir(root) else set()
    removed_ns = [n for n in ns_before if n not in ns_after]
    gone = (dirs_before - dirs_after) | {n.split("-")[1] for n in removed_ns}
    stopped = [p for p, m in procs_before.items() if m in gone and not state.alive(p, m)]
    left = sorted(n for n in ns_after if n.split("-")[1] in gone)
    if not gone:
        return f"nothing to remove: no lab under {root}, no dead ipr-* namespaces"
    summary = (f"removed {len(gone)} labs ({', '.join(sorted(gone))}): {len(stopped)} "
               f"processes stopped, {len(removed_ns)} namespaces removed "
               f"({time.monotonic() - start:.1f} s)")
    if left:
        raise CommandError(f"{summary}, but left: {left}", status=1)
    return summary

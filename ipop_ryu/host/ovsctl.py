"""OVS's command-line tools as the CLI and the lab use them: run one, read its first line, check
the daemons answer, and the controller record's clauses. Nothing here parses a site's file.
"""
import os
import re
import signal
import subprocess

from . import CommandError

IFNAMSIZ = 15  # longest Linux interface name; OVS port and bridge names are interface names
VSCTL_TIMEOUT = 20  # seconds: ovs-vsctl waits for ovs-vswitchd to apply the change
START_HINT = ("start it with `systemctl start openvswitch-switch` "
              "(or `/usr/share/openvswitch/scripts/ovs-ctl start`)")
RUNDIR_HINT = "export OVS_RUNDIR={} (where this host's Open vSwitch runs)"
# How the bridge and its controller find each other. By default OVS listens on a Unix socket
# in its run directory (a passive target) and the controller dials it ([ipop] switch_address):
# a restarted controller has its bridge as soon as it runs, with no reconnect backoff, and
# only root reaches the socket (OVN's ovn-controller reaches br-int the same way). With an
# active target (tcp:HOST:PORT) OVS dials the controller instead, as in the seed, and retries
# a lost one with a doubling backoff capped at max_backoff (default 8000): at 1000 it retries
# every second, so a restarted controller has its bridge 1-1.5 s after it listens.
DEFAULT_RUNDIR = "/var/run/openvswitch"
LISTENER_SUFFIX = ".ipop"
MAX_BACKOFF_MS = MIN_BACKOFF_MS = 1000  # the minimum: OVS's schema refuses less
# Idle time before OVS sends an echo request; as long again without a reply and the connection
# is dropped. A controller that exits closes its socket, seen at once: the probe only catches a
# silent loss (hung controller, lost host), while fail-mode=secure keeps the flows. 5000 is
# OVS's default and the least it honours for a controller (it rounds up), pinned here.
INACTIVITY_PROBE_MS = MIN_PROBE_MS = 5000


def check_name(kind, name):
    if not name or len(name) > IFNAMSIZ or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise CommandError(f"bad {kind} name {name!r}: 1 to {IFNAMSIZ} characters "
                           "(letters, digits, '_', '.', '-')")
    return name


def default_controller(bridge):
    """punix:<OVS run directory>/BRIDGE.ipop: a listener the controller dials."""
    return f"punix:{os.path.join(rundir(), bridge + LISTENER_SUFFIX)}"


def switch_address_for(target):
    """The [ipop] switch_address that dials a passive target; None for an active one."""
    if target.startswith("punix:"):
        return "unix:" + target[len("punix:"):]
    if target.startswith("ptcp:"):
        port, _, host = target[len("ptcp:"):].partition(":")
        return f"tcp:{host or '127.0.0.1'}:{port}"
    return None


def controller_clauses(bridge, controller, max_backoff=MAX_BACKOFF_MS,
                       inactivity_probe=INACTIVITY_PROBE_MS):
    """ovs-vsctl clauses: `bridge`'s one controller, with its timers.

    Within one transaction `controller BRIDGE` already names the record set-controller made."""
    return ["--", "set-controller", bridge, controller,
            "--", "set", "controller", bridge, f"max_backoff={max_backoff}",
            f"inactivity_probe={inactivity_probe}"]


def run(argv, timeout=VSCTL_TIMEOUT + 5):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise CommandError(f"{argv[0]} not found: install openvswitch-switch "
                           "(`make apt`)") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"{argv[0]} did not answer within {timeout}s") from None


def first_line(proc):
    if proc.returncode == -signal.SIGALRM:  # how ovs-vsctl/ovs-ofctl --timeout ends them
        return f"{proc.args[0]} timed out"
    lines = (proc.stderr or proc.stdout or "").strip().splitlines()
    return lines[0] if lines else f"exit status {proc.returncode}"


def _vswitchd_alive(pidfile):
    try:
        with open(pidfile) as f:
            os.kill(int(f.read().strip()), 0)
    except PermissionError:  # alive, run by another user
        return True
    except (OSError, ValueError):
        return False
    return True


def rundir():
    return os.environ.get("OVS_RUNDIR", DEFAULT_RUNDIR)


def running_rundirs(proc_root="/proc"):
    """Run directories of the ovsdb-server/ovs-vswitchd processes in this network namespace
    (from their --pidfile/--unixctl/--remote=punix: paths or their OVS_RUNDIR)."""
    try:
        here = os.readlink(os.path.join(proc_root, "self", "ns", "net"))
    except OSError:
        here = None
    found = set()
    for pid in filter(str.isdigit, os.listdir(proc_root)):
        base = os.path.join(proc_root, pid)
        try:
            with open(os.path.join(base, "cmdline"), "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            if not argv or os.path.basename(argv[0]) not in ("ovsdb-server", "ovs-vswitchd"):
                continue
            if here and os.readlink(os.path.join(base, "ns", "net")) != here:
                continue
            with open(os.path.join(base, "environ"), "rb") as f:
                env = dict(e.decode(errors="replace").partition("=")[::2]
                           for e in f.read().split(b"\0") if b"=" in e)
        except OSError:
            continue
        found.update(_rundirs_of(argv[1:], env))
    return sorted(found)


def _rundirs_of(args, env):
    for arg in args:
        for flag in ("--pidfile=", "--unixctl=", "--remote=punix:"):
            if arg.startswith(flag) and os.path.isabs(arg[len(flag):]):
                yield os.path.dirname(arg[len(flag):])
                return
    if env.get("OVS_RUNDIR"):
        yield env["OVS_RUNDIR"]
    elif any(a.startswith("--pidfile") for a in args):
        yield DEFAULT_RUNDIR


def elsewhere():
    """The run directory of an Open vSwitch running here that OVS_RUNDIR does not name."""
    dirs = [d for d in running_rundirs() if os.path.realpath(d) != os.path.realpath(rundir())]
    return dirs[0] if len(dirs) == 1 else None


def start_hint():
    other = elsewhere()
    return RUNDIR_HINT.format(other) if other else \
        f"{START_HINT}; or, if it runs with its own run directory, export OVS_RUNDIR=DIR"


def ensure_ovs_running():
    """Bridge names in the database; CommandError unless ovsdb-server and ovs-vswitchd run.

    Checked before any write: without ovs-vswitchd, ovs-vsctl commits the change to the
    database and then waits for it until its timeout (written, never applied)."""
    proc = run(["ovs-vsctl", "--timeout=5", "list-br"], timeout=10)
    if proc.returncode != 0:
        reason = first_line(proc).removeprefix("ovs-vsctl: ")
        raise CommandError(f"Open vSwitch is not running in {rundir()} ({reason}); "
                           f"{start_hint()}")
    # ovs-vsctl, ovs-appctl and the daemons all find each other through OVS_RUNDIR
    pidfile = os.path.join(rundir(), "ovs-vswitchd.pid")
    if not _vswitchd_alive(pidfile):
        raise CommandError(f"ovs-vswitchd is not running (its database is up, but no live "
                           f"process in {pidfile}); {start_hint()}")
    return proc.stdout.split()


def unknown_bridge(bridge, bridges):
    known = ", ".join(bridges) or "none"
    return CommandError(f"no bridge named {bridge} (bridges: {known})")


def vsctl(*args):
    proc = run(["ovs-vsctl", "--timeout=5", *args], timeout=10)
    if proc.returncode != 0:
        raise CommandError(f"ovs-vsctl {' '.join(args)}: {first_line(proc)}")
    return proc.stdout.strip()


def is_connected(target):
    """Whether the bridge has its controller on `target`. An active target's Controller row
    says so (is_connected); OVS keeps no such state for a passive listener (punix:, ptcp:),
    so there the question is whether the listener holds an established connection."""
    kind, _, rest = target.partition(":")
    if kind == "punix":
        argv = ["ss", "-xnH", "state", "established", "src", rest]
    elif kind == "ptcp":
        argv = ["ss", "-tnH", "state", "established", f"( sport = :{rest.partition(':')[0]} )"]
    else:
        return vsctl("--bare", "--columns=is_connected", "find", "controller",
                     f'target="{target}"').split()[:1] == ["true"]
    proc = run(argv, timeout=10)
    if proc.returncode != 0:
        raise CommandError(f"{' '.join(argv)}: {first_line(proc)}")
    return bool(proc.stdout.strip())



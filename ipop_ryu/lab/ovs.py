"""One private Open vSwitch instance (ovsdb-server + userspace ovs-vswitchd) per namespace."""
import os
import subprocess

from . import netns

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
DAEMONS = ("ovsdb-server", "ovs-vswitchd")


class OvsInstance:
    """Daemons run inside `ns`; every file (db, sockets, pidfiles, logs) lives in `rundir`."""

    def __init__(self, ns, rundir, marker="", timeout=20.0):
        self.ns = ns
        self.rundir = rundir
        self.timeout = timeout
        self.db_path = os.path.join(rundir, "conf.db")
        self.db_sock = os.path.join(rundir, "db.sock")
        self.env = dict(os.environ, OVS_RUNDIR=rundir, OVS_DBDIR=rundir, OVS_LOGDIR=rundir,
                        **{netns.MARKER_ENV: marker})
        self._procs = {}

    def path(self, daemon, ext):
        return os.path.join(self.rundir, f"{daemon}.{ext}")

    @property
    def pids(self):
        """{daemon: pid} of the daemons currently running."""
        return {d: p.pid for d, p in self._procs.items() if p.poll() is None}

    def running(self, daemon):
        proc = self._procs.get(daemon)
        return proc is not None and proc.poll() is None

    def start(self):
        """Start whatever is not running (idempotent); a restart reuses the same conf.db."""
        os.makedirs(self.rundir, exist_ok=True)
        if not self.running("ovsdb-server"):
            self._start_db()
        if not self.running("ovs-vswitchd"):
            self._start_vswitchd()

    def stop(self, db=True, hard=False):
        """Stop ovs-vswitchd (and ovsdb-server unless db=False); hard: SIGKILL."""
        for daemon in reversed(DAEMONS):
            if daemon == "ovsdb-server" and not db:
                continue
            netns.terminate(self._procs.pop(daemon, None), hard=hard)

    def _spawn(self, daemon, *args):
        argv = [daemon, *args, f"--unixctl={self.path(daemon, 'ctl')}",
                f"--pidfile={self.path(daemon, 'pid')}", f"--log-file={self.path(daemon, 'log')}",
                "-vconsole:off"]
        # Left by a killed daemon: a stale ctl socket would pass the readiness check.
        for ext in ("pid", "ctl"):
            if os.path.exists(self.path(daemon, ext)):
                os.unlink(self.path(daemon, ext))
        self._procs[daemon] = netns.spawn(self.ns, argv, self.path(daemon, "out"), self.env)

    def _start_db(self):
        if not os.path.exists(self.db_path):
            subprocess.run(["ovsdb-tool", "create", self.db_path, SCHEMA], check=True)
            fresh = True
        else:
            fresh = False
        self._spawn("ovsdb-server", self.db_path, f"--remote=punix:{self.db_sock}")
        self._wait_ctl("ovsdb-server")
        if fresh:
            self.vsctl("--no-wait", "init")

    def _start_vswitchd(self):
        self._spawn("ovs-vswitchd", f"unix:{self.db_sock}")
        self._wait_ctl("ovs-vswitchd")

    def _wait_ctl(self, daemon):
        def ready():
            if not self.running(daemon):
                raise RuntimeError(f"{daemon} in {self.ns} exited: {self.tail(daemon)}")
            if not os.path.exists(self.path(daemon, "ctl")):
                return False
            return self.appctl(daemon, "version", check=False).returncode == 0
        netns.wait_until(ready, self.timeout, f"{daemon} in {self.ns}")

    def log_size(self, target=None):
        """Size of the log that shows connections to target (see connection_log)."""
        try:
            return os.path.getsize(connection_log(self.rundir, target))
        except OSError:
            return 0

    def controller_connected(self, bridge, target, since=0):
        return bridge_connected(self.rundir, bridge, target, since)

    def tail(self, daemon, lines=20):
        out = []
        for ext in ("out", "log"):
            try:
                with open(self.path(daemon, ext), errors="replace") as f:
                    out += f.read().splitlines()[-lines:]
            except OSError:
                pass
        return "\n".join(out)

    def _run(self, argv, check=True):
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True,
                              timeout=self.timeout + 5)
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def appctl(self, daemon, *args, check=True):
        return self._run(["ovs-appctl", "-t", self.path(daemon, "ctl"), *args], check)

    def vsctl(self, *args):
        """ovs-vsctl against this instance's db; returns stdout."""
        return self._run(["ovs-vsctl", f"--db=unix:{self.db_sock}",
                          f"--timeout={int(self.timeout)}", *args]).stdout

    def ofctl(self, *args):
        """ovs-ofctl -O OpenFlow13 (bridge names resolve to OVS_RUNDIR/<br>.mgmt); stdout."""
        return self._run(["ovs-ofctl", "-O", "OpenFlow13", *args]).stdout


def dialed_by_controller(target):
    """A passive target (punix:, ptcp:): OVS listens and the controller dials the bridge."""
    return target.startswith(("punix:", "ptcp:", "pssl:"))


def connection_log(rundir, target=None):
    """Where a bridge's connection to its controller is logged: vswitchd logs its rconn
    states for the controllers it dials; a connection the controller made is a service
    connection, which vswitchd does not log, so the ipop app's own lines are read."""
    name = "controller.log" if target and dialed_by_controller(target) else "ovs-vswitchd.log"
    return os.path.join(rundir, name)


def bridge_connected(rundir, bridge, target, since=0):
    """The last connection state logged for bridge and target after byte offset `since`
    (take log_size(target) before a restart) is "connected".

    Logs are read instead of Controller:is_connected because vswitchd refreshes that column
    only with its statistics timer (at least every 5 s), and never for a passive target."""
    dialed = dialed_by_controller(target)
    state = None
    try:
        with open(connection_log(rundir, target), "rb") as f:
            f.seek(since)
            for line in f.read().decode(errors="replace").splitlines():
                if dialed and line.startswith("bridge ") and line.endswith("connected"):
                    state = line.rsplit(" ", 1)[1]
                elif not dialed and "|rconn|" in line and f"{bridge}<->{target}: " in line:
                    state = line.rstrip().rsplit(": ", 1)[1]
    except OSError:
        return False
    return state == "connected"

"""`ipop-ryu lab up|status|exec|down`: the multi-site namespace lab (ipop_ryu/lab) as a tool.

`up` builds the sites and returns; the lab's daemons keep running in their own sessions.
What was built is kept in WORKDIR/lab.json (ipop_ryu.lab.state), where `status`, `exec` and
`down` find it: by default the most recent lab under the workdir root, or `--lab SUFFIX`.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from . import CommandError
from .status import table

DEFAULT_ROOT = "/tmp/ipop-ryu-lab"  # ipop_ryu.lab.WORKDIR_ROOT, without importing pyroute2
ROOT_ENV = "IPOP_RYU_LAB_ROOT"
CONTROLLERS = ("ipop", "simple_switch_13", "normal")
TOOLS = ("ip", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ethtool")
DOWN_ALL_GRACE = 30.0  # s: another root's namespaces younger than this may be a lab being built
NO_LAB_STATUS = 1


# --- shared with `ipop-ryu demo` -----------------------------------------------------------

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
             announce=True):
    from ..lab.topology import mesh, seed_two_sites
    if arp_timeout < 1:
        raise CommandError(f"bad --arp-timeout {arp_timeout}: at least 1 second")
    kw = dict(controller=controller, arp_timeout=arp_timeout,
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


def render_map(desc):
    sfx, sites = desc["suffix"], desc["sites"]
    n_hosts = sum(len(s["hosts"]) for s in sites)
    lines = [f"lab {sfx}: {len(sites)} sites, {n_hosts} containers, controller "
             f"{desc['controller']}; files in {desc['workdir']}", ""]
    controlled = desc["controller"] != "normal"
    lines.append(table(sites, [
        ("SITE", "name"), ("NAMESPACE", "ns"), ("UNDERLAY", lambda s: f"{s['underlay_ip']}/24"),
        ("BRIDGE", lambda s: f"{s['bridge']}, " + (
            f"connected to ryu-manager pid {s['pids'].get('ryu-manager')}"
            if controlled else "standalone (NORMAL)")),
        ("OVERLAY PORTS", lambda s: " ".join(s["overlay_ports"]) or None),
        ("CONTROLLER REST", "rest")]))
    lines.append("")
    hosts = [dict(h, site=s["name"], bridge=s["bridge"]) for s in sites for h in s["hosts"]]
    if hosts:
        lines.append(table(hosts, [
            ("CONTAINER", "name"), ("SITE", "site"), ("NAMESPACE", "ns"),
            ("IP", lambda h: f"{h['ip']}/24"), ("MAC", "mac"),
            ("PORT", lambda h: f"{h['bridge']}:{h['port']} ({h['ofport']})")]))
        lines.append("")
    lines.append(f"underlay: bridge br-ul in {desc['underlay_ns']}; overlay: kernel VXLAN "
                 f"port ipop-<peer> per site pair")
    looped = desc["controller"] != "ipop" and len(sites) >= 3
    if looped:
        lines.append(f"note: {desc['controller']} on a full mesh of {len(sites)} sites is a "
                     "loop without STP: one broadcast (an ARP request) circulates for ever")
    pick = "" if _is_latest(desc) else f" --lab {sfx}"
    tries = []
    across = _two_hosts_on_two_sites(sites)
    if across and not looped:
        tries.append(f"ipop-ryu lab exec{pick} {across[0]['name']} -- ping -c 3 {across[1]['ip']}")
    tries.append(f"ipop-ryu lab exec{pick} {sites[0]['name']} -- "
                 f"ovs-ofctl -O OpenFlow13 dump-flows {sites[0]['bridge']}")
    if sites[0].get("rest"):
        tries.append(f"ipop-ryu lab exec{pick} {sites[0]['name']} -- "
                     f"ipop-ryu arp --controller {sites[0]['rest']}")
    tries.append(f"ipop-ryu lab status{pick}; ipop-ryu lab down{pick}")
    lines += ["try:  " + tries[0]] + ["      " + t for t in tries[1:]]
    return "\n".join(lines)


def _two_hosts_on_two_sites(sites):
    with_hosts = [s for s in sites if s["hosts"]]
    if len(with_hosts) < 2:
        return None
    first = with_hosts[0]["hosts"]
    return first[-1], with_hosts[1]["hosts"][0]


def _is_latest(desc):
    from ..lab import state
    labs = state.all_labs(desc["workdir_root"])
    return not labs or labs[-1]["suffix"] == desc["suffix"]


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


# --- up -------------------------------------------------------------------------------------

def cmd_up(args):
    spec = lab_spec(args.sites, args.hosts_per_site, args.controller, args.arp_timeout,
                    args.announce)
    _, desc = build(spec, workdir_root(args), args.ryu_manager)
    print(render_map(desc))


# --- status ---------------------------------------------------------------------------------

def site_status(desc, site):
    """Facts about one site of a described lab, and the problems among them."""
    from ..lab import netns, ovs, state
    from ..lab.lab import CONTROLLER_TARGET     # labs saved before targets were per site
    sfx = desc["suffix"]
    ns_present = site["ns"] in set(netns.list_namespaces(f"ipr-{sfx}-"))
    procs = {p: state.pid_of(site, p) for p in state.PROGRAMS}
    up = {p: state.alive(pid, sfx) for p, pid in procs.items()}
    problems = [] if ns_present else ["namespace missing"]
    for daemon in ("ovsdb-server", "ovs-vswitchd"):
        if not up[daemon]:
            problems.append(f"{daemon} not running")
    controlled = desc["controller"] != "normal"
    if controlled and not up["ryu-manager"]:
        problems.append("controller not running")
    connected, flows = None, None
    if up["ovs-vswitchd"]:
        if controlled:
            target = site.get("controller_target", desc.get("controller_target", CONTROLLER_TARGET))
            connected = ovs.bridge_connected(site["rundir"], site["bridge"], target)
            if not connected:
                problems.append(f"{site['bridge']} not connected")
        flows = _flow_count(site)
    return {"procs": procs, "up": up, "connected": connected, "flows": flows,
            "ns_present": ns_present, "problems": problems}


def _flow_count(site):
    env = dict(os.environ, OVS_RUNDIR=site["rundir"])
    try:
        proc = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--timeout=5", "dump-aggregate",
                               site["bridge"]], env=env, capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for word in proc.stdout.split():
        if word.startswith("flow_count="):
            return int(word.split("=", 1)[1])
    return None


def _age(seconds):
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m{rest % 60:02d}s" if h else f"{rest // 60}m{rest % 60:02d}s"


def cmd_status(args):
    from ..lab import netns
    desc, labs = find_lab(args)
    if len(labs) > 1 and not args.lab:
        others = ", ".join(d["suffix"] for d in labs if d is not desc)
        print(f"note: {len(labs)} labs under {desc['workdir_root']}; showing the most recent, "
              f"{desc['suffix']} (others: {others}; pick one with --lab SUFFIX)",
              file=sys.stderr)
    sfx = desc["suffix"]
    statuses = {s["name"]: site_status(desc, s) for s in desc["sites"]}
    controlled = desc["controller"] != "normal"
    lines = [f"lab {sfx}: controller {desc['controller']}, {desc['state']} for "
             f"{_age(time.time() - desc['created'])}; files in {desc['workdir']}", ""]

    def proc(program):
        def cell(site):
            st = statuses[site["name"]]
            pid = st["procs"][program]
            return f"{pid or '-'} {'alive' if st['up'][program] else 'DEAD'}"
        return cell

    def bridge(site):
        st = statuses[site["name"]]
        if not st["up"]["ovs-vswitchd"]:
            return "-"
        if not controlled:
            return f"{site['bridge']} standalone"
        return f"{site['bridge']} {'connected' if st['connected'] else 'NOT CONNECTED'}"

    columns = [("SITE", "name"),
               ("NAMESPACE", lambda s: s["ns"] + ("" if statuses[s["name"]]["ns_present"]
                                                  else " (MISSING)")),
               ("UNDERLAY", "underlay_ip"), ("OVSDB-SERVER", proc("ovsdb-server")),
               ("OVS-VSWITCHD", proc("ovs-vswitchd"))]
    if controlled:
        columns.append(("CONTROLLER", proc("ryu-manager")))
    columns += [("BRIDGE", bridge), ("FLOWS", lambda s: statuses[s["name"]]["flows"])]
    if desc["controller"] == "ipop":
        columns.append(("REST", "rest"))
    lines.append(table(desc["sites"], columns))
    present = set(netns.list_namespaces(f"ipr-{sfx}-"))
    hosts = [dict(h, site=s["name"]) for s in desc["sites"] for h in s["hosts"]]
    if hosts:
        lines += ["", table(hosts, [
            ("CONTAINER", "name"), ("SITE", "site"),
            ("NAMESPACE", lambda h: h["ns"] + ("" if h["ns"] in present else " (MISSING)")),
            ("IP", "ip"), ("MAC", "mac"), ("PORT", "port")])]
    problems = [f"{name}: {p}" for name, st in statuses.items() for p in st["problems"]]
    problems += [f"{h['name']}: namespace missing" for h in hosts if h["ns"] not in present]
    lines.append("")
    if problems:
        lines.append(f"NOT healthy: {'; '.join(problems)} (`ipop-ryu lab down` removes it)")
    else:
        lines.append(f"healthy: {len(desc['sites'])} sites, every daemon running"
                     + (", every bridge connected" if controlled else ""))
    print("\n".join(lines))
    return 1 if problems else 0


# --- exec -----------------------------------------------------------------------------------

def resolve_target(desc, target):
    """(namespace, site description or None) for a site name, a container name, `ul` or one
    of the lab's namespace names."""
    for site in desc["sites"]:
        if target in (site["name"], site["ns"]):
            return site["ns"], site
        for host in site["hosts"]:
            if target in (host["name"], host["ns"]):
                return host["ns"], None
    if target in ("ul", desc["underlay_ns"]):
        return desc["underlay_ns"], None
    sites = ", ".join(s["name"] for s in desc["sites"])
    hosts = ", ".join(h["name"] for s in desc["sites"] for h in s["hosts"]) or "none"
    raise CommandError(f"no site or container {target!r} in lab {desc['suffix']} "
                       f"(sites: {sites}; containers: {hosts}; ul: the underlay)")


def exec_env(desc, site):
    """The environment of a command run by `lab exec`: the lab's marker (so that `lab down`
    also stops what it left running), this venv's bin on PATH, and in a site the OVS_*
    variables that point ovs-vsctl, ovs-ofctl and ovs-appctl at the site's daemons."""
    env = dict(os.environ, IPOP_RYU_LAB=desc["suffix"])
    path = env.get("PATH", "").split(os.pathsep)
    for extra in (os.path.join(sys.prefix, "bin"), "/usr/sbin", "/sbin"):
        if extra not in path:
            path.append(extra)
    env["PATH"] = os.pathsep.join(path)
    if site:
        env.update(OVS_RUNDIR=site["rundir"], OVS_DBDIR=site["rundir"],
                   OVS_LOGDIR=site["rundir"])
    return env


def cmd_exec(args):
    from ..lab import netns, state
    desc, _ = find_lab(args)
    ns, site = resolve_target(desc, args.target)
    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        command = [os.environ.get("SHELL") or "/bin/sh"]
    if ns not in netns.list_namespaces(f"ipr-{desc['suffix']}-"):
        raise CommandError(f"namespace {ns} of lab {desc['suffix']} is gone (see `ipop-ryu lab "
                           f"status`; `ipop-ryu lab down` removes the rest)", status=1)
    env = exec_env(desc, site)
    if shutil.which(command[0], path=env["PATH"]) is None:
        raise CommandError(f"{command[0]}: command not found", status=127)
    if site:
        state.link_ctl_sockets(site)
    sys.stdout.flush()
    sys.stderr.flush()
    argv = ["ip", "netns", "exec", ns, *command]
    os.execvpe(argv[0], argv, env)  # the command's exit status is ours


# --- down -----------------------------------------------------------------------------------

def cmd_down(args):
    if args.all:
        if args.lab:
            raise CommandError("--all and --lab exclude each other")
        print(down_all(workdir_root(args)))
        return 0
    from ..lab import state
    desc, _ = find_lab(args)
    print(teardown(state.attach(desc)))
    return 0


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


# --- argument parsing -----------------------------------------------------------------------

def register(sub):
    root_opt = argparse.ArgumentParser(add_help=False)
    root_opt.add_argument("--workdir-root", metavar="DIR",
                          help=f"where labs keep their files and lab.json (default ${ROOT_ENV} "
                               f"or {DEFAULT_ROOT})")
    pick = argparse.ArgumentParser(add_help=False)
    pick.add_argument("--lab", metavar="SUFFIX",
                      help="the lab to use (default: the most recently built one)")

    lab = sub.add_parser("lab", help="a multi-site lab on this machine: up, status, exec, down",
                         description="A multi-site IPOP lab on this machine (root): network "
                                     "namespaces, one Open vSwitch and one controller per "
                                     "site, sites joined by VXLAN over an underlay bridge.")
    actions = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)

    up = actions.add_parser(
        "up", parents=[root_opt], help="build a lab and leave it running",
        description="Build the sites, start OVS and one controller per site, wait until every "
                    "bridge is connected, print the map. Without --sites: the seed's two sites "
                    "A{h3 10.0.3.3, h5 10.0.3.5} and B{h7 10.0.3.7, h104 10.0.3.104}.")
    up.add_argument("--sites", type=int, metavar="N",
                    help="N sites A, B, ... (1-6) with --hosts-per-site containers each")
    up.add_argument("--hosts-per-site", type=int, metavar="M",
                    help="containers per site (0-20, default 2): site i's are "
                         "h<10+20i+j> at 10.0.3.<10+20i+j>")
    up.add_argument("--controller", choices=CONTROLLERS, default="ipop",
                    help="ipop (default), Ryu's simple_switch_13, or normal: no controller, "
                         "OVS NORMAL")
    up.add_argument("--arp-timeout", type=int, default=300, metavar="SECONDS",
                    help="[ipop] arp_timeout of the controllers (default 300)")
    up.add_argument("--no-announce", dest="announce", action="store_false",
                    help="[ipop] announce = false: the seed's pull mode, hosts learned only "
                         "through relayed requests (default: announced to every peer)")
    up.add_argument("--ryu-manager", metavar="PATH",
                    help="the ryu-manager to run (default: this venv's)")
    up.set_defaults(func=cmd_up)

    status = actions.add_parser(
        "status", parents=[root_opt, pick], help="daemons, bridges and flows of the lab",
        description="Per site: namespace, OVS daemons, controller, bridge connection, number "
                    "of flows; the containers. Exit status 0 when all is well, 1 otherwise "
                    "(also when no lab is up).")
    status.set_defaults(func=cmd_status)

    ex = actions.add_parser(
        "exec", parents=[root_opt, pick], help="run a command in a site's or container's "
                                               "namespace",
        description="Run CMD in the namespace of a site (with OVS_RUNDIR etc. set, so that "
                    "ovs-vsctl, ovs-ofctl and ovs-appctl reach that site's daemons), of a "
                    "container, or of the underlay (ul). The exit status is CMD's. Without "
                    "CMD: $SHELL. Options go before TARGET.",
        usage="%(prog)s [-h] [--workdir-root DIR] [--lab SUFFIX] TARGET [--] [CMD ...]")
    ex.add_argument("target", metavar="TARGET", help="site (A), container (h3) or ul")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD", help="the command")
    ex.set_defaults(func=cmd_exec)

    down = actions.add_parser(
        "down", parents=[root_opt, pick], help="stop and remove the lab (--all: every lab)",
        description="Stop the lab's processes and remove its namespaces and files. --all: "
                    "every lab under the workdir root, running or not, and the namespaces "
                    "that dead labs elsewhere left behind (only recorded or marked pids are "
                    "killed).")
    down.add_argument("--all", action="store_true",
                      help="remove everything any earlier run left behind")
    down.set_defaults(func=cmd_down)

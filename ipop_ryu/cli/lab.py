"""`ipop-ryu lab up|status|exec|down`: the multi-site namespace lab (ipop_ryu/lab) as a tool.
This module is the command line and `exec`; building and removing labs is lab_build.py,
what `up` and `status` print is lab_show.py.

`up` builds the sites and returns; the lab's daemons keep running in their own sessions.
What was built is kept in WORKDIR/lab.json (ipop_ryu.lab.state), where `status`, `exec` and
`down` find it: by default the most recent lab under the workdir root, or `--lab SUFFIX`.
"""
import argparse
import os
import shutil
import sys

from . import CommandError
from .lab_build import (CONTROLLERS, DEFAULT_ROOT, ROOT_ENV, build, down_all, find_lab,
                        lab_spec, teardown, workdir_root)
from .lab_show import render_map, render_status


# --- up -------------------------------------------------------------------------------------

def cmd_up(args):
    spec = lab_spec(args.sites, args.hosts_per_site, args.controller, args.arp_timeout,
                    args.announce, args.ipv6, args.encrypt, not args.static)
    _, desc = build(spec, workdir_root(args), args.ryu_manager)
    print(render_map(desc))


# --- status ---------------------------------------------------------------------------------

def cmd_status(args):
    desc, labs = find_lab(args)
    if len(labs) > 1 and not args.lab:
        others = ", ".join(d["suffix"] for d in labs if d is not desc)
        print(f"note: {len(labs)} labs under {desc['workdir_root']}; showing the most recent, "
              f"{desc['suffix']} (others: {others}; pick one with --lab SUFFIX)",
              file=sys.stderr)
    text, unhealthy = render_status(desc)
    print(text)
    return 1 if unhealthy else 0


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
    up.add_argument("--ipv6", action="store_true",
                    help="containers also get IPv6: a link-local address and fd00:3::N "
                         "(10.0.3.N's N)")
    up.add_argument("--encrypt", action="store_true",
                    help="join the sites by WireGuard (kernel, else wireguard-go), each keyed "
                         "with its controller's own key: VXLAN and ICC cross the underlay "
                         "only encrypted; container MTU 1370")
    up.add_argument("--static", action="store_true",
                    help="no site services: only the containers' hand-set addresses (by "
                         "default each site serves lxc-net's share: the gateway 10.0.3.1, "
                         "DHCP from its own pool, NAT to an upstream at 198.51.100.1)")
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

"""What `ipop-ryu lab up` built, kept as WORKDIR/lab.json, so that later commands (status,
exec, down) find a lab whose builder process has long exited.

The daemons of a lab run in their own sessions and outlive the process that started them;
their pids are in the pidfiles of each site's run dir (the truth) and in lab.json (a copy).
"""
import glob
import json
import os
import time

from . import netns
from .lab import WORKDIR_ROOT, Lab
from .ovs import DAEMONS
from .topology import HostSpec, LabSpec, SiteSpec

STATE_FILE = "lab.json"
ROOT_ENV = "IPOP_RYU_LAB_ROOT"  # overrides WORKDIR_ROOT for every `ipop-ryu lab` command
VERSION = 1
REST_PORT = 8080
PROGRAMS = (*DAEMONS, "ryu-manager")


class NoLab(LookupError):
    """No lab described under the root (or not the one asked for)."""

    def __init__(self, root, suffix=None, known=()):
        self.root, self.suffix, self.known = root, suffix, list(known)
        if suffix:
            labs = ", ".join(self.known) or "none"
            message = f"no lab {suffix} under {root} (labs there: {labs})"
        else:
            message = f"no lab is up under {root}"
        super().__init__(message)


def default_root():
    return os.environ.get(ROOT_ENV) or WORKDIR_ROOT


def state_path(root, suffix):
    return os.path.join(root, suffix, STATE_FILE)


def describe(lab, state, created):
    """The JSON-able description of a Lab object."""
    sites = []
    for site in lab.sites.values():
        pids = dict(site.ovs.pids)
        if site.controller_pid:
            pids["ryu-manager"] = site.controller_pid
        wireguard_go = lab.wireguard_process(site)
        if wireguard_go:
            pids["wireguard-go"] = wireguard_go.pid
        sites.append({
            "name": site.name, "index": site.index, "ns": site.ns,
            "underlay_ip": site.underlay_ip, "rundir": site.rundir, "bridge": site.bridge,
            "overlay_ports": list(site.overlay_ports),
            "tunnel_ip": site.tunnel_ip, "wg_ifname": site.wg_ifname,   # "" unless encrypted
            "site_address": site.site_address, "uplink_ip": site.uplink_ip,  # "": no services
            "controller_target": site.controller_target,
            "rest": f"http://{site.underlay_ip}:{REST_PORT}"
            if lab.spec.controller == "ipop" else None,
            "pids": pids,
            "hosts": [{"name": h.name, "ns": h.ns, "ip": h.ip, "mac": h.mac, "port": h.port,
                       "ofport": n} for n, h in enumerate(site.hosts.values(), 1)],
        })
    return {"version": VERSION, "suffix": lab.suffix, "state": state, "created": created,
            "workdir_root": lab.workdir_root, "workdir": lab.workdir,
            "controller": lab.spec.controller, "arp_timeout": lab.spec.arp_timeout,
            "extra_options": dict(lab.spec.extra_options), "underlay_ns": lab.underlay_ns,
            "encrypt": lab.spec.encrypt, "mtu": lab.mtu,
            "services": lab.spec.services, "upstream_ns": lab.upstream_ns,
            "builder_pid": os.getpid(), "sites": sites}


def save(lab, state="up", created=None):
    """Write (atomically) WORKDIR/lab.json for lab; returns the description."""
    desc = describe(lab, state, created or time.time())
    path = state_path(lab.workdir_root, lab.suffix)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(desc, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return desc


def load(root, suffix):
    try:
        with open(state_path(root, suffix)) as f:
            desc = json.load(f)
    except (OSError, ValueError):
        return None
    return desc if isinstance(desc, dict) and desc.get("version") == VERSION else None


def all_labs(root):
    """Descriptions of the labs under root, oldest first."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    labs = [d for d in (load(root, name) for name in names) if d]
    return sorted(labs, key=lambda d: (d.get("created", 0), d["suffix"]))


def find(root, suffix=None):
    """(the lab asked for, or the most recent one; every lab under root) or raise NoLab."""
    labs = all_labs(root)
    if suffix:
        chosen = next((d for d in labs if d["suffix"] == suffix), None)
        if chosen is None:
            raise NoLab(root, suffix, [d["suffix"] for d in labs])
        return chosen, labs
    if not labs:
        raise NoLab(root)
    return labs[-1], labs


def forget(desc):
    try:
        os.unlink(state_path(desc["workdir_root"], desc["suffix"]))
    except FileNotFoundError:
        pass


def spec_of(desc):
    return LabSpec([SiteSpec(s["name"], [HostSpec(h["name"], h["ip"]) for h in s["hosts"]])
                    for s in desc["sites"]], controller=desc["controller"],
                   arp_timeout=desc["arp_timeout"], extra_options=desc.get("extra_options", {}),
                   encrypt=desc.get("encrypt", False), services=desc.get("services", False))


def attach(desc):
    """A Lab object for a lab built by another process: exec(), capture() and down() work
    (down() stops the daemons through their pidfiles); up() refuses."""
    lab = Lab(spec_of(desc), suffix=desc["suffix"], workdir_root=desc["workdir_root"])
    lab._state = "attached"  # built elsewhere: up() must not run, down() still does
    for s in desc["sites"]:
        lab.sites[s["name"]].controller_pid = pid_of(s, "ryu-manager")
    return lab


# --- liveness ---------------------------------------------------------------------------

def pid_of(site_desc, program):
    """The pid in the site's pidfile for program (falling back to lab.json's copy)."""
    try:
        with open(os.path.join(site_desc["rundir"], f"{program}.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return site_desc.get("pids", {}).get(program)


def alive(pid, suffix):
    """pid runs and is one of this lab's processes (carries its marker)."""
    return bool(pid) and netns.process_marker(pid) == suffix and not netns._is_zombie(pid)


def link_ctl_sockets(site_desc):
    """ovs-appctl -t ovs-vswitchd (its default target) looks for OVS_RUNDIR/<daemon>.<pid>.ctl,
    while the lab's daemons listen on <daemon>.ctl: add <daemon>.<pid>.ctl symlinks for the
    running daemons (and drop stale ones) so that plain ovs-appctl reaches the site."""
    rundir = site_desc["rundir"]
    for daemon in DAEMONS:
        pid = pid_of(site_desc, daemon)
        want = os.path.join(rundir, f"{daemon}.{pid}.ctl") if pid else None
        for path in glob.glob(os.path.join(rundir, f"{daemon}.*.ctl")):
            if path != want and os.path.islink(path):
                os.unlink(path)
        if want and not os.path.lexists(want) and \
                os.path.exists(os.path.join(rundir, f"{daemon}.ctl")):
            try:
                os.symlink(f"{daemon}.ctl", want)
            except FileExistsError:
                pass


def marked_processes():
    """{pid: lab suffix} of every running process that carries a lab marker."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            marker = netns.process_marker(int(name))
            if marker:
                found[int(name)] = marker
    return found

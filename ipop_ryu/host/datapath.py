"""What the data path of a site's bridge does, as `doctor` asks it: ofproto/trace of a frame,
OVS's own tunnel routes and neighbours (userspace datapath), the kernel's links and routes.

The parsers take the tools' text (captured outputs are the unit tests' fixtures); the rest
runs the tools and returns what they said, raising CommandError when one cannot run.
"""
import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from . import CommandError
from .ovsctl import DEFAULT_RUNDIR, first_line, run

# kinds of OVS tunnel port (Interface type) and of kernel tunnel device (ip -d link's
# info_kind) -> bytes each adds around an Ethernet frame over an IPv4 underlay (IPv6: +20)
TUNNEL_OVERHEAD = {"vxlan": 50, "geneve": 50, "gre": 38, "gretap": 38, "erspan": 50,
                   "stt": 68}
IPV6_EXTRA = 20
NOT_A_GATEWAY = ("", "::", "0.0.0.0")


@dataclass
class TraceOutput:
    """One output action of the traced bridge and what OVS said about it ("-> ..." and
    ">> ..." lines): "Nonexistent output port", "native tunnel routing failed", ..."""
    port: str                               # as the trace names it: an ofport number
    notes: List[str] = field(default_factory=list)


@dataclass
class Trace:
    outputs: List[TraceOutput]
    datapath_actions: str                   # "drop", "1", "tnl_push(...),6", ...


_BRIDGE = re.compile(r'^bridge\("([^"]+)"\)$')
_OUTPUT = re.compile(r"^output:(\S+)$")


def parse_trace(text: str, bridge: str) -> Trace:
    """The outputs of `bridge`'s own tables in `ovs-appctl ofproto/trace` text (a tunnel's
    underlay bridge, traced after it, is not the frame's way out of `bridge`)."""
    outputs, current, actions = [], None, ""
    last = None
    for raw in text.splitlines():
        line = raw.strip()
        match = _BRIDGE.match(line)
        if match:
            current, last = match.group(1), None
            continue
        if line.startswith("Datapath actions:"):
            actions = line.split(":", 1)[1].strip()
            continue
        if current != bridge:
            continue
        match = _OUTPUT.match(line)
        if match:
            last = TraceOutput(match.group(1))
            outputs.append(last)
        elif last is not None and line.startswith(("->", ">>")):
            last.notes.append(line[2:].strip())
        elif line:
            last = None
    return Trace(outputs, actions)


@dataclass
class Neighbour:
    ip: str
    mac: str
    bridge: str


def parse_neighbours(text: str) -> List[Neighbour]:
    """`ovs-appctl tnl/neigh/show`: the underlay neighbours OVS's userspace tunnels use."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[1] and not line.startswith(("IP", "=")):
            rows.append(Neighbour(*parts))
    return rows


def parse_route_lookup(text: str) -> Optional[Dict[str, str]]:
    """`ovs-appctl ovs/route/lookup IP`: {"src", "gateway", "dev"}; None: no route."""
    route = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key in ("src", "gateway", "dev"):
            route[key] = value.strip()
    return route if "dev" in route else None


def next_hop(route: Dict[str, str], remote: str) -> str:
    """Whose MAC the tunnel needs: the gateway's, or the remote's on a connected route."""
    gateway = route.get("gateway", "")
    return remote if gateway in NOT_A_GATEWAY else gateway


def tunnel_overhead(kind: str, remote: str) -> int:
    return TUNNEL_OVERHEAD.get(kind, TUNNEL_OVERHEAD["vxlan"]) + \
        (IPV6_EXTRA if ":" in remote else 0)


# ---- running the tools -----------------------------------------------------------------------
def appctl(*args, check=True) -> str:
    """ovs-appctl to ovs-vswitchd: its default control socket (OVS_RUNDIR/ovs-vswitchd.PID.ctl),
    or OVS_RUNDIR/ovs-vswitchd.ctl where the daemon was started with that --unixctl (the lab)."""
    rundir = os.environ.get("OVS_RUNDIR", DEFAULT_RUNDIR)
    fixed = os.path.join(rundir, "ovs-vswitchd.ctl")
    target = ["-t", fixed] if os.path.exists(fixed) else []
    proc = run(["ovs-appctl", "--timeout=5", *target, *args], timeout=10)
    if check and proc.returncode != 0:
        raise CommandError(f"ovs-appctl {' '.join(args)}: {first_line(proc)}")
    return proc.stdout if proc.returncode == 0 else proc.stdout + proc.stderr


def trace(bridge: str, flow: str) -> Trace:
    return parse_trace(appctl("ofproto/trace", bridge, flow), bridge)


def ovs_route(remote: str) -> Optional[Dict[str, str]]:
    return parse_route_lookup(appctl("ovs/route/lookup", remote, check=False))


def ovs_neighbours() -> List[Neighbour]:
    return parse_neighbours(appctl("tnl/neigh/show"))


def _ip_json(*args) -> Optional[list]:
    """`ip -j ARGS` decoded; None when ip refuses (no such device, no route)."""
    proc = run(["ip", "-j", *args], timeout=10)
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout or "[]")
    except ValueError:
        return None


def link(name: str) -> Optional[dict]:
    """A kernel link in detail (ip -d -j link show): flags, mtu, linkinfo; None: no such."""
    rows = _ip_json("-d", "link", "show", "dev", name)
    return rows[0] if rows else None


def kernel_route(remote: str) -> Optional[dict]:
    """The kernel's route to remote (ip -j route get): dev, and its MTU (the route's own
    mtu metric, else the device's); None: unreachable."""
    rows = _ip_json("route", "get", remote)
    if not rows:
        return None
    route = rows[0]
    mtu = next((m["mtu"] for m in route.get("metrics", ()) if isinstance(m, dict)
                and "mtu" in m), None)
    if mtu is None:
        device = link(route.get("dev", ""))
        mtu = device.get("mtu") if device else None
    return {**route, "mtu": mtu}

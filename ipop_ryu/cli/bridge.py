"""`ipop-ryu bridge setup|teardown`: the by-hand OVS steps as one ovs-vsctl transaction."""
import os
import re
import shlex
import time

from ..host.ovsctl import (DEFAULT_RUNDIR, IFNAMSIZ, INACTIVITY_PROBE_MS, LISTENER_SUFFIX,
                           MAX_BACKOFF_MS, MIN_BACKOFF_MS, MIN_PROBE_MS, VSCTL_TIMEOUT,
                           check_name, controller_clauses, default_controller,
                           ensure_ovs_running, first_line, run, switch_address_for,
                           unknown_bridge)
from . import CommandError
from ..host.peers import FORMS, parse_peer as parse_peer_arg
from ..overlay import vxlan
from ..overlay.wireguard import wg_mtu
from .bridge_overlay import (KERNEL, OVS_UNDERLAY, PEER_PREFIX, UNDERLAY_BRIDGE, Tunnel, addresses_of,
                             bridge_datapath, check_ofports, choose, gateway_routes,
                             kernel_commands, link_mtu, links_named, mtu_line,
                             ovs_module_loaded, overlay_mtu, port_name, route_to,
                             stale_device_commands, underlay_clauses, underlay_moves)
from .bridge_wg import (WG_INTERFACE, interface_exists, kernel_or_userspace, plan,
                        removal_commands)

# --- pure: validation and the ovs-vsctl command lines --------------------------------------

def parse_peer(text):
    """--peer in the one spelling every command takes -> (port name ipop-NAME, address)."""
    peer = parse_peer_arg(text)
    return port_name(peer.name), peer.host


def check_controller(target):
    """Active: tcp:HOST:PORT or ssl:HOST:PORT (IPv6 in brackets), unix:PATH; passive (the
    controller dials): punix:PATH or ptcp:PORT[:HOST]."""
    m = re.fullmatch(r"(tcp|ssl):(\[[0-9A-Fa-f:.]+\]|[^:\[\]]+):(\d+)", target)
    if m and 1 <= int(m.group(3)) <= 65535:
        return target
    m = re.fullmatch(r"ptcp:(\d+)(:(\[[0-9A-Fa-f:.]+\]|[0-9.]+))?", target)
    if m and 1 <= int(m.group(1)) <= 65535:
        return target
    if re.fullmatch(r"p?unix:/\S+", target):
        return target
    raise CommandError(f"bad --controller {target!r}: expected punix:PATH or ptcp:PORT[:HOST] "
                       "(the controller dials the bridge), or tcp:HOST:PORT (e.g. "
                       "tcp:127.0.0.1:6653), ssl:HOST:PORT or unix:PATH (the bridge dials)")


def check_key(text):
    """--key VNI (None when not given) -> int."""
    if text is None:
        return None
    if not (text.isdigit() and int(text) < 1 << 24):
        raise CommandError(f"bad --key {text!r}: a VNI is a whole number from 0 to "
                           f"{(1 << 24) - 1}")
    return int(text)


def check_ms(option, text, minimum, zero_ok=False):
    """--max-backoff / --inactivity-probe MS -> int (0 only if zero_ok)."""
    if not (text.isdigit() and (int(text) >= minimum or zero_ok and int(text) == 0)):
        raise CommandError(f"bad {option} {text!r}: a whole number of milliseconds, at least "
                           f"{minimum}" + (" (or 0: never)" if zero_ok else ""))
    return int(text)


def setup_argv(bridge, controller, ports=(), tunnels=(), tunnel="vxlan", datapath_type=None,
               stale_peers=(), max_backoff=MAX_BACKOFF_MS,
               inactivity_probe=INACTIVITY_PROBE_MS, mtu=None, underlay=None):
    """One ovs-vsctl transaction that brings `bridge` to the requested state.

    tunnels: (port name, remote ip, vni); tunnel: vxlan or geneve (OVS's tunnel ports), or
    system (kernel VXLAN devices made before, added as they are). Each clause is idempotent
    (--may-exist, `set`), and a port's whole options map is replaced so nothing lingers.
    stale_peers: `ipop-*` ports on the bridge for peers no longer given (and not asked for as
    --port); they are removed, so the bridge's peers are exactly the --peer list.
    mtu: the overlay's, requested for the local ports; underlay: IFACE for br-phy.
    """
    settings = ["protocols=OpenFlow13", "fail-mode=secure", "other-config:disable-in-band=true"]
    if datapath_type:
        settings.append(f"datapath_type={datapath_type}")
    argv = ["ovs-vsctl", f"--timeout={VSCTL_TIMEOUT}"]
    if underlay:
        argv += underlay_clauses(underlay[0], underlay[1])
    argv += ["--", "--may-exist", "add-br", bridge, "--", "set", "bridge", bridge, *settings]
    for port in ports:
        argv += ["--", "--may-exist", "add-port", bridge, port]
        if mtu:
            argv += ["--", "set", "interface", port, f"mtu_request={mtu}"]
    for port in stale_peers:
        argv += ["--", "--if-exists", "del-port", bridge, port]
    for port, remote_ip, vni in tunnels:
        if tunnel == "system":
            options = {}
        else:
            options = {"remote_ip": remote_ip, "key": str(vni)}
        mapping = ",".join(f'{k}="{v}"' for k, v in options.items())  # IPv6 needs the quotes
        argv += ["--", "--may-exist", "add-port", bridge, port,
                 "--", "set", "interface", port, f"type={tunnel}", f"options={{{mapping}}}"]
    return argv + controller_clauses(bridge, controller, max_backoff, inactivity_probe)


def teardown_argv(bridge):
    return ["ovs-vsctl", f"--timeout={VSCTL_TIMEOUT}", "del-br", bridge]


def stale_peer_ports(bridge, wanted):
    """`ipop-*` ports on an existing bridge that are not in `wanted` (the peers' ports and the
    --port interfaces: a port asked for is never removed)."""
    proc = run(["ovs-vsctl", "--timeout=5", "list-ports", bridge], timeout=10)
    if proc.returncode != 0:        # no such bridge yet: nothing to remove
        return []
    return [p for p in proc.stdout.split() if p.startswith(PEER_PREFIX) and p not in wanted]


def _missing_interfaces(names):
    # `ip netns exec` mounts the namespace's own /sys, so this holds inside namespaces too
    return [n for n in names if not os.path.exists(os.path.join("/sys/class/net", n))]


# --- commands ------------------------------------------------------------------------------

def cmd_setup(args):
    bridge = check_name("bridge", args.bridge)
    controller = check_controller(args.controller or default_controller(bridge))
    ports = [check_name("port", p) for p in args.port]
    peers = [parse_peer(p) for p in args.peer]
    encrypted = _encrypted(args, peers)
    if encrypted is not None:
        peers = encrypted.tunnel_peers
    key = check_key(args.key)
    underlay = check_name("--underlay", args.underlay) if args.underlay else None
    max_backoff = check_ms("--max-backoff", args.max_backoff, MIN_BACKOFF_MS)
    inactivity_probe = check_ms("--inactivity-probe", args.inactivity_probe, MIN_PROBE_MS,
                                zero_ok=True)
    names = ports + [name for name, _ in peers]
    duplicates = sorted({n for n in names if names.count(n) > 1} | ({bridge} & set(names)))
    if duplicates:
        raise CommandError(f"port names given twice (or equal to the bridge): "
                           f"{', '.join(duplicates)}")
    missing = _missing_interfaces(ports + ([underlay] if underlay else []))
    if missing:
        raise CommandError(f"no such network interface: {', '.join(missing)} "
                           "(see `ip link show`); nothing changed")
    bridges = _bridges_if_running() if args.dry_run else ensure_ovs_running()
    exists = bridge in bridges
    datapath = args.datapath_type or (exists and bridge_datapath(bridge)) or "system"
    if datapath == "system" and not ovs_module_loaded():
        raise CommandError("the OVS kernel module is not loaded (no /sys/module/openvswitch), "
                           "so the system datapath cannot make the bridge: use "
                           "--datapath-type netdev (userspace), or modprobe openvswitch; "
                           "nothing changed")
    method = choose(datapath, args.tunnel,
                    datapath == "netdev" and not underlay and vxlan.kernel_has_vxlan(),
                    underlay, len(peers), key) if peers else None
    tunnels = _tunnels(peers, key, encrypted, underlay)
    if method == KERNEL and len({t.vni for t in tunnels}) < len(tunnels):
        raise CommandError("two peers' derived VNIs are equal: give them apart with one "
                           "bridge setup per peer and --key")
    mtu = overlay_mtu(tunnels, args.tunnel)
    stale = stale_peer_ports(bridge, set(names)) if exists else []
    links = links_named([t.port for t in tunnels] + stale) if method == KERNEL or stale else {}
    before = _wireguard_commands(encrypted, args.dry_run) if encrypted else []
    if method == KERNEL:
        before += kernel_commands(tunnels, links, mtu)
    after = underlay_moves(underlay, addresses_of(underlay), gateway_routes(underlay)) \
        if method == OVS_UNDERLAY else []
    after += stale_device_commands(stale, links)
    argv = setup_argv(bridge, controller, ports, [(t.port, t.remote, t.vni) for t in tunnels],
                      "system" if method == KERNEL else args.tunnel, args.datapath_type,
                      stale, max_backoff, inactivity_probe, mtu,
                      (underlay, link_mtu(underlay)) if method == OVS_UNDERLAY else None)
    if args.dry_run:
        for command in before + [argv] + after:
            print(shlex.join(command))
        return 0
    _run_all(before, encrypted.ifname if encrypted else "tunnels")
    if encrypted:
        print(f"{encrypted.ifname}: {encrypted.address} listening on "
              f"{encrypted.listen_port}, MTU {wg_mtu()}, peers {', '.join(n for n, _ in peers) or '(none)'}")
    proc = run(argv)
    if proc.returncode != 0:
        raise CommandError(f"bridge {bridge} not set up: {first_line(proc)}")
    _run_all(after, f"bridge {bridge}")
    check_ofports(bridge, names, datapath)
    print(f"{bridge}: ports {', '.join(names) or '(none)'}; controller {controller}"
          + (f"; peers by {method}" if method else "")
          + (f"; removed peers no longer listed: {', '.join(stale)}" if stale else ""))
    if mtu:
        print(mtu_line(mtu, tunnels, args.tunnel, encrypted is not None))
    dial = switch_address_for(controller)
    if dial:
        print(f"{bridge} waits for its controller to dial it: [ipop] switch_address = {dial}")
    return 0


def _run_all(commands, what):
    for command in commands:
        proc = run(command)
        if proc.returncode != 0:
            raise CommandError(f"{what} not set up ({shlex.join(command[:5])}...): "
                               f"{first_line(proc)}")


def _tunnels(peers, key, encrypted, underlay):
    """Each peer's Tunnel: this site's end, its VNI, the underlay's MTU on the way."""
    tunnels = []
    for port, remote in peers:
        if encrypted:       # inside WireGuard: from this site's tunnel address
            local, underlay_mtu = encrypted.address, wg_mtu()
        else:
            local, dev = route_to(remote, port)
            underlay_mtu = link_mtu(underlay or dev)
        vni = key if key is not None else vxlan.pair_vni(local, remote)
        tunnels.append(Tunnel(port, remote, local, vni, underlay_mtu=underlay_mtu))
    return tunnels


def _encrypted(args, peers):
    """--encrypt: the site's WireGuard plan from --config (its tunnel peers replace --peer)."""
    if not args.encrypt:
        return None
    if not args.config:
        raise CommandError("--encrypt needs --config SITE.conf (its private_key_file and "
                           "peers_file)")
    if peers:
        raise CommandError("with --encrypt the tunnel peers come from the peers file: drop "
                           "--peer")
    return plan(args.config, check_name("--wg-interface", args.wg_interface))


def _wireguard_commands(site, dry_run):
    exists = interface_exists(site.ifname)
    existing = []
    if exists:
        proc = run(["wg", "show", site.ifname, "peers"])
        existing = proc.stdout.split() if proc.returncode == 0 else []
    kernel = True                   # (an interface that exists is not made again)
    if not exists:
        try:
            kernel = kernel_or_userspace()
        except CommandError:
            if not dry_run:
                raise
    return site.commands(existing, kernel=kernel, exists=exists)


def cmd_teardown(args):
    bridge = check_name("bridge", args.bridge)
    argv = teardown_argv(bridge)
    wg_commands = []
    if args.encrypt:
        wg_commands = removal_commands(check_name("--wg-interface", args.wg_interface))
    if args.dry_run:
        devices = _owned_devices(bridge) if bridge in _bridges_if_running() else []
        for command in [argv] + devices + wg_commands:
            print(shlex.join(command))
        return 0
    bridges = ensure_ovs_running()
    if bridge not in bridges:
        raise unknown_bridge(bridge, bridges)
    devices = _owned_devices(bridge)
    proc = run(argv)
    if proc.returncode != 0:
        raise CommandError(f"bridge {bridge} not removed: {first_line(proc)}")
    _run_all(devices, f"bridge {bridge}'s tunnel devices")
    print(f"{bridge}: removed" + (f" (and the VXLAN devices {', '.join(c[-1] for c in devices)})"
                                  if devices else ""))
    if args.encrypt:
        _remove_wireguard(args.wg_interface, wg_commands)
    return 0


def _owned_devices(bridge):
    """`ip link del` of the bridge's peer devices that bridge setup made."""
    peers = stale_peer_ports(bridge, set())
    return stale_device_commands(peers, links_named(peers))


def _bridges_if_running():
    try:        # --dry-run reads what OVS has when it can be asked; never required
        return ensure_ovs_running()
    except CommandError:
        return []


def _remove_wireguard(ifname, commands, timeout=5.0):
    for command in commands:
        proc = run(command)
        if proc.returncode != 0:
            raise CommandError(f"{ifname} not removed: {first_line(proc)}")
    deadline = time.monotonic() + timeout     # wireguard-go exits on its own, soon after
    while interface_exists(ifname):
        if time.monotonic() > deadline:
            raise CommandError(f"{ifname} still there {timeout:g} s after its removal")
        time.sleep(0.05)
    print(f"{ifname}: removed" if commands else f"{ifname}: not there")


def register(subparsers):
    parser = subparsers.add_parser("bridge", help="set up or tear down an OVS bridge",
                                   description="Set up or tear down an OVS bridge for IPOP "
                                               "switch mode, in one ovs-vsctl transaction.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    setup = sub.add_parser("setup", help="create or update a bridge (idempotent)",
                           description="Create BRIDGE if missing (OpenFlow13, fail-mode "
                                       "secure, in-band off), attach local interfaces and one "
                                       "tunnel port ipop-NAME per peer, set the controller: by "
                                       "default a listener the controller dials.")
    setup.add_argument("bridge", metavar="BRIDGE")
    setup.add_argument("--controller", metavar="TARGET",
                       help="the bridge's controller target: punix:PATH or ptcp:PORT[:HOST] "
                            "for a listener the controller dials ([ipop] switch_address), or "
                            "tcp:HOST:PORT for a controller OVS dials (default: "
                            f"punix:$OVS_RUNDIR/BRIDGE{LISTENER_SUFFIX}, OVS_RUNDIR "
                            f"defaulting to {DEFAULT_RUNDIR})")
    setup.add_argument("--port", action="append", default=[], metavar="IFACE",
                       help="local interface to attach (repeatable)")
    setup.add_argument("--peer", action="append", default=[], metavar="NAME=HOST[:PORT]",
                       help=f"a tunnel ipop-NAME to the peer's underlay address HOST "
                            f"(repeatable; {FORMS}, as init takes it; PORT, its ICC port, is "
                            "not used here); ipop-* ports of peers not listed (and not given "
                            "as --port) are removed")
    setup.add_argument("--tunnel", choices=("vxlan", "geneve"), default="vxlan",
                       help="tunnel port type (default: vxlan)")
    setup.add_argument("--key", metavar="VNI",
                       help="tunnel key (VNI) of every peer (default: each peer its own, "
                            "derived from the two underlay addresses alike at both ends)")
    setup.add_argument("--datapath-type", choices=("system", "netdev"),
                       help="OVS datapath: system (the OVS kernel module; default for a new "
                            "bridge) or netdev (userspace: tunnels by kernel VXLAN devices "
                            "ipop-NAME, or by OVS with --underlay)")
    setup.add_argument("--underlay", metavar="IFACE",
                       help="with --datapath-type netdev: OVS's own tunnel ports, IFACE on "
                            f"OVS bridge {UNDERLAY_BRIDGE} and its addresses moved there "
                            "(for a kernel without VXLAN devices)")
    setup.add_argument("--max-backoff", default=str(MAX_BACKOFF_MS), metavar="MS",
                       help="longest wait between reconnects to a lost controller, at least "
                            f"{MIN_BACKOFF_MS} (default: {MAX_BACKOFF_MS}; OVS's own is 8000)")
    setup.add_argument("--inactivity-probe", default=str(INACTIVITY_PROBE_MS), metavar="MS",
                       help="idle time before OVS probes the controller, at least "
                            f"{MIN_PROBE_MS} or 0 = never (default: {INACTIVITY_PROBE_MS})")
    setup.add_argument("--encrypt", action="store_true",
                       help="put the tunnels inside WireGuard: make/update --wg-interface "
                            "from --config's private_key_file and peers_file, one tunnel port "
                            "per peer to its tunnel address (replaces --peer)")
    setup.add_argument("--config", metavar="SITE.conf",
                       help="the site's controller configuration (with --encrypt)")
    setup.add_argument("--wg-interface", default=WG_INTERFACE, metavar="NAME",
                       help="the WireGuard interface (with --encrypt; default %(default)s)")
    setup.add_argument("--dry-run", action="store_true",
                       help="print the commands (ovs-vsctl, and wg/ip with --encrypt) instead "
                            "of running them")
    setup.set_defaults(func=cmd_setup)
    teardown = sub.add_parser("teardown", help="remove a bridge and its ports")
    teardown.add_argument("bridge", metavar="BRIDGE")
    teardown.add_argument("--encrypt", action="store_true",
                          help="also remove the WireGuard interface --wg-interface (ends its "
                               "wireguard-go, if any)")
    teardown.add_argument("--wg-interface", default=WG_INTERFACE, metavar="NAME",
                          help="the WireGuard interface (with --encrypt; default %(default)s)")
    teardown.add_argument("--dry-run", action="store_true",
                          help="print the commands instead of running them")
    teardown.set_defaults(func=cmd_teardown)

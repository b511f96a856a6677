"""`ipop-ryu bridge setup|teardown`: the by-hand OVS steps as one ovs-vsctl transaction."""
import ipaddress
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
from .bridge_wg import (WG_INTERFACE, interface_exists, kernel_or_userspace, mtu_hint, plan,
                        removal_commands)

PEER_PREFIX = "ipop-"


# --- pure: validation and the ovs-vsctl command lines --------------------------------------

def parse_peer(text):
    """'NAME=REMOTE_IP' -> (port name ipop-NAME, remote ip)."""
    name, sep, ip = text.partition("=")
    if not sep or not name:
        raise CommandError(f"bad --peer {text!r}: expected NAME=REMOTE_IP, e.g. B=192.0.2.2")
    try:
        ip = str(ipaddress.ip_address(ip))
    except ValueError:
        raise CommandError(f"bad --peer {text!r}: {ip!r} is not an IP address") from None
    if len(PEER_PREFIX + name) > IFNAMSIZ:
        raise CommandError(f"bad --peer {text!r}: port name {PEER_PREFIX}{name} is longer "
                           f"than {IFNAMSIZ} characters")
    return check_name("peer", PEER_PREFIX + name), ip


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


def setup_argv(bridge, controller, ports=(), peers=(), tunnel="vxlan", key=None,
               datapath_type=None, stale_peers=(), max_backoff=MAX_BACKOFF_MS,
               inactivity_probe=INACTIVITY_PROBE_MS):
    """One ovs-vsctl transaction that brings `bridge` to the requested state.

    peers: (port name, remote ip) pairs. Each clause is idempotent (--may-exist, `set`), and a
    tunnel's whole options map is replaced so that a dropped --key does not linger.
    stale_peers: `ipop-*` ports on the bridge for peers no longer given; they are removed, so
    the bridge's peers are exactly the --peer list (other ports are left alone).
    """
    settings = ["protocols=OpenFlow13", "fail-mode=secure", "other-config:disable-in-band=true"]
    if datapath_type:
        settings.append(f"datapath_type={datapath_type}")
    argv = ["ovs-vsctl", f"--timeout={VSCTL_TIMEOUT}",
            "--", "--may-exist", "add-br", bridge, "--", "set", "bridge", bridge, *settings]
    for port in ports:
        argv += ["--", "--may-exist", "add-port", bridge, port]
    for port in stale_peers:
        argv += ["--", "--if-exists", "del-port", bridge, port]
    for port, remote_ip in peers:
        options = {"remote_ip": remote_ip, **({"key": str(key)} if key is not None else {})}
        mapping = ",".join(f'{k}="{v}"' for k, v in options.items())  # IPv6 needs the quotes
        argv += ["--", "--may-exist", "add-port", bridge, port,
                 "--", "set", "interface", port, f"type={tunnel}", f"options={{{mapping}}}"]
    return argv + controller_clauses(bridge, controller, max_backoff, inactivity_probe)


def teardown_argv(bridge):
    return ["ovs-vsctl", f"--timeout={VSCTL_TIMEOUT}", "del-br", bridge]


def stale_peer_ports(bridge, peers):
    """`ipop-*` ports on an existing bridge that the new peer list leaves out."""
    proc = run(["ovs-vsctl", "--timeout=5", "list-ports", bridge], timeout=10)
    if proc.returncode != 0:        # no such bridge yet: nothing to remove
        return []
    wanted = {name for name, _ in peers}
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
    max_backoff = check_ms("--max-backoff", args.max_backoff, MIN_BACKOFF_MS)
    inactivity_probe = check_ms("--inactivity-probe", args.inactivity_probe, MIN_PROBE_MS,
                                zero_ok=True)
    names = ports + [name for name, _ in peers]
    duplicates = sorted({n for n in names if names.count(n) > 1} | ({bridge} & set(names)))
    if duplicates:
        raise CommandError(f"port names given twice (or equal to the bridge): "
                           f"{', '.join(duplicates)}")
    missing = _missing_interfaces(ports)
    if missing:
        raise CommandError(f"no such network interface: {', '.join(missing)} "
                           "(see `ip link show`); nothing changed")
    if args.dry_run:
        try:        # show the stale peers too when OVS can be asked; never required
            stale = stale_peer_ports(bridge, peers)
        except CommandError:
            stale = []
    else:
        stale = stale_peer_ports(bridge, peers) if bridge in ensure_ovs_running() else []
    argv = setup_argv(bridge, controller, ports, peers, args.tunnel, key, args.datapath_type,
                      stale, max_backoff, inactivity_probe)
    wg_commands = _wireguard_commands(encrypted, args.dry_run) if encrypted else []
    if args.dry_run:
        for command in wg_commands + [argv]:
            print(shlex.join(command))
        return 0
    for command in wg_commands:     # the tunnels' addresses must route before OVS uses them
        proc = run(command)
        if proc.returncode != 0:
            raise CommandError(f"{encrypted.ifname} not set up ({shlex.join(command[:4])}"
                               f"...): {first_line(proc)}")
    if encrypted:
        print(f"{encrypted.ifname}: {encrypted.address} listening on "
              f"{encrypted.listen_port}, peers {', '.join(n for n, _ in peers) or '(none)'}")
        print(mtu_hint(encrypted))
    proc = run(argv)
    if proc.returncode != 0:
        raise CommandError(f"bridge {bridge} not set up: {first_line(proc)}")
    print(f"{bridge}: ports {', '.join(names) or '(none)'}; controller {controller}"
          + (f"; removed peers no longer listed: {', '.join(stale)}" if stale else ""))
    dial = switch_address_for(controller)
    if dial:
        print(f"{bridge} waits for its controller to dial it: [ipop] switch_address = {dial}")
    return 0


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
        for command in [argv] + wg_commands:
            print(shlex.join(command))
        return 0
    bridges = ensure_ovs_running()
    if bridge not in bridges:
        raise unknown_bridge(bridge, bridges)
    proc = run(argv)
    if proc.returncode != 0:
        raise CommandError(f"bridge {bridge} not removed: {first_line(proc)}")
    print(f"{bridge}: removed")
    if args.encrypt:
        _remove_wireguard(args.wg_interface, wg_commands)
    return 0


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
    setup.add_argument("--peer", action="append", default=[], metavar="NAME=REMOTE_IP",
                       help="tunnel port ipop-NAME to REMOTE_IP (repeatable); ipop-* ports "
                            "of peers not listed are removed")
    setup.add_argument("--tunnel", choices=("vxlan", "geneve"), default="vxlan",
                       help="tunnel port type (default: vxlan)")
    setup.add_argument("--key", metavar="VNI", help="tunnel key (VNI) of every peer")
    setup.add_argument("--datapath-type", choices=("system", "netdev"),
                       help="OVS datapath: system (kernel) or netdev (userspace)")
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

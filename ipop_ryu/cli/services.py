"""`ipop-ryu services setup|teardown BRIDGE` and `ipop-ryu dhcp`: what lxc-net gave lxcbr0
(a gateway, DHCP and names, NAT), from the site's [ipop] options. The commands themselves are
built in ipop_ryu/host/services.py; this module reads the host's state and runs them."""
import errno
import json
import os
import socket
import subprocess
import sys

from ..core.config import ConfigError
from ..host import services as host
from ..host.ovsctl import check_name, ensure_ovs_running, first_line, unknown_bridge, vsctl
from ..host.site import ETC, Site
from . import CommandError


def load(path, bridge, site_port=host.DEFAULT_SITE_PORT):
    if not path:
        raise CommandError(f"--config-file is required (the site's file, e.g. {ETC}/site.conf)")
    try:
        site = Site(path)
    except ConfigError as exc:
        raise CommandError(f"configuration error: {exc}") from None
    return host.services_of(site.options, path, check_name("bridge", bridge),
                            check_name("site port", site_port))


# --- reading the host -------------------------------------------------------------------------

def read_sysctl(key):
    try:
        with open("/proc/sys/" + key.replace(".", "/")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None     # an interface that does not exist (yet)


def default_uplink():
    """The interface of the default route (IPv4), as lxc-net's NAT assumes one uplink."""
    proc = subprocess.run(["ip", "-j", "route", "show", "default"], capture_output=True,
                          text=True)
    routes = json.loads(proc.stdout or "[]") if proc.returncode == 0 else []
    devs = [r["dev"] for r in routes if r.get("dev")]
    if not devs:
        raise CommandError("no default route: name the uplink to masquerade to with --uplink "
                           "IFACE")
    return devs[0]


def addresses(ifname):
    proc = subprocess.run(["ip", "-j", "address", "show", "dev", ifname], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        return None     # no such interface
    return {f"{a['local']}/{a['prefixlen']}" for link in json.loads(proc.stdout or "[]")
            for a in link.get("addr_info", [])}


def table_exists(svc):
    return subprocess.run(["nft", "list", "table", "inet", svc.table], capture_output=True
                          ).returncode == 0


def saved_sysctls(svc):
    """What setup recorded on the bridge ({} before the first setup)."""
    proc = subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "get", "bridge",
                           svc.bridge, f"external_ids:{host.SAVED}"], capture_output=True,
                          text=True)
    return host.decode_saved(proc.stdout) if proc.returncode == 0 else {}


# --- running ----------------------------------------------------------------------------------

def execute(commands, dry_run):
    for command in commands:
        if dry_run:
            print(command)
            continue
        try:
            proc = subprocess.run(command.argv, input=command.input, capture_output=True,
                                  text=True, timeout=30)
        except FileNotFoundError:
            raise CommandError(f"{command.argv[0]} not found: install it (apt install "
                               f"{'nftables' if command.argv[0] == 'nft' else 'iproute2'})"
                               ) from None
        if proc.returncode != 0:
            raise CommandError(f"{' '.join(command.argv)}: {first_line(proc)}")


def cmd_setup(args):
    svc = load(args.config_file, args.bridge, args.site_port)
    bridges = ensure_ovs_running()
    if svc.bridge not in bridges:
        raise unknown_bridge(svc.bridge, bridges)
    uplink = check_name("uplink", args.uplink or default_uplink())
    if addresses(uplink) is None:
        raise CommandError(f"no interface {uplink} (--uplink): name the interface that "
                           f"reaches the outside")
    saved = saved_sysctls(svc)
    if not saved:    # first setup: remember what was there (the site port's do not exist)
        saved = {k: v for k in host.sysctls(svc) if (v := read_sysctl(k)) is not None}
    execute(host.setup_commands(svc, uplink, saved), args.dry_run)
    if not args.dry_run:
        print(f"services on {svc.bridge}: gateway {svc.gateway} ({svc.gateway_mac}), site "
              f"address {svc.site_interface} on {svc.site_port}, NAT to {uplink} (nft table "
              f"inet {svc.table})")


def cmd_teardown(args):
    svc = load(args.config_file, args.bridge, args.site_port)
    bridges = ensure_ovs_running()
    present_addresses = addresses(svc.bridge) or set()
    present = {"bridge": svc.bridge in bridges, "table": table_exists(svc),
               "port": svc.bridge in bridges and svc.site_port in vsctl("list-ports",
                                                                        svc.bridge).split(),
               "gateway": str(svc.gateway) in present_addresses,
               "gateway6": bool(svc.gateway6) and str(svc.gateway6) in present_addresses}
    saved = saved_sysctls(svc) if present["bridge"] else {}
    commands = host.teardown_commands(svc, saved, present)
    execute(commands, args.dry_run)
    if not args.dry_run:
        print(f"services on {svc.bridge} removed" if commands else
              f"no services on {svc.bridge} to remove")


# --- dhcp -------------------------------------------------------------------------------------

def check_bind(svc):
    """Fail in one line, before dnsmasq does in several, when its sockets are taken: DHCP
    (UDP 67 on the bridge) and DNS (the gateway's port 53)."""
    if svc.bridge not in os.listdir("/sys/class/net"):
        raise CommandError(f"no interface {svc.bridge}: create the bridge (ipop-ryu bridge "
                           f"setup {svc.bridge} ...) and run ipop-ryu services setup first")
    if str(svc.gateway) not in (addresses(svc.bridge) or set()):
        raise CommandError(f"{svc.bridge} does not hold the gateway {svc.gateway}: run "
                           f"ipop-ryu services setup {svc.bridge} --config-file ... first")
    probes = [(socket.SOCK_DGRAM, "0.0.0.0", 67, "DHCP (UDP 67)"),
              (socket.SOCK_DGRAM, str(svc.gateway.ip), 53, "DNS (UDP 53)"),
              (socket.SOCK_STREAM, str(svc.gateway.ip), 53, "DNS (TCP 53)")]
    for kind, address, port, what in probes:
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, svc.bridge.encode())
            try:
                probe.bind((address, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise CommandError(f"dnsmasq cannot bind {what} on {svc.bridge}: "
                                       f"{exc.strerror}") from None
                raise CommandError(
                    f"dnsmasq cannot bind {what} on {svc.bridge}: another server holds it "
                    f"(see `ss -lunp sport = :{port}`; lxc-net's dnsmasq: set "
                    f"USE_LXC_BRIDGE=\"false\" in /etc/default/lxc-net and systemctl "
                    f"restart lxc-net)") from None


def cmd_dhcp(args):
    svc = load(args.config_file, args.bridge)
    argv = host.dnsmasq_argv(svc, args.user or host.dnsmasq_user())
    if args.print:
        print(" ".join(map(host.quote, argv)))
        return 0
    argv[0] = host.find_dnsmasq()
    check_bind(svc)
    os.makedirs(svc.hosts_dir, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(svc.lease_file)), exist_ok=True)
    sys.stdout.flush()
    os.execv(argv[0], argv)


def register(sub):
    services = sub.add_parser(
        "services", help="the gateway, site address, forwarding and NAT of a site's bridge",
        description="Make a site's bridge a drop-in for lxc-net's lxcbr0: the anycast gateway "
                    "([ipop] gateway, gateway_mac) on the bridge's own port, the site host's "
                    "own address (site_address) on a port of its own, forwarding, and NAT of "
                    "the segment to the uplink (nftables table inet ipop_BRIDGE). DHCP and "
                    "names: ipop-ryu dhcp.")
    actions = services.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, func, text in (("setup", cmd_setup, "set up (again: changes nothing)"),
                             ("teardown", cmd_teardown, "remove exactly what setup made")):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("bridge", metavar="BRIDGE")
        action.add_argument("--config-file", metavar="PATH", help="the site's file")
        action.add_argument("--site-port", default=host.DEFAULT_SITE_PORT, metavar="NAME",
                            help=f"the OVS internal port holding site_address (default "
                                 f"{host.DEFAULT_SITE_PORT}; must not match overlay_ports)")
        if name == "setup":
            action.add_argument("--uplink", metavar="IFACE",
                                help="masquerade out of this interface (default: the "
                                     "default route's)")
        action.add_argument("--dry-run", action="store_true",
                            help="print every command instead of running it")
        action.set_defaults(func=func)

    dhcp = sub.add_parser(
        "dhcp", help="run dnsmasq for a site's bridge (DHCP, names, RAs) in the foreground",
        description="Build dnsmasq's command line from the site's [ipop] options (dhcp_range, "
                    "gateway, gateway6, dns_domain; other sites' hosts by name from the "
                    "files the controller writes in dns_hosts_dir) and exec it in the "
                    "foreground (the "
                    "ipop-ryu-dhcp@.service unit), or --print it.")
    dhcp.add_argument("--config-file", metavar="PATH", help="the site's file")
    dhcp.add_argument("--bridge", default="br0", help="the site's bridge (default br0)")
    dhcp.add_argument("--user", help="dnsmasq drops to this user (default dnsmasq, or nobody)")
    dhcp.add_argument("--print", action="store_true", help="print the command line, run nothing")
    dhcp.set_defaults(func=cmd_dhcp)


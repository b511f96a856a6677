"""`ipop-ryu arp|peers|stats`: a running controller's table, peers and counters (REST);
`ipop-ryu reload`: have it re-read its configuration and peers file (as SIGHUP does).

The table comes a page at a time (`GET /ipop/v1/arp?limit=N&after=IP`, so the controller never
serialises more than a page at once); `ipop-ryu arp` follows the pages to the end.
"""
import argparse
import json
import urllib.error
import urllib.parse
import urllib.request

from ..core.status import PAGE_LIMIT, PAGE_LIMIT_MAX
from . import CommandError

DEFAULT_CONTROLLER = "http://127.0.0.1:8080"
PATHS = {"arp": "/ipop/v1/arp", "peers": "/ipop/v1/peers", "stats": "/ipop/v1/stats"}


def fetch(controller, path, timeout=5.0, method="GET"):
    url = controller.rstrip("/") + path
    if "://" not in url:
        url = "http://" + url
    try:
        request = urllib.request.Request(url, method=method,
                                         data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode())
    except urllib.error.HTTPError as exc:
        raise CommandError(f"{url}: HTTP {exc.code}: {_error_of(exc)}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(f"cannot reach the controller at {url}: {reason} (is ryu-manager "
                           f"running ipop_ryu.apps.switchmode, and is --controller its "
                           f"--wsapi-host:--wsapi-port?)")
    except ValueError:
        raise CommandError(f"{url}: the answer is not JSON (is this an ipop-ryu controller?)")


def _error_of(exc):
    """The controller's own one-line reason (a bad parameter), else a hint."""
    try:
        return str(json.loads(exc.read().decode())["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return "is this an ipop-ryu controller?"


def arp_rows(get, limit=PAGE_LIMIT, most=None):
    """Every row of the learned table (at most `most`), page by page; get(path) -> decoded
    JSON of one GET (the integration tests pass one that asks from inside a namespace)."""
    rows, after = [], None
    while most is None or len(rows) < most:
        query = {"limit": limit if most is None else min(limit, most - len(rows))}
        if after is not None:
            query["after"] = after
        page = get(PATHS["arp"] + "?" + urllib.parse.urlencode(query))
        if isinstance(page, list):           # a controller from before paging: the lot
            return page[:most]
        rows += page["entries"]
        if page["next"] is None:
            break
        if page["next"] == after:
            raise CommandError(f"the controller repeats the page after {after}")
        after = page["next"]
    return rows[:most]


def table(rows, columns):
    """Left-aligned text table; columns: list of (header, key or function)."""
    cells = [[h for h, _ in columns]] + [
        ["-" if v is None else str(v) for v in
         ((key(row) if callable(key) else row.get(key)) for _, key in columns)] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in cells)


def render_arp(rows):
    """rows: a list of entries, or one page of them as /ipop/v1/arp answers."""
    if isinstance(rows, dict):
        rows = rows["entries"]
    if not rows:
        return "no learned entries"
    return table(rows, [
        ("IP", "ip"), ("MAC", "mac"), ("SITE", "node"),
        ("WHERE", lambda r: f"local port {r['port']}" if r["local"] else "remote"),
        ("AGE", lambda r: f"{r['age']:.0f}s"), ("EXPIRES", lambda r: f"{r['expires_in']:.0f}s"),
        ("PROXY FLOW", lambda r: "yes" if r["proxy_flow"] else "no")])


def render_peers(rows):
    if not rows:
        return "no peers configured"
    return table(rows, [
        ("PEER", "name"), ("ADDRESS", lambda r: f"{r['address']}:{r['port']}"),
        ("STATE", "state"),
        ("LAST HEARD", lambda r: None if r["last_heard_ago"] is None
         else f"{r['last_heard_ago']:.1f}s ago"),
        ("SENT", "sent"), ("RECEIVED", "received"), ("ENTRIES", "entries"),
        ("KEY", lambda r: r.get("key")),
        ("ALLOWED", lambda r: None if "allowed_ips" not in r else
         "any" if r["allowed_ips"] is None else ", ".join(r["allowed_ips"])),
        ("REFUSED LATELY", lambda r: ", ".join(f"{c['address']} x{c['count']}"
                                               for c in r.get("claims_refused") or ()) or None)])


def _counts(values):
    return ", ".join(f"{k} {v}" for k, v in values.items() if v) or "none"


def render_stats(stats):
    lines = [f"node {stats['node_id']}, up {stats['uptime']:.0f}s, "
             f"peers up {stats['peers']['up']}/{stats['peers']['total']}",
             f"packet-ins          {stats['packet_in']}"]
    arp = stats["arp"]
    lines.append(f"ARP requests        {arp['requests']} punted; answered by flow "
                 f"{arp['answered_by_flow']}, by controller {arp['answered_by_controller']}, "
                 f"via peers {arp['answered_via_peers']}; answered for peers "
                 f"{arp['answered_for_peers']}")
    nd = stats.get("nd")
    if nd is not None:
        lines.append(f"ND solicitations    {nd['requests']} punted; answered by controller "
                     f"{nd['answered_by_controller']}, via peers {nd['answered_via_peers']}; "
                     f"answered for peers {nd['answered_for_peers']}; DAD probes "
                     f"{nd['dad_probes']}, defended {nd['dad_defended']}")
    tbl = stats["table"]
    lines.append(f"table               {tbl['entries']} entries ({tbl['local']} local, "
                 f"{tbl['remote']} remote{'; %d IPv6' % tbl['ipv6'] if tbl.get('ipv6') else ''}"
                 f"); learned {tbl['learned']}, expired "
                 f"{tbl['expired']}, withdrawn {tbl['withdrawn']}")
    sync = stats.get("sync")
    if sync is not None:
        lines.append(f"sync                {sync['entries_sent']} entries sent, "
                     f"{sync['entries_received']} received; {sync['ends_received']} ends "
                     f"received")
    flows = stats["flows"]
    lines.append(f"flows               {flows['proxy_arp']} proxy-ARP; "
                 + (f"{flows['proxy_nd']} proxy-ND; " if flows.get("proxy_nd") else "") +
                 f"{flows['flow_mods']} flow-mods sent"
                 + (f"; audits {flows['audits']}, repaired {flows['repaired']}, stale "
                    f"removed {flows['removed_stale']}" if "audits" in flows else ""))
    portsec = stats.get("port_security") or {}
    if portsec.get("mode") == "dhcp":
        by_port = ", ".join(f"{p} {n}" for p, n in portsec["dropped_by_port"].items() if n)
        lines.append(f"port security       {portsec['leases']} leases; dropped "
                     f"{portsec['dropped']}{' (' + by_port + ')' if by_port else ''}, "
                     f"refused {portsec['refused']}")
    names = stats.get("names") or {}
    if names.get("known"):
        refused = {k: v for k, v in names["refused"].items() if v}
        lines.append(f"names               {names['known']} known, {names['in_hosts_file']} "
                     f"in the hosts file; conflicts {names['conflicts']}"
                     + (f"; refused {_counts(refused)}" if refused else ""))
    graceful = stats.get("graceful_restart") or {}
    if graceful.get("active"):
        lines.append("graceful restart    deletions held, waiting for "
                     + (", ".join(graceful["waiting_for"]) or "no peer"))
    icc = stats["icc"]
    lines.append(f"ICC sent            {_counts(icc['sent'])}")
    lines.append(f"ICC received        {_counts(icc['received'])}")
    lines.append(f"ICC dropped         {_counts(icc['dropped'])}"
                 + (f"; bindings invalid {icc['bindings_invalid']}"
                    if icc.get("bindings_invalid") else "")
                 + (f"; claims not allowed {icc['not_allowed']}" if icc.get("not_allowed")
                    else ""))
    if stats["errors"]:
        lines.append(f"internal errors     {_counts(stats['errors'])}")
    return "\n".join(lines)


RENDER = {"arp": render_arp, "peers": render_peers, "stats": render_stats}
HELP = {"arp": "the learned table (IPv4 and IPv6): IP, MAC, site, expiry, proxy flow",
        "peers": "the peer controllers: state, last heard, messages",
        "stats": "the controller's counters"}
DESCRIPTION = dict(HELP, arp=HELP["arp"] + ". Fetched a page at a time, to the end. The packets "
                   "each proxy-ARP flow answered are counted by the bridge: `ipop-ryu flows`.")


def render_reload(answer):
    lines = [f"reloaded: peers added {', '.join(answer['added']) or 'none'}, removed "
             f"{', '.join(answer['removed']) or 'none'}, changed "
             f"{', '.join(answer['changed']) or 'none'}"]
    if answer["needs_restart"]:
        lines.append("changed but not applied until a restart: "
                     + ", ".join(answer["needs_restart"]))
    return "\n".join(lines)


def run_reload(args):
    try:
        answer = fetch(args.controller, "/ipop/v1/reload", method="POST")
    except CommandError as exc:
        if "HTTP 400" in str(exc):
            raise CommandError("reload refused, the running configuration stays: "
                               + str(exc).split("HTTP 400: ", 1)[1], status=1) from None
        raise
    print(json.dumps(answer, indent=1, sort_keys=True) if args.json else render_reload(answer))


def run(args):
    if args.command == "arp":
        data = arp_rows(lambda path: fetch(args.controller, path), args.limit, args.max)
    else:
        data = fetch(args.controller, PATHS[args.command])
    print(json.dumps(data, indent=1, sort_keys=True) if args.json else RENDER[args.command](data))


def _count(low, high=None):
    def parse(text):
        value = int(text) if text.isascii() and text.isdigit() else -1
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {low}" + (f" to {high}" if high else " up"))
        return value
    return parse


def register(sub):
    for name in PATHS:
        parser = sub.add_parser(name, help=HELP[name], description=DESCRIPTION[name])
        parser.add_argument("--controller", default=DEFAULT_CONTROLLER, metavar="URL",
                            help=f"the controller's REST address (default {DEFAULT_CONTROLLER})")
        parser.add_argument("--json", action="store_true", help="print the raw JSON"
                            + (" (one list of every row)" if name == "arp" else ""))
        if name == "arp":
            parser.add_argument("--limit", type=_count(1, PAGE_LIMIT_MAX), default=PAGE_LIMIT,
                                metavar="N", help=f"rows per request (default {PAGE_LIMIT}, "
                                                  f"at most {PAGE_LIMIT_MAX})")
            parser.add_argument("--max", type=_count(1), default=None, metavar="N",
                                help="stop after N rows (default: the whole table)")
        parser.set_defaults(func=run)
    reload = sub.add_parser(
        "reload", help="re-read the controller's configuration and peers file",
        description="Have a running controller re-read its configuration files and peers "
                    "file, as `kill -HUP` does: new peers start exchanging at once, removed "
                    "ones' entries and flows are withdrawn, changed keys and allowed_ips "
                    "apply to the next datagram. A bad file is refused (exit status 1) and "
                    "the running configuration stays.")
    reload.add_argument("--controller", default=DEFAULT_CONTROLLER, metavar="URL",
                        help=f"the controller's REST address (default {DEFAULT_CONTROLLER})")
    reload.add_argument("--json", action="store_true", help="print the raw JSON")
    reload.set_defaults(func=run_reload)

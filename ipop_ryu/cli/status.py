"""`ipop-ryu arp|peers|stats`: a running controller's table, peers and counters (REST)."""
import json
import urllib.error
import urllib.request

from . import CommandError

DEFAULT_CONTROLLER = "http://127.0.0.1:8080"
PATHS = {"arp": "/ipop/v1/arp", "peers": "/ipop/v1/peers", "stats": "/ipop/v1/stats"}


def fetch(controller, path, timeout=5.0):
    url = controller.rstrip("/") + path
    if "://" not in url:
        url = "http://" + url
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read().decode())
    except urllib.error.HTTPError as exc:
        raise CommandError(f"{url}: HTTP {exc.code} (is this an ipop-ryu controller?)")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(f"cannot reach the controller at {url}: {reason} (is ryu-manager "
                           f"running ipop_ryu.apps.switchmode, and is --controller its "
                           f"--wsapi-host:--wsapi-port?)")
    except ValueError:
        raise CommandError(f"{url}: the answer is not JSON (is this an ipop-ryu controller?)")


def table(rows, columns):
    """Left-aligned text table; columns: list of (header, key or function)."""
    cells = [[h for h, _ in columns]] + [
        ["-" if v is None else str(v) for v in
         ((key(row) if callable(key) else row.get(key)) for _, key in columns)] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in cells)


def render_arp(rows):
    if not rows:
        return "no learned entries"
    return table(rows, [
        ("IP", "ip"), ("MAC", "mac"), ("SITE", "node"),
        ("WHERE", lambda r: f"local port {r['port']}" if r["local"] else "remote"),
        ("AGE", lambda r: f"{r['age']:.0f}s"), ("EXPIRES", lambda r: f"{r['expires_in']:.0f}s"),
        ("PROXY FLOW", lambda r: f"yes ({r['answered_by_flow']} answered)" if r["proxy_flow"]
         else "no")])


def render_peers(rows):
    if not rows:
        return "no peers configured"
    return table(rows, [
        ("PEER", "name"), ("ADDRESS", lambda r: f"{r['address']}:{r['port']}"),
        ("STATE", "state"),
        ("LAST HEARD", lambda r: None if r["last_heard_ago"] is None
         else f"{r['last_heard_ago']:.1f}s ago"),
        ("SENT", "sent"), ("RECEIVED", "received"), ("ENTRIES", "entries")])


def render_stats(stats):
    lines = [f"node {stats['node_id']}, up {stats['uptime']:.0f}s, "
             f"peers up {stats['peers']['up']}/{stats['peers']['total']}",
             f"packet-ins          {stats['packet_in']}"]
    arp = stats["arp"]
    lines.append(f"ARP requests        {arp['requests']} punted; answered by flow "
                 f"{arp['answered_by_flow']}, by controller {arp['answered_by_controller']}, "
                 f"via peers {arp['answered_via_peers']}; answered for peers "
                 f"{arp['answered_for_peers']}")
    tbl = stats["table"]
    lines.append(f"table               {tbl['entries']} entries ({tbl['local']} local, "
                 f"{tbl['remote']} remote); learned {tbl['learned']}, expired "
                 f"{tbl['expired']}, withdrawn {tbl['withdrawn']}")
    lines.append(f"flows               {stats['flows']['proxy_arp']} proxy-ARP; "
                 f"{stats['flows']['flow_mods']} flow-mods sent")
    icc = stats["icc"]
    for what in ("sent", "received", "dropped"):
        parts = ", ".join(f"{k} {v}" for k, v in icc[what].items() if v) or "none"
        lines.append(f"ICC {what:<15} {parts}")
    if stats["errors"]:
        lines.append("internal errors     " + ", ".join(f"{k} {v}"
                                                       for k, v in stats["errors"].items()))
    return "\n".join(lines)


RENDER = {"arp": render_arp, "peers": render_peers, "stats": render_stats}
HELP = {"arp": "the learned table: IP, MAC, site, expiry, proxy flow",
        "peers": "the peer controllers: state, last heard, messages",
        "stats": "the controller's counters"}


def run(args):
    data = fetch(args.controller, PATHS[args.command])
    print(json.dumps(data, indent=1, sort_keys=True) if args.json else RENDER[args.command](data))


def register(sub):
    for name in PATHS:
        parser = sub.add_parser(name, help=HELP[name], description=HELP[name])
        parser.add_argument("--controller", default=DEFAULT_CONTROLLER, metavar="URL",
                            help=f"the controller's REST address (default {DEFAULT_CONTROLLER})")
        parser.add_argument("--json", action="store_true", help="print the raw JSON")
        parser.set_defaults(func=run)

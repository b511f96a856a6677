"""`ipop-ryu flows [BRIDGE]`: a bridge's OpenFlow flows grouped by purpose (their cookie)."""
import json
import re
import textwrap

from ..core import pipeline
from . import CommandError
from ..host.ovsctl import check_name, ensure_ovs_running, first_line, run, unknown_bridge

OTHER = "other"
OTHER_DESCRIPTION = "not installed by ipop-ryu (foreign cookie)"
STATS = {"cookie", "duration", "table", "n_packets", "n_bytes", "idle_timeout", "hard_timeout",
         "idle_age", "hard_age", "importance"}
FLAGS = {"send_flow_rem", "check_overlap", "reset_counts", "no_packet_counts", "no_byte_counts"}
DEFAULT_PRIORITY = 32768  # ovs-ofctl leaves priority out when it is the default
ACTIONS_WIDTH = 72

_local = f"{pipeline.FROM_LOCAL:#x}/{pipeline.METADATA_MASK:#x}"
_overlay = f"{pipeline.FROM_OVERLAY:#x}/{pipeline.METADATA_MASK:#x}"
# (pattern, replacement) applied to match and actions of the compact lines
_SHORTER = [
    (r'"', ""),  # --names quotes port names such as "ipop-B"
    (rf"write_metadata:{_local}\b", "meta:=local"), (rf"metadata={_local}\b", "meta=local"),
    (rf"write_metadata:{_overlay}\b", "meta:=overlay"),
    (rf"metadata={_overlay}\b", "meta=overlay"),
    (r"dl_dst=ff:ff:ff:ff:ff:ff", "dl_dst=bcast"),
    (r"CONTROLLER:65535", "CONTROLLER"),
    (r"learn\(table=(\d+)[^()]*\)", lambda m: f"learn({_table_name(int(m.group(1)))})"),
    (r"goto_table:(\d+)", lambda m: f"goto:{_table_name(int(m.group(1)))}"),
    (r"(?:NXM_OF|NXM_NX|OXM_OF)_(\w+)\[\]", lambda m: m.group(1).lower()),
]


def _table_name(number):
    return pipeline.TABLE_NAMES.get(number, f"table{number}")


def parse_flow(line):
    """One dump-flows line -> dict (cookie int; timeouts None when absent)."""
    head, _, actions = line.strip().partition(" actions=")
    stats, match = {}, []
    for token in head.rstrip(",").split(", "):
        key, _, value = token.partition("=")
        if key in STATS:
            stats[key] = value
        elif token not in FLAGS:
            match.append(token)
    fields = ",".join(match).split(",") if match else []
    priority = next((int(f[9:]) for f in fields if f.startswith("priority=")), DEFAULT_PRIORITY)
    cookie = int(stats["cookie"], 16)
    flow = {
        "cookie": cookie,
        "purpose": pipeline.purpose_of(cookie) or OTHER,
        "table": int(stats.get("table", 0)),
        "priority": priority,
        "n_packets": int(stats.get("n_packets", 0)),
        "n_bytes": int(stats.get("n_bytes", 0)),
        "duration": float(stats.get("duration", "0").rstrip("s")),
        "idle_timeout": int(stats["idle_timeout"]) if "idle_timeout" in stats else None,
        "hard_timeout": int(stats["hard_timeout"]) if "hard_timeout" in stats else None,
        "match": ",".join(f for f in fields if not f.startswith("priority=")),
        "actions": actions,
    }
    if flow["purpose"] in _RESPONDER_FIELDS:
        address, mac_field = _RESPONDER_FIELDS[flow["purpose"]]
        ip = re.search(rf"\b{address}=([0-9a-fA-F.:]+)", flow["match"])
        mac = re.search(rf"set_field:([0-9a-fA-F:]{{17}})->{mac_field}\b", actions)
        flow["ip"], flow["mac"] = ip and ip.group(1), mac and mac.group(1).lower()
    return flow


# responder purpose -> (the match field naming its address, the field set to the owner's MAC)
_RESPONDER_FIELDS = {"proxy_arp": ("arp_tpa", "arp_sha"), "proxy_nd": ("nd_target", "eth_src")}
_RESPONDER_NAMES = {"proxy_arp": "proxy-ARP", "proxy_nd": "proxy-ND"}


def parse_dump_flows(text):
    """Every flow in `ovs-ofctl dump-flows` output (reply headers and blank lines skipped)."""
    return [parse_flow(line) for line in text.splitlines() if line.strip().startswith("cookie=")]


def group(flows):
    """purpose -> {description, flows, packets, entries}, in pipeline order, "other" last."""
    descriptions = {name: text for name, (_, text) in pipeline.PURPOSES.items()}
    descriptions[OTHER] = OTHER_DESCRIPTION
    groups = {}
    for name, description in descriptions.items():
        entries = [f for f in flows if f["purpose"] == name]
        if entries:
            groups[name] = {"description": description, "flows": len(entries),
                            "packets": sum(f["n_packets"] for f in entries), "entries": entries}
    return groups


def shorten(text, width=ACTIONS_WIDTH):
    for pattern, replacement in _SHORTER:
        text = re.sub(pattern, replacement, text)
    return text if len(text) <= width else text[:width - 3] + "..."


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def _compact(flow):
    if flow["purpose"] in _RESPONDER_NAMES and flow["ip"] and flow["mac"]:
        line = (f"{_RESPONDER_NAMES[flow['purpose']]} {flow['ip']} -> {flow['mac']} "
                f"({flow['n_packets']} answered)")
        if flow["hard_timeout"]:
            line += f", expires in {max(0, round(flow['hard_timeout'] - flow['duration']))}s"
        return line
    timeouts = "".join(f"  {kind} {flow[f'{kind}_timeout']}s" for kind in ("idle", "hard")
                       if flow[f"{kind}_timeout"])
    return (f"{flow['n_packets']:>8}  {_table_name(flow['table']):<9} {flow['priority']:>5}  "
            f"{shorten(flow['match']) or '*'} -> {shorten(flow['actions'])}{timeouts}")


def format_summary(bridge, flows):
    groups = group(flows)
    lines = [f"{bridge}: {_plural(len(flows), 'flow')}, "
             f"{_plural(sum(f['n_packets'] for f in flows), 'packet')}"]
    if flows:
        lines.append(f"{'packets':>10}  {'table':<9} {'prio':>5}  match -> actions")
    for name, g in groups.items():
        lines += ["", f"{name}: {g['description']} -- {_plural(g['flows'], 'flow')}, "
                      f"{_plural(g['packets'], 'packet')}"]
        lines += ["  " + _compact(f) for f in g["entries"]]
    return "\n".join(lines)


def to_json(bridge, flows):
    groups = {name: {k: v for k, v in g.items() if k != "entries"}
              for name, g in group(flows).items()}
    return json.dumps({"bridge": bridge, "purposes": groups,
                       "flows": [{**f, "cookie": f"{f['cookie']:#018x}"} for f in flows],
                       "tables": _tables()}, indent=2)


def _tables():
    return [{"table": t.id, "name": t.name, "holds": t.holds,
             "next": [_table_name(n) for n in t.next]} for t in pipeline.TABLES]


def format_tables():
    """The pipeline as declared: each table, where a frame may go next, what it holds."""
    lines = []
    for table in pipeline.TABLES:
        onward = ", ".join(_table_name(n) for n in table.next) or "(end)"
        lines.append(f"{table.id:>2}  {table.name:<9} -> {onward}")
        lines += textwrap.wrap(table.holds, 88, initial_indent=" " * 4,
                               subsequent_indent=" " * 4)
    return "\n".join(lines)


def dump_flows(bridge):
    # --names: port names instead of numbers whether or not stdout is a terminal
    proc = run(["ovs-ofctl", "-O", "OpenFlow13", "--names", "dump-flows", bridge], timeout=15)
    if proc.returncode == 0:
        return proc.stdout
    bridges = ensure_ovs_running()  # raises the clearer "not running" errors
    if bridge not in bridges:
        raise unknown_bridge(bridge, bridges)
    raise CommandError(f"cannot read the flows of {bridge}: {first_line(proc)}")


def cmd_flows(args):
    if args.tables:
        print(format_tables())
        return 0
    bridge = check_name("bridge", args.bridge)
    flows = parse_dump_flows(dump_flows(bridge))
    print(to_json(bridge, flows) if args.json else format_summary(bridge, flows))
    return 0


def register(subparsers):
    parser = subparsers.add_parser("flows", help="show a bridge's flows grouped by purpose",
                                   description="Dump BRIDGE's OpenFlow 1.3 flows and group them "
                                               "by the purpose their cookie encodes.")
    parser.add_argument("bridge", metavar="BRIDGE", nargs="?", default="br0",
                        help="default: br0")
    parser.add_argument("--json", action="store_true", help="print the parsed flows as JSON")
    parser.add_argument("--tables", action="store_true",
                        help="print the pipeline's tables (what each holds, where a frame may "
                             "go next) without reading a bridge")
    parser.set_defaults(func=cmd_flows)

"""`ipop-ryu sim`: many controllers in one process over a simulated network (ipop_ryu.sim):
ICC traffic per site in the steady state, per cold resolution, and convergence after a site
joins, restarts, leaves or is partitioned, for each number of sites asked for."""
import json
import logging
import os
import time

from . import CommandError


def register(subparsers):
    p = subparsers.add_parser(
        "sim", help="simulate a full mesh of many sites (no lab, no root)",
        description="Run N real controller cores (announce on) on a simulated network with a "
                    "virtual clock; print a table and write sim.json. See bench/SIM.md.")
    p.add_argument("--sites", default="10,100", metavar="N[,N...]",
                   help="numbers of sites (default 10,100; 1000 takes several minutes)")
    p.add_argument("--hosts", type=int, default=4, metavar="H", help="hosts per site (4)")
    p.add_argument("--latency-ms", type=float, default=20.0, help="one-way latency (20)")
    p.add_argument("--loss", type=float, default=0.0, help="datagram loss, 0-1 (0)")
    p.add_argument("--window", type=float, default=120.0, metavar="SECONDS",
                   help="virtual seconds of steady state measured (120: longer than the "
                        "announcements' refresh, arp_timeout/3)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", metavar="FILE", help="write the results as JSON here")
    p.set_defaults(func=run)


def run(args):
    from ipop_ryu.sim import scenarios

    try:
        sizes = [int(n) for n in args.sites.replace(",", " ").split()]
    except ValueError:
        raise CommandError(f"--sites takes whole numbers: {args.sites!r}") from None
    if not sizes or min(sizes) < 4 or max(sizes) > 5000:
        raise CommandError("--sites: each between 4 and 5000")
    if not 0 <= args.loss < 1 or args.hosts < 1 or args.window <= 0:
        raise CommandError("--loss in [0, 1), --hosts >= 1, --window > 0")
    logging.getLogger("ipop_ryu").setLevel(logging.ERROR)   # per-event logs would swamp it
    results = []
    for n in sizes:
        print(f"sim: {n} sites x {args.hosts} hosts", flush=True)
        started = time.monotonic()
        result = scenarios.run(n, args.hosts, window=args.window, seed=args.seed,
                               latency=args.latency_ms / 1000, loss=args.loss,
                               log=lambda line: print(line, flush=True))
        result["wall_s"] = round(time.monotonic() - started, 1)
        results.append(result)
    print()
    print(table(results))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
    return 0


ROWS = (
    ("ICC datagrams / site / min (steady)", lambda r: r["steady"]["total_per_site_per_min"]),
    ("  of which hellos", lambda r: r["steady"]["per_site_per_min"].get("hello", 0)),
    ("ICC bytes / site / min (steady)", lambda r: r["steady"]["bytes_per_site_per_min"]),
    ("core CPU s / site / min (steady)", lambda r: r["steady"]["core_cpu_s_per_site_per_min"]),
    ("table entries / site", lambda r: r["table_entries_per_site"]),
    ("datagrams / cold resolution", lambda r: _median(
        r["cold_resolution"]["datagrams_per_resolution"])),
    ("cold resolution, s", lambda r: _median(r["cold_resolution"]["seconds"])),
    ("converged after all start, s", lambda r: r["cold_start"]["converged_s"]),
    ("converged after a site joins, s", lambda r: r["join"]["converged_s"]),
    ("restart: table back, s", lambda r: r["restart"]["table_back_s"]),
    ("restart: responders lost", lambda r: r["restart"]["responders"]
     - r["restart"]["fewest_responders"]),
    ("leave: withdrawn everywhere, s", lambda r: r["leave"]["withdrawn_everywhere_s"]),
    ("partition healed: reconverged, s", lambda r: r["partition"]["reconverged_s"]),
    ("simulation CPU, s", lambda r: r["sim_cpu_s"]),
)


def _median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else None


def table(results):
    head = "| | " + " | ".join(f"{r['sites']} sites" for r in results) + " |"
    lines = [head, "|---|" + "---|" * len(results)]
    for label, get in ROWS:
        cells = []
        for r in results:
            try:
                value = get(r)
            except (KeyError, TypeError):
                value = None
            cells.append("-" if value is None else f"{value:,}" if isinstance(value, int)
                         else f"{value:g}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

"""`ipop-ryu bench`: ipop-ryu against OVS NORMAL and Ryu simple_switch_13; `--scale`: one site
fed N learned entries (see bench/README.md)."""
import os

from . import CommandError

SYSTEMS = ("normal", "simple_switch_13", "ipop")


def _list(values, cast=str):
    """`a b`, `a,b` and `a, b` all give [a, b]."""
    out = []
    for value in values or ():
        out += [cast(v) for v in str(value).replace(",", " ").split()]
    return out


def register(subparsers):
    p = subparsers.add_parser(
        "bench", help="benchmark ipop-ryu against OVS NORMAL and simple_switch_13",
        description="Build the namespace lab, run every system in turn on the same topology "
                    "and write results.json, results.md and PNG plots under "
                    "OUT/<UTC timestamp>/; print the table. Needs root.")
    p.add_argument("--quick", action="store_true",
                   help="tiny configuration (2 sites x 2 hosts, few repetitions, no scale "
                        "grid): about a minute")
    p.add_argument("--out", metavar="DIR", help="results root (default bench/results in the "
                                                "repository)")
    p.add_argument("--systems", nargs="+", metavar="SYSTEM",
                   help=f"systems to run, of {', '.join(SYSTEMS)} (default all)")
    p.add_argument("--sites", nargs="+", metavar="N",
                   help="scale grid: numbers of sites (default 2 3 4 6; quick: 2)")
    p.add_argument("--hosts", nargs="+", metavar="N",
                   help="scale grid: hosts per site (default 2 10 25 50; quick: 2)")
    p.add_argument("--reps", type=int, metavar="N",
                   help="repetitions per latency metric (default 30; quick: 3)")
    p.add_argument("--scale", action="store_true",
                   help="run only the scale benchmark: one site fed N learned entries by a "
                        "fake peer (learn rate, idle CPU, RSS, ARP and REST latency, restart "
                        "recovery); writes scale.json, scale.md, scale_cost.png")
    p.add_argument("--scale-n", nargs="+", metavar="N",
                   help="--scale: numbers of entries (default 1000 10000 50000 100000; "
                        "with --quick: 2000)")
    p.add_argument("--scale-window", type=float, metavar="SECONDS",
                   help="--scale: idle CPU window after the feed (default 30; quick: 5)")
    p.add_argument("--no-publish", action="store_true",
                   help="do not copy the table and plots into bench/README.md and "
                        "bench/latest/ (only full runs into the default --out publish)")
    p.set_defaults(func=run)


def run_scale(args):
    from ipop_bench import runner, scale

    kw = {}
    if args.scale_n:
        try:
            ns = _list(args.scale_n, int)
        except ValueError as exc:
            raise CommandError(f"--scale-n takes whole numbers: {exc}")
        if any(not 1 <= n <= 1 << 22 for n in ns):
            raise CommandError("--scale-n: 1 to 4,194,304 entries (10.64.0.0/10)")
        kw["ns"] = tuple(dict.fromkeys(ns))
    if args.scale_window is not None:
        if args.scale_window <= 0:
            raise CommandError("--scale-window: a positive number of seconds")
        kw["idle_window"] = args.scale_window
    if args.out:
        kw["out"] = os.path.abspath(args.out)
    config = scale.ScaleConfig.smoke(**kw) if args.quick else scale.ScaleConfig(**kw)
    problems = runner.preflight()
    if problems:
        raise CommandError("; ".join(problems))
    run_dir, doc = scale.run_scale(config)
    print(scale.console(doc))
    print(f"\nresults: {run_dir}/scale.json, scale.md, {', '.join(doc.get('plots', []))}")
    return 0


def run(args):
    from ipop_bench import report, runner
    from ipop_bench import systems as S

    if args.scale:
        return run_scale(args)
    if args.scale_n or args.scale_window is not None:
        raise CommandError("--scale-n and --scale-window go with --scale")
    kw = {}
    if args.systems:
        systems = _list(args.systems)
        unknown = [s for s in systems if s not in SYSTEMS]
        if unknown:
            raise CommandError(f"unknown system(s) {unknown}; choose from {', '.join(SYSTEMS)}")
        kw["systems"] = tuple(dict.fromkeys(systems))
    try:
        if args.sites:
            kw["sites"] = tuple(sorted(set(_list(args.sites, int))))
        if args.hosts:
            kw["hosts"] = tuple(sorted(set(_list(args.hosts, int))))
    except ValueError as exc:
        raise CommandError(f"--sites/--hosts take whole numbers: {exc}")
    if args.reps is not None:
        if not 1 <= args.reps <= len(S.ALIAS_POOL):
            raise CommandError(f"--reps: 1 to {len(S.ALIAS_POOL)} (each cold repetition "
                               f"needs a fresh address from 10.0.3.{S.ALIAS_POOL.start}-"
                               f"{S.ALIAS_POOL.stop - 1})")
        kw["reps"] = args.reps
    if args.out:
        kw["out"] = os.path.abspath(args.out)
    config = runner.Config.quick_config(**kw) if args.quick else runner.Config(**kw)
    config.publish = not args.quick and not args.out and not args.no_publish
    for n in config.sites:
        if n < 2:
            raise CommandError("--sites: at least 2")
    try:
        for n in config.sites:
            S.spec("ipop", n, config.main_hosts)
        for h in config.hosts:
            S.spec("ipop", config.main_sites, h)
    except ValueError as exc:
        raise CommandError(f"scale grid: {exc}")
    problems = runner.preflight()
    if problems:
        raise CommandError("; ".join(problems))
    run_dir, doc = runner.run_bench(config)
    print(report.console(doc))
    print(f"\nresults: {run_dir}/results.json, results.md, "
          f"{', '.join(doc.get('plots', []))}")
    return 0

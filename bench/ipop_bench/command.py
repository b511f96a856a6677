"""`ipop-ryu bench` once its arguments are parsed (ipop_ryu/cli/bench.py declares them, so
that `ipop-ryu bench --help` works without this package): checked, then run."""
import os

from ipop_ryu.cli import CommandError

from . import report, runner, services
from . import systems as S
from .scale import report as scale_report
from .scale import run as scale_run


def _list(values, cast=str):
    """`a b`, `a,b` and `a, b` all give [a, b]."""
    out = []
    for value in values or ():
        out += [cast(v) for v in str(value).replace(",", " ").split()]
    return out


def _check_plots():
    """The plots' matplotlib is there: missing, the run stops before it starts, not after
    (ipop_ryu/cli/bench.py says what to install)."""
    import matplotlib  # noqa: F401


def _preflight(*more):
    """Stop before a run that cannot work here, in one line."""
    problems = runner.preflight() + [p for p in more if p]
    if problems:
        raise CommandError("; ".join(problems))


def run_scale(args):
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
    config = scale_run.ScaleConfig.smoke(**kw) if args.quick else scale_run.ScaleConfig(**kw)
    _check_plots()
    _preflight()
    run_dir, doc = scale_run.run_scale(config)
    print(scale_report.console(doc))
    print(f"\nresults: {run_dir}/scale.json, scale.md, {', '.join(doc.get('plots', []))}")
    return 0


def run_services(args):
    kw = {"out": os.path.abspath(args.out)} if args.out else {}
    config = services.ServicesConfig.smoke(**kw) if args.quick else services.ServicesConfig(**kw)
    _preflight(services.unavailable())
    run_dir, doc = services.run_services(config)
    print(report.services_console(doc))
    print(f"\nresults: {run_dir}/services.json, services.md")
    return 0


def run(args):
    if args.scale and args.services:
        raise CommandError("--scale and --services: one section at a time")
    if args.scale:
        return run_scale(args)
    if args.services:
        return run_services(args)
    if args.scale_n or args.scale_window is not None:
        raise CommandError("--scale-n and --scale-window go with --scale")
    kw = {}
    if args.systems:
        systems = _list(args.systems)
        unknown = [s for s in systems if s not in S.SYSTEMS]
        if unknown:
            raise CommandError(f"unknown system(s) {unknown}; choose from {', '.join(S.SYSTEMS)}")
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
    _check_plots()
    _preflight()
    run_dir, doc = runner.run_bench(config)
    print(report.console(doc))
    print(f"\nresults: {run_dir}/results.json, results.md, "
          f"{', '.join(doc.get('plots', []))}")
    return 0

"""`ipop-ryu bench`: ipop-ryu against OVS NORMAL and Ryu simple_switch_13; `--scale`: one site
fed N learned entries; `--services`: the site services section alone (see bench/README.md).

The bench is a package of its own (bench/ipop_bench, distribution ipop-ryu-bench, with
matplotlib): this module declares the arguments, so that `ipop-ryu bench --help` works without
it, and enters it only when the command runs. The controller imports the bench nowhere else."""
from . import CommandError

# the bench's systems.SYSTEMS, named here for --help without the bench
SYSTEMS = ("normal", "simple_switch_13", "ipop")
INSTALL = "pip install ./bench (from a checkout of ipop-ryu)"


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
    p.add_argument("--services", action="store_true",
                   help="run only the site services section (issue 20): LXC containers on a "
                        "3-site services lab against a plain lxc-net-style host (start to "
                        "first ping, leases, kills, moves, NAT egress); writes services.json, "
                        "services.md (a full run includes it)")
    p.add_argument("--no-publish", action="store_true",
                   help="do not copy the table and plots into bench/README.md and "
                        "bench/latest/ (only full runs into the default --out publish)")
    p.set_defaults(func=run)


def run(args):
    try:
        from ipop_bench import command
        return command.run(args)
    except ModuleNotFoundError as exc:    # the bench, or its matplotlib (checked before a run)
        if exc.name not in ("ipop_bench", "matplotlib"):
            raise
        raise CommandError(f"bench: {exc.name} is not installed; the bench is a package of "
                           f"its own: {INSTALL}")

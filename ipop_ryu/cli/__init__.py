"""The `ipop-ryu` command: one module per sub-command group, each with register(subparsers)."""
import argparse
import importlib
import sys

# sub-command modules, in the order `ipop-ryu --help` lists them
MODULES = ("init", "controller", "doctor", "lab", "bridge", "services", "flows", "status", "demo", "bench", "sim")


from ipop_ryu.host import CommandError  # noqa: F401 (every sub-command raises it from here)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ipop-ryu", description="IPOP switch mode on Open vSwitch: lab, bridge set-up, "
                                     "flows and controller status.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except CommandError as exc:
        print(f"ipop-ryu: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

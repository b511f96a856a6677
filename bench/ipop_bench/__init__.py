"""Benchmarks: ipop-ryu against OVS NORMAL and Ryu simple_switch_13 on the same lab topology.

    ipop-ryu bench [--quick] [--out DIR] [--systems ...] [--sites ...] [--hosts ...] [--reps N]

A package of its own (`pip install ./bench`, distribution ipop-ryu-bench) on top of ipop-ryu:
it imports the controller, the controller never imports it (but for `ipop-ryu bench`, whose
arguments ipop_ryu/cli/bench.py declares and hands to `command`).

command (the CLI's arguments checked, then run), runner (what runs when), systems (the
three controllers), probes (how each metric is measured in a lab), metrics (statistics,
ratios, targets), report (results.md) and plots (PNG), agents (small programs run inside the
lab namespaces); scale and feeder: the scale bench (one site fed N learned entries).
"""
import os

# bench/ of the checkout: results/, latest/ and README.md beside this package
BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

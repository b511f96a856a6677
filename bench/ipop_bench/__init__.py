"""Benchmarks: ipop-ryu against OVS NORMAL and Ryu simple_switch_13 on the same lab topology.

    ipop-ryu bench [--quick] [--out DIR] [--systems ...] [--sites ...] [--hosts ...] [--reps N]

runner (what runs when), systems (the three controllers), probes (how each metric is
measured in a lab), metrics (statistics, ratios, targets), report (results.md) and plots (PNG),
agents (small programs run inside the lab namespaces).
"""

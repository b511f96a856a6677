"""The scale bench (`ipop-ryu bench --scale`): what N learned remote entries cost one site.

For each N a fresh seed lab (sites A and B, arp_timeout 3600 s): B's controller is stopped and
a fake peer (`ipop_bench.feeder`) speaks ICC as B from B's address and port, owning N hosts
in 10.64.0.0/10. Site A's controller is measured:

    learn     the feeder sends all N in `bindings` batches (paced, never overrunning A's
              socket); from its first binding until A's table holds them (REST stats,
              table.remote) and until the N responder flows are in OVS (dump-aggregate of the
              proxy_arp cookie)
    idle      CPU seconds per minute of A's ryu-manager and ovs-vswitchd (/proc/PID/stat
              utime+stime) over a window with no traffic but hellos (also before the feed:
              the 0-entry baseline); VmRSS of the controller before the feed and after, KB
              per entry
    arp       raw-socket ARP requests (agents.py arping) from h3 for learned entries, answered
              by their responder flows
    rest      GET /ipop/v1/arp?limit=1000 (first page, and a middle one with after=),
              /ipop/v1/stats and /metrics from inside A's namespace, a fresh connection each
    restart   A's controller stopped and started again: responders polled every 0.1 s (the
              fewest seen = how many were lost), time until its table holds all N again
              (the feeder answers the restarted controller's sync_request)

Where to look: agents (the watcher, `python -m ipop_bench.scale.agents watch`, and the REST
timer, `... rest`, run inside A's namespace), run (drives the labs from outside: one
ScalePoint per N, phase by phase), targets (the issue's targets judged on the points) and
report (scale.md and the console table). Results: scale.json, scale.md and scale_cost.png
under OUT/<UTC timestamp>/.
"""

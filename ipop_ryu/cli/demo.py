"""`ipop-ryu demo` (`make demo`): the IPOP switch-mode seed walkthrough on this machine.

Builds the seed's two sites (`ipop-ryu lab up`), runs the seed's pings and shows their
output, shows what each controller learned (its REST API, read from inside the site
namespace) and the proxy-ARP flows OVS answers ARP with, then tears the lab down (always:
also on failure, Ctrl-C or SIGTERM). The last line is the verdict; the exit status is 0 only
when every ping worked.
"""
import json
import os
import re
import signal
import sys
import time

from . import CommandError
from . import lab_build
from .lab_show import render_map
from .status import render_arp

# (container, address, what it shows), in the order the demo runs them
PINGS = (("h5", "10.0.3.7", "site A -> site B: the seed's \"ping from 10.0.3.5 to 10.0.3.7\""),
         ("h3", "10.0.3.104", "site A -> site B: the seed's \"under the hood\" example"),
         ("h3", "10.0.3.5", "within site A"))
COUNT, INTERVAL, DEADLINE = 3, 0.2, 10
FETCH = ("import sys,urllib.request;sys.stdout.write(urllib.request.urlopen(sys.argv[1],"
         "timeout=5).read().decode())")


_blank = [True]  # the last line printed was empty


def say(text=""):
    if text or not _blank[0]:
        print(text, flush=True)
    _blank[0] = not text


def heading(text):
    say()
    say(f"== {text} ==")


def first_reply_offset(output):
    """Seconds from the start of a `ping -i INTERVAL` run to its first reply, or None."""
    m = re.search(r"icmp_seq=(\d+) .*?time=([\d.]+) ms", output)
    return None if m is None else (int(m.group(1)) - 1) * INTERVAL + float(m.group(2)) / 1e3


def learned_table(lab, site, url):
    """The controller's /ipop/v1/arp, fetched from inside the site namespace, rendered."""
    proc = lab.exec(site.ns, [sys.executable, "-S", "-c", FETCH, f"{url}/ipop/v1/arp"],
                    check=False, timeout=15)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"(cannot read {url}/ipop/v1/arp: {last})"
    try:
        return render_arp(json.loads(proc.stdout))
    except (ValueError, KeyError, TypeError) as exc:
        return f"(unexpected answer from {url}/ipop/v1/arp: {exc})"


def proxy_arp_flows(lab, site):
    from ..core import pipeline
    spec = f"cookie={pipeline.cookie('proxy_arp'):#x}/0xffffffff00000000"
    argv = ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", site.bridge, spec]
    say(f"$ ipop-ryu lab exec {site.name} -- {' '.join(argv)}")
    proc = lab.exec(site.ns, argv, check=False)
    out = (proc.stdout + proc.stderr).rstrip()
    flows = [line for line in out.splitlines() if "cookie=" in line]
    say(out if out else "(no proxy-ARP flows)")
    return flows


_MAIN_PID = None


def _interrupt(signum, frame):
    if os.getpid() != _MAIN_PID:  # a helper pyroute2 forked: die as it would have
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise KeyboardInterrupt


def run(args):
    from ..lab.topology import seed_two_sites
    from ..lab.traffic import ping
    root = lab_build.workdir_root(args)
    start = time.monotonic()
    lab = desc = None
    built = []  # the Lab, as soon as it exists: torn down whatever happens after
    results, failure, interrupted, up_time = [], None, False, None
    global _MAIN_PID
    _MAIN_PID = os.getpid()
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        say("== ipop-ryu demo: IPOP switch mode, the seed's two sites on this machine ==")
        say()
        say("$ ipop-ryu lab up")
        progress = lab_build.Progress("lab up")
        lab, desc = lab_build.build(seed_two_sites(services=True), root, args.ryu_manager, progress, built)
        up_at = time.monotonic()
        up_time = progress.elapsed()
        say(render_map(desc))

        heading("the seed's pings")
        for name, ip, what in PINGS:
            say(f"$ ipop-ryu lab exec {name} -- ping -n -c {COUNT} -i {INTERVAL} "
                f"-w {DEADLINE} {ip}    # {what}")
            began = time.monotonic() - up_at
            result = ping(lab.hosts[name], ip, count=COUNT, interval=INTERVAL, timeout=DEADLINE)
            say(result.output.rstrip())
            say()
            results.append((name, ip, result, began))

        heading("what each controller learned (its REST API, from inside the site)")
        for site in lab.sites.values():
            url = _site_desc(desc, site.name)["rest"]
            say(f"$ ipop-ryu lab exec {site.name} -- ipop-ryu arp --controller {url}")
            say(learned_table(lab, site, url))
            say()

        heading("proxy-ARP flows: OVS answers ARP for these addresses itself")
        for site in lab.sites.values():
            proxy_arp_flows(lab, site)
            say()
    except KeyboardInterrupt:
        interrupted = True
    except CommandError as exc:
        failure = str(exc)
    except Exception as exc:  # a bug or a stuck tool: still tear down, still a verdict
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        teardown = _teardown(built[0] if built else None)
        for s, handler in previous.items():
            signal.signal(s, handler)

    if teardown[1]:
        say(teardown[1] if teardown[0] else f"(lab down failed: {teardown[1]})")
    verdict, status = _verdict(results, failure, interrupted, up_time, teardown,
                               time.monotonic() - start)
    say()
    say(verdict)
    return status


def _site_desc(desc, name):
    return next(s for s in desc["sites"] if s["name"] == name)


def _teardown(lab):
    """(ok, message); SIGINT and SIGTERM are ignored meanwhile so that a second Ctrl-C cannot
    leave half a lab behind."""
    if lab is None:
        return True, None
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        say()
        say("$ ipop-ryu lab down")
        return True, lab_build.teardown(lab)
    except CommandError as exc:
        return False, str(exc)
    except Exception as exc:  # never lose the verdict
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _verdict(results, failure, interrupted, up_time, teardown, total):
    ok = [r for r in results if r[2].ok]
    counted = f"{len(ok)}/{len(PINGS)} seed pings succeeded"
    if failure:
        return f"demo: FAILED — {failure}", 1
    if interrupted:
        return f"demo: FAILED — interrupted ({counted}; the lab is torn down)", 130
    if len(ok) < len(PINGS):
        bad = "; ".join(f"{name} -> {ip}: {r.received}/{r.sent} replies"
                        for name, ip, r, _ in results if not r.ok)
        return f"demo: FAILED — {counted} ({bad})", 1
    if not teardown[0]:
        return f"demo: FAILED — {counted}, but lab down failed: {teardown[1]}", 1
    first = first_reply_offset(results[0][2].output)
    first_text = f"first ping {results[0][3] + first:.2f} s after lab up; " if first is not None \
        else ""
    return (f"demo: OK — {counted} ({first_text}lab up {up_time:.1f} s, "
            f"whole demo {total:.1f} s)"), 0


def register(sub):
    parser = sub.add_parser(
        "demo", help="the seed walkthrough: two sites, pings, learned tables, proxy-ARP flows",
        description="Build the seed's two sites (lab up), ping across and within them, show "
                    "each controller's learned table and the proxy-ARP flows, tear the lab "
                    "down. The last line is the verdict; exit status 0 only when every ping "
                    "worked. Needs root.")
    parser.add_argument("--workdir-root", metavar="DIR",
                        help=f"where the lab keeps its files (default ${lab_build.ROOT_ENV} or "
                             f"{lab_build.DEFAULT_ROOT})")
    parser.add_argument("--ryu-manager", metavar="PATH",
                        help="the ryu-manager to run (default: this venv's)")
    parser.set_defaults(func=run)

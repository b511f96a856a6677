"""What the simulator measures, one function per scenario; each returns plain numbers.

Times are virtual seconds; CPU is the process time the sites' cores took (all of them, or
per site and virtual minute), which is what a real controller would spend on the same work
minus Ryu and the kernel."""
import time
from collections import Counter

from .world import World

STEP = 0.1          # how often convergence is checked (virtual seconds)


def _wait(world, predicate, limit, step=STEP):
    """Virtual seconds until predicate() holds (checked every step), or None by limit."""
    start = world.now
    while world.now - start <= limit:
        if predicate():
            return round(world.now - start, 3)
        world.run_until(world.now + step)
    return None


def _everyone_knows_everyone(world, names=None):
    names = names or world.names
    want = {n: {ip for m in names if m != n for ip in world.hosts[m]} for n in names}
    return lambda: all(world.knows(n, want[n]) for n in names)


def cold_start(world, limit=120.0):
    """Every site starts at once: seconds until every bridge answers for every remote host
    (announce on), and what it cost."""
    for name in world.names:
        world.start(name)
    took = _wait(world, _everyone_knows_everyone(world), limit)
    return {"converged_s": took, "datagrams": sum(world.sent.values())}


def steady(world, window):
    """ICC datagrams per site and minute by type, and core CPU, over `window` virtual
    seconds of a converged world (hosts chatting, see World.chatter)."""
    before, cpu_before = Counter(world.sent), sum(world.cpu.values())
    bytes_before = world.sent_bytes
    start = world.now
    t0 = time.process_time()
    world.run_until(start + window)
    wall_cpu = time.process_time() - t0
    minutes, n = window / 60.0, len(world.names)
    sent = Counter(world.sent)
    sent.subtract(before)
    per_site = {k: round(v / n / minutes, 1) for k, v in sorted(sent.items()) if v}
    return {"per_site_per_min": per_site,
            "total_per_site_per_min": round(sum(sent.values()) / n / minutes, 1),
            "bytes_per_site_per_min": round((world.sent_bytes - bytes_before) / n / minutes),
            "core_cpu_s_per_site_per_min": round(
                (sum(world.cpu.values()) - cpu_before) / n / minutes, 4),
            "sim_cpu_s": round(wall_cpu, 1)}


def cold_resolutions(world, reps=5, limit=5.0):
    """A host asks for a remote host its site never learned (announce off): ICC datagrams
    (hellos aside) and virtual seconds until it is answered, one pair per repetition."""
    out = []
    names = world.names
    for i in range(reps):
        asker, owner = names[i % len(names)], names[(i * 7 + 1) % len(names)]
        if owner == asker:
            owner = names[(names.index(asker) + 1) % len(names)]
        # never a requester (port 1 asks, and peers learn who asked)
        candidates = world.hosts[owner][1:] or world.hosts[owner]
        target = candidates[i % len(candidates)]
        before = sum(v for k, v in world.sent.items() if k != "hello")
        answered = len(world.answers)
        start = world.now
        world.ask(asker, 1, target)
        took = _wait(world, lambda: any(a[3] == target for a in world.answers[answered:]),
                     limit, step=0.005)
        world.run_until(world.now + 1.0)        # let the responder flows settle
        out.append({"datagrams": sum(v for k, v in world.sent.items() if k != "hello")
                    - before, "seconds": took, "at": round(start, 1)})
    return {"datagrams_per_resolution": sorted(r["datagrams"] for r in out),
            "seconds": sorted(r["seconds"] for r in out if r["seconds"] is not None)}


def join(world, name, limit=120.0):
    """A site that was down starts: until it answers for every other site's hosts and
    every other site answers for its hosts."""
    world.start(name)
    return {"converged_s": _wait(world, _everyone_knows_everyone(world), limit)}


def restart(world, name, away=2.0, limit=120.0):
    """A controller is down `away` seconds and restarts (its switch keeps the flows): the
    fewest responders its bridge held meanwhile, and until its table is whole again."""
    expected = len(world.responders_at(name))
    world.stop(name)
    world.run_until(world.now + away)
    world.start(name, speak=False)
    fewest = [expected]

    def whole():
        fewest[0] = min(fewest[0], len(world.responders_at(name)))
        core = world.sites[name]
        return len(core.table) - core.table.local_count >= expected and \
            not core.graceful.active
    took = _wait(world, whole, limit)
    return {"responders": expected, "fewest_responders": fewest[0], "table_back_s": took}


def leave(world, name, limit=120.0):
    """A site goes silent: until no other bridge answers for its hosts any more."""
    world.stop(name)
    gone = set(world.hosts[name])
    took = _wait(world, lambda: all(not (world.responders_at(n) & gone)
                                    for n in world.names if n != name), limit)
    return {"withdrawn_everywhere_s": took}


def partition(world, cut_off, duration=30.0, limit=120.0):
    """`cut_off` loses the first half of the other sites for `duration` seconds (longer
    than the hold time: both sides withdraw), then the network heals: until everyone
    answers for everyone again."""
    others = [n for n in world.names if n != cut_off]
    world.partition([cut_off], others[:len(others) // 2])
    world.run_until(world.now + duration)
    lost = len(world.hosts[cut_off]) * len(others) - sum(
        len(world.responders_at(n) & set(world.hosts[cut_off])) for n in others)
    world.heal()
    return {"responders_withdrawn": lost,
            "reconverged_s": _wait(world, _everyone_knows_everyone(world), limit)}


def run(n_sites, hosts=4, window=120.0, seed=1, latency=0.02, loss=0.0, tick=None,
        log=print):
    """Every scenario on one n_sites world (announce on), then cold resolutions on a fresh
    one with announce off."""
    tick = tick or (0.1 if n_sites <= 100 else 0.5)
    t0 = time.process_time()
    world = World(n_sites, hosts, latency=latency, loss=loss, seed=seed, tick=tick)
    late = world.names[-1]
    for name in world.names[:-1]:
        world.start(name)
    world.chatter()
    result = {"sites": n_sites, "hosts_per_site": hosts, "latency_ms": latency * 1000,
              "loss": loss, "tick_s": tick}
    result["cold_start"] = {"converged_s": _wait(world, _everyone_knows_everyone(
        world, world.names[:-1]), 300.0)}
    log(f"  {n_sites} sites: converged in {result['cold_start']['converged_s']} s")
    result["join"] = join(world, late)
    log(f"  join: {result['join']}")
    world.run_until(world.now + 10.0)
    result["steady"] = steady(world, window)
    log(f"  steady: {result['steady']}")
    result["table_entries_per_site"] = len(world.sites[world.names[0]].table)
    result["partition"] = partition(world, world.names[2 % n_sites])
    log(f"  partition: {result['partition']}")
    result["restart"] = restart(world, world.names[1])
    log(f"  restart: {result['restart']}")
    result["leave"] = leave(world, world.names[3 % n_sites])
    log(f"  leave: {result['leave']}")
    pull = World(n_sites, hosts, latency=latency, loss=loss, seed=seed, tick=tick,
                 announce=False)
    for name in pull.names:
        pull.start(name, speak=False)     # nobody knows anybody: every resolution is cold
    pull.run_until(pull.now + 5.0)
    result["cold_resolution"] = cold_resolutions(pull)
    result["cold_resolution"]["sites"] = len(pull.names)
    log(f"  cold resolution: {result['cold_resolution']}")
    result["sim_cpu_s"] = round(time.process_time() - t0, 1)
    return result

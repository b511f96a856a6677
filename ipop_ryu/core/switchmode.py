"""Switch mode for one bridge: events in, intents out. Wires the concerns together.

    ports.py       which ports are local and which lead to other sites
    neighbours.py  the learned table; ARP and ND answered, relayed, replayed; moves,
                   conflicts, DAD (family.py, family_nd.py: what differs; relay.py)
    membership.py  peers over ICC: checks, liveness, syncs, graceful restart
    reconcile.py   what the bridge should hold, audited at a cost that follows what differs
    pipeline.py    the flows themselves, one builder per purpose (pipeline_nd.py: ND's)

Every public method returns the list of intents to carry out; nothing here touches a socket or
a switch, so it is tested with plain function calls.
"""
import dataclasses
import logging
import os
import time
from collections import Counter
from typing import Dict, Iterable, List, Optional, Tuple

from . import lease_file, pipeline, pipeline_nd, pipeline_services
from .config import Options
from .intents import DeleteFlows, Flow, Meter, WriteFile
from .gateway import GatewayWatch, hello_fields
from .leases import LeaseWatch
from .names import HOSTS_FILE
from .membership import Membership
from .neighbours import RETRY_BUDGET, Neighbours  # noqa: F401  (RETRY_BUDGET: tests, docs)
from .ports import BridgePorts
from .portsec import PortSecurity
from .reconcile import Reconciler, StaticSource
from .neighbour_table import Entry
from .timers import Every

LOG = logging.getLogger("ipop_ryu")

SUMMARY_INTERVAL = 10.0       # per-entry events log at DEBUG; INFO gets a summary this often
DROP_POLL = 1.0               # how often port security's drop counts are read from the bridge
# what a reload applies (peers, their keys and allowed_ips); any other option waits for a restart
RELOADABLE = ("peers", "peers_file", "own", "icc_key", "icc_key_file", "private_key",
              "private_key_file")
# OVS reruns a megaflow's `learn` when it revalidates it with packets not yet accounted for,
# and a flow-mod makes it revalidate at once: a learned flow deleted just after frames that
# taught it (a host's last echo replies from the site it left) comes straight back, and the
# traffic to it keeps it alive. Sent again once those frames are accounted for, it stays gone.
RELEARN_REPEATS = (0.25, 0.75)    # seconds after a delete of learned flows
_LEARNED = pipeline.cookie("learned_mac")
SUMMARY_COUNTERS = ("entries_learned", "entries_expired", "entries_withdrawn", "host_moved",
                    "host_conflict", "flows_repaired", "flows_removed_stale")


class SwitchMode:
    def __init__(self, options: Options, clock=time.monotonic, wallclock=time.time):
        self.options = options
        self.node_id = options.node_id
        self.clock, self.wallclock = clock, wallclock
        self.stats = Counter()
        self.started = clock()
        self.bridge = BridgePorts(options.is_overlay_port)
        self.members = Membership(options, self.stats, clock, wallclock,
                                  local_bindings=lambda now: self.neighbours.local_bindings(now))
        self.portsec = PortSecurity(options, self.stats, self.bridge)
        self.neighbours = Neighbours(options, self.stats, clock, wallclock, self.bridge,
                                     self.members, self.portsec.permits)
        # site services: leases the site's DHCP server grants (None: no gateway, no DHCP);
        # each goes to the neighbours through learn_lease and withdraw_local here
        self.leases = LeaseWatch(self.stats, clock, self.bridge, self) \
            if options.site_services else None
        self.reconciler = Reconciler(self.stats)
        self.reconciler.hold_deletes = self.members.graceful.active
        self.reconciler.sources.update(self.neighbours.flow_sources())
        self.members.hello_fields = hello_fields(options)
        self.gateway = GatewayWatch(options, self.stats)
        self._handlers = {**self.neighbours.handlers,
                          "bindings": self.neighbours.icc_bindings,
                          "withdraw": self.neighbours.icc_withdraw,
                          "hello": self.gateway.hello}
        self._summary = Every(SUMMARY_INTERVAL, clock() + SUMMARY_INTERVAL)
        self._deletes_again = [{} for _ in RELEARN_REPEATS]   # DeleteFlows -> when due
        self._count_drops = Every(DROP_POLL)
        self._summarised = Counter()

    # the parts most callers ask for
    table = property(lambda self: self.neighbours.table)
    peers = property(lambda self: self.members.peers)
    codec = property(lambda self: self.members.codec)
    boot = property(lambda self: self.members.boot)
    graceful = property(lambda self: self.members.graceful)
    refusals = property(lambda self: self.members.refusals)
    ports = property(lambda self: self.bridge.names)

    def proxied(self, entry: Entry) -> bool:
        return self.neighbours.proxied(entry)

    def responder_count(self) -> int:
        return self.neighbours.responder_count()

    def entries(self) -> List[Entry]:
        return self.table.entries(self.clock())

    # ---- the bridge -----------------------------------------------------------------------
    def _static_flows(self) -> list:
        rate = self.options.punt_rate
        out = pipeline.punt_meters(rate) + pipeline.base_flows(rate)
        out += pipeline_nd.base_flows(pipeline.learn_local_frame())
        out += pipeline_services.base_flows(self.options, pipeline.learn_local_frame())
        out += [pipeline.classify_overlay_port(p) for p in self.bridge.overlay]
        out += pipeline.flood_flows(self.bridge.local, self.bridge.overlay)
        for port in self.bridge.local:
            out += pipeline.install_port_punt(port, rate)
        return out + self.portsec.flows()

    def _update_static_sources(self, static: list):
        by_purpose: Dict[str, list] = {}
        for f in static:
            if isinstance(f, Flow):
                by_purpose.setdefault(pipeline.purpose_of(f.cookie), []).append(f)
        for purpose in pipeline.PURPOSES:
            if purpose not in pipeline.TRANSIENT + pipeline.KEYED:
                self.reconciler.sources[purpose] = StaticSource(by_purpose.get(purpose, ()))

    def switch_connected(self, ports: Dict[int, str], down: Iterable[int] = ()) -> list:
        """Once the bridge's ports are known (so no ARP is punted from a port we cannot
        classify): install the pipeline over what is there, without wiping the bridge. An
        audit follows at once: it reinstalls what a new switch lacks and (after a graceful
        restart) removes what nobody claims. down: the ports whose link is down (as gone;
        what the datapath learned behind them, before we were here, goes)."""
        self.bridge.set(ports, down)
        self.neighbours.drop_gone_ports()
        self.portsec.drop_gone_ports()
        static = self._static_flows()
        self.portsec.mark_installed()
        self._update_static_sources(static)
        self.reconciler.reset()
        now = self.clock()
        forgotten = [pipeline.delete_learned_to_port(p) for p in sorted(self.bridge.down)]
        return self._outgoing(forgotten + static + self.reconciler.tick(now) +
                                 self.neighbours.replay_waiting(now))

    def ports_changed(self, ports: Dict[int, str], down: Iterable[int] = ()) -> list:
        """The bridge's ports now (a port status, a port list). A port that left, whose link
        went down, or whose number now names another port (replaced) is gone: its hosts are
        withdrawn everywhere and no flow outputs to it any more, learned ones included."""
        old = dict(self.bridge.names)
        old_overlay, old_local = set(self.bridge.overlay), set(self.bridge.local)
        self.bridge.set(ports, down)
        gone = {p for p, name in old.items() if self.bridge.names.get(p) != name}
        kept_overlay = old_overlay & set(self.bridge.overlay) - gone
        kept_local = old_local & set(self.bridge.local) - gone
        rate = self.options.punt_rate
        out = [pipeline.delete_learned_to_port(p) for p in sorted(gone)]
        out += [pipeline.delete_overlay_port(p) for p in sorted(old_overlay - kept_overlay)]
        out += [pipeline.classify_overlay_port(p)
                for p in sorted(set(self.bridge.overlay) - kept_overlay)]
        for port in sorted(old_local - kept_local):
            out += pipeline.delete_port_punt(port)
        for port in sorted(set(self.bridge.local) - kept_local):
            out += pipeline.install_port_punt(port, rate)
        out += pipeline.flood_flows(self.bridge.local, self.bridge.overlay)
        for port in set(self.bridge.names) - set(old):      # back (its link up again)
            self._repeat_no_more(pipeline.delete_learned_to_port(port))
        out += self.neighbours.drop_gone_ports(gone)
        self.portsec.drop_gone_ports()
        out += self.portsec.delete_ports(old_local - kept_local) + self.portsec.changes()
        self._update_static_sources(self._static_flows())
        return self._outgoing(out)

    # ---- leases (port security, names) ----------------------------------------------------
    def learn_lease(self, ip: str, mac: str, port: int, now: float) -> list:
        """The site's DHCP server acked ip to mac on port (LeaseWatch)."""
        lease = self.leases.table.get(ip) if self.leases is not None else None
        return self.lease_granted(ip, mac, port, lease.hostname if lease else None)

    def withdraw_local(self, ip: str, mac: str, now: float) -> list:
        """The lease of ip to mac ended: released, declined, expired or replaced."""
        return self.lease_ended(ip, mac)

    def lease_granted(self, ip: str, mac: str, port: int, hostname=None) -> list:
        """ip is mac's on port: the port may speak for it (its flows go first: the host is
        about to), the host is a local one announced to every peer, with its name if any."""
        self.portsec.lease(ip, mac, port)
        out = self._portsec_changed() + self.neighbours.learn_lease(ip, mac, port,
                                                                      self.clock())
        if hostname:
            self.neighbours.local_name(ip, hostname, self.wallclock())
        return out

    def lease_ended(self, ip: str, mac: str) -> list:
        """The port may no longer speak for ip, and the host is withdrawn everywhere."""
        if self.portsec.leases.get(ip, (None, mac))[1] == mac:
            self.portsec.revoke(ip)
        return self._portsec_changed() + self.neighbours.withdraw_local(ip, mac, self.clock())

    def restore_leases(self, text: str) -> list:
        """dnsmasq's lease file as the controller found it at start (port security: see
        portsec.py)."""
        leases, bad = lease_file.parse(text, self.wallclock())
        self.stats["lease_file_unreadable_lines"] += bad
        now = self.clock()
        for lease in leases:
            self.portsec.restore(lease.ip, lease.mac, now + lease.seconds_left)
        self.stats["leases_restored"] += len(leases)
        return self._portsec_changed()

    def _portsec_changed(self) -> list:
        out = self.portsec.changes()
        if out:
            self._update_static_sources(self._static_flows())
        return self._outgoing(out)

    def aggregate_stats(self, request, flow_count: int, packet_count: int) -> list:
        """The switch's answer to a RequestAggregateStats we sent."""
        return self._outgoing(self.reconciler.aggregate_reply(request, flow_count,
                                                                 packet_count, self.clock()))

    def flow_stats(self, request, flows: Iterable[Tuple[int, int, int, int]]) -> list:
        """The switch's answer to a RequestFlowStats: (cookie, table, priority, n_packets)."""
        flows = list(flows)
        if request == self.portsec.counter_request():
            self.portsec.counted(flows)
        return self._outgoing(self.reconciler.flow_stats_reply(request, flows,
                                                                  self.clock()))

    # ---- a reload --------------------------------------------------------------------------
    def reconfigure(self, options: Options) -> Tuple[list, dict]:
        """Apply a re-read configuration's peers, keys and allowed_ips (RELOADABLE) without a
        restart: new peers are greeted at once, removed ones' entries and flows withdrawn, the
        rest untouched. Returns (intents, {"added", "removed", "changed": peer names,
        "needs_restart": other options that changed, not applied})."""
        needs_restart = sorted(f.name for f in dataclasses.fields(Options)
                               if f.name not in RELOADABLE
                               and getattr(options, f.name) != getattr(self.options, f.name))
        merged = dataclasses.replace(self.options, **{name: getattr(options, name)
                                                      for name in RELOADABLE})
        now = self.clock()
        out, change = self.members.reconfigure(merged, now)
        for component in (self, self.neighbours, self.neighbours.relayer):
            component.options = merged
        for name in change["removed"]:
            LOG.info("peer %s removed: withdrawing its %d entries", name,
                     self.table.node_count(name))
            out += self.neighbours.peer_removed(name)
        for name in change["changed"]:
            out += self.neighbours.withdraw_not_allowed(name, now)
        self.stats["reloads_applied"] += 1
        return self._outgoing(out), {**change, "needs_restart": needs_restart}

    # ---- events ---------------------------------------------------------------------------
    def packet_in(self, in_port: int, data: bytes, metadata: int = 0) -> list:
        """A punted frame; metadata is the packet-in's (pipeline.CAUGHT: not delivered)."""
        if self.leases is not None:
            out = self.leases.packet_in(in_port, data)
            if out is not None:
                return self._outgoing(out)
        return self._outgoing(self.neighbours.packet_in(in_port, data, metadata))

    def icc_datagram(self, data: bytes, addr, received_at: Optional[float] = None) -> list:
        """A datagram from a peer; received_at is the wall-clock time it arrived."""
        if self.members.codec is None:
            return []
        message, out = self.members.receive(data, addr, received_at)
        while self.members.arrived:
            out += self.neighbours.peer_up(self.members.arrived.pop(), self.clock())
        if message is None:
            return out
        handler = self._handlers.get(message.type)
        if handler is not None:
            out += handler(message, self.clock())
        return self._outgoing(out)

    def tick(self) -> list:
        """Hellos, syncs, liveness, retries, aging, audits; call about ten times a second."""
        now = self.clock()
        out, gone = self.members.tick(now)
        for state in gone:
            out += self.neighbours.peer_down(state.name)
        if self.leases is not None:          # before neighbours: withdrawals flush with it
            out += self.leases.tick(now)
        out += self.neighbours.tick(now)
        if self.members.graceful_done(now):
            self.reconciler.release(now)
            LOG.info("graceful restart over after %.1fs: %d entries; stale flows go now",
                     now - self.started, len(self.table))
        out += self.reconciler.tick(now)
        out += self._hosts_file()
        if self.portsec.enabled and self._count_drops.due(now):
            out.append(self.portsec.counter_request())
            if self.portsec.expire(now):
                out += self._portsec_changed()
        if self._summary.due(now):
            self._log_summary()
        return self._outgoing(out) + self._outgoing(self._deletes_due(now), repeat=False)

    def _hosts_file(self) -> list:
        """Other sites' hosts by name, for the site's dnsmasq (only where it runs one)."""
        if not self.options.site_services:
            return []
        text = self.neighbours.names.due()
        if text is None:
            return []
        return [WriteFile(os.path.join(self.options.dns_hosts_dir, HOSTS_FILE), text)]

    def _log_summary(self):
        delta = {k: self.stats[k] - self._summarised[k] for k in SUMMARY_COUNTERS}
        if any(delta.values()):
            LOG.info("last %.0fs: %s; table %d entries (%d local)", SUMMARY_INTERVAL,
                     ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in delta.items() if v),
                     len(self.table), self.table.local_count)
            self._summarised.update(delta)

    def _outgoing(self, out: list, repeat: bool = True) -> list:
        """What a call returns to be carried out: flow-mods counted, and each delete of
        learned flows sent again after RELEARN_REPEATS."""
        self.stats["flow_mods"] += sum(1 for i in out if isinstance(i, (Flow, DeleteFlows, Meter)))
        if repeat:
            now = None
            for intent in out:
                if type(intent) is DeleteFlows and intent.cookie == _LEARNED and \
                        intent.cookie_mask == pipeline.PURPOSE_MASK:
                    now = self.clock() if now is None else now
                    for delay, waiting in zip(RELEARN_REPEATS, self._deletes_again):
                        waiting.pop(intent, None)          # (kept in order of when due)
                        waiting[intent] = now + delay
        return out

    def _repeat_no_more(self, intent: DeleteFlows):
        for waiting in self._deletes_again:
            waiting.pop(intent, None)

    def _deletes_due(self, now: float) -> list:
        out = []
        for waiting in self._deletes_again:
            while waiting:
                intent, due = next(iter(waiting.items()))
                if due > now:
                    break
                del waiting[intent]
                out.append(intent)
        return out

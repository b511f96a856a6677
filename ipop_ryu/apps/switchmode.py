"""IPOP switch mode for one Open vSwitch bridge: `ryu-manager ipop_ryu.apps.switchmode`.

A thin shell: it feeds Ryu events, ICC datagrams and a 0.1 s clock into the framework-free
`ipop_ryu.core.switchmode.SwitchMode` and carries out the intents it returns.
"""
import signal
import socket
import time

from eventlet.hubs import trampoline

from ipop_ryu.apps.rest import APP_KEY, StatusController
from ipop_ryu.compat.framework import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                       WSGIApplication, app_manager, cfg,
                                       datapath_connection_factory, hub, ofp_event,
                                       ofproto_v1_3, set_ev_cls)
from ipop_ryu.core import icc, metrics, pipeline
from ipop_ryu.core.config import OPTIONS, ConfigError, parse
from ipop_ryu.core.intents import (IccSend, PacketOut, RequestAggregateStats,
                                   RequestFlowStats, WriteFile)
from ipop_ryu.core.switchmode import SwitchMode
from ipop_ryu.host.files import write_atomically
from ipop_ryu.ofp import packet_in
from ipop_ryu.ofp.ryu13 import (BUNDLE_MIN, bundled, more_replies_follow, port_is_down,
                                to_wire)

CONF = cfg.CONF
CONF.register_opts([cfg.StrOpt(name, default=default, help=help_text)
                    for name, (default, help_text) in OPTIONS.items()], group="ipop")
ICC_RCVBUF = 8 << 20
SO_RCVBUFFORCE = 33         # Linux; root may exceed net.core.rmem_max (not in eventlet's socket)
TICK_SECONDS = 0.1          # relay retries start at 0.25 s
ICC_BATCH = 64              # datagrams read before the OpenFlow messages they cause go out
FLUSH_AT = 4096             # OpenFlow messages buffered at most before one write (a bundle)
REDIAL_SECONDS = 0.1        # switch_address: a refused local connect is cheap, so retry often:
                            # the bridge is ours as soon as both ends are up (OVS's own
                            # reconnect backoff waits 1 s at least, 8 s by default)
DIAL_FAILURE_LOG_SECONDS = 30


def load_options():
    """Read [ipop] as strings and validate them; errors name the option and its file."""
    def source(name):
        try:
            location = CONF.get_location(name, group="ipop")
        except Exception:  # oslo.config raises several kinds for unset options
            return ""
        return (location.detail or "") if location else ""
    return parse({name: getattr(CONF.ipop, name) for name in OPTIONS}, source)


class SwitchModeApp(app_manager.RyuApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    _CONTEXTS = {"wsgi": WSGIApplication}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            self.options = load_options()
        except ConfigError as exc:
            self.logger.error("configuration error: %s", exc)
            raise SystemExit(2)
        packet_in.install()         # packet-ins parsed for in_port and the frame only
        self.core = SwitchMode(self.options)
        if self.options.port_security != "none":
            self._restore_leases()
        self.metrics_registry = metrics.registry_for(self.core)
        self.datapath = None
        self.sock = None
        self._flow_stats = {}      # xid -> multipart reply parts, gathered until the last
        self._requests = {}        # xid -> the stats request intent it carried
        self._bundle_id = 0
        self._error_logged = -10.0
        self._port_desc = {}
        self._connecting = False
        self._out = []             # serialized OpenFlow messages waiting for one write
        if self.options.icc:
            self.sock = self._bind_icc()
        self._warn_unrestricted(self.options)
        self._reload_asked = False
        # a flag only: the tick loop reloads, between events, never inside a handler
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "_reload_asked", True))
        kwargs["wsgi"].register(StatusController, {APP_KEY: self})

    def _warn_unrestricted(self, options):
        if options.icc and options.unrestricted_peers:
            self.logger.warning("no allowed_ips for %s: they may claim any address (set "
                                "allowed_ips in peers_file)",
                                ", ".join(options.unrestricted_peers))

    # ---- reload (SIGHUP, POST /ipop/v1/reload, `ipop-ryu reload`) -------------------------
    def reload(self, asked_by="SIGHUP"):
        """Re-read the configuration files and the peers file and apply the peers, keys and
        allowed_ips; a bad file is refused with the same error as at start, and the running
        configuration stays. Returns what happened (the REST answer)."""
        try:
            if not CONF.reload_config_files():  # oslo.config keeps the old values then
                raise ConfigError(f"{', '.join(CONF.config_file)}: cannot be read again (see "
                                  f"the oslo.config warning before this line)")
            options = load_options()
            if not options.icc and self.options.icc or options.icc and self.sock is None:
                raise ConfigError("[ipop] icc: turning ICC on or off needs a restart")
        except ConfigError as exc:
            self.core.stats["reloads_refused"] += 1
            self.logger.error("reload (%s) refused, running configuration kept: %s",
                              asked_by, exc)
            return {"applied": False, "error": str(exc)}
        intents, change = self.core.reconfigure(options)
        self.options = self.core.options
        self._carry_out("reload", pipeline.for_one_write(intents))
        self._flush()
        self.logger.info("reload (%s): peers added %s, removed %s, changed %s%s", asked_by,
                         *(", ".join(change[k]) or "none" for k in ("added", "removed",
                                                                    "changed")),
                         f"; needs a restart, not applied: {', '.join(change['needs_restart'])}"
                         if change["needs_restart"] else "")
        self._warn_unrestricted(options)
        return {"applied": True, **change}

    def _bind_icc(self):
        address = (self.options.icc_address, self.options.icc_port)
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:    # room for bursts (a peer's state sync, or junk) while the app is busy
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, ICC_RCVBUF)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, ICC_RCVBUF)
        try:
            sock.bind(address)
            sock.setblocking(False)     # drained in batches; _icc_loop waits for readability
        except OSError as exc:
            self.logger.error("cannot bind ICC socket to %s:%d ([ipop] icc_address, icc_port):"
                              " %s", address[0], address[1], exc.strerror)
            raise SystemExit(2)
        self.logger.info("%s: ICC on %s:%d, peers %s", self.options.node_id, *address,
                         ", ".join(p.name for p in self.options.peers) or "none")
        return sock

    def start(self):
        thread = super().start()
        if self.sock is not None:
            self.threads.append(hub.spawn(self._icc_loop))
        self.threads.append(hub.spawn(self._tick_loop))
        if self.options.switch_address is not None:
            self.threads.append(hub.spawn(self._dial_loop, self.options.switch_address))
        return thread

    # ---- dialing the bridge (switch_address) -----------------------------------------------
    def _dial_loop(self, address):
        """Connect to the bridge's passive OpenFlow listener and serve it as Ryu serves a
        bridge that connected to us; when it closes, dial again."""
        self.logger.info("dialing the bridge at %s", address)
        failed_since = None
        while True:
            sock, error = _dial(address)
            if sock is None:
                now = time.monotonic()
                if failed_since is None or now - failed_since >= DIAL_FAILURE_LOG_SECONDS:
                    failed_since = now
                    self.logger.info("bridge at %s not reachable (%s); retrying every %gs",
                                     address, error, REDIAL_SECONDS)
            else:
                failed_since = None
                try:
                    datapath_connection_factory(sock, str(address))  # until it closes
                except Exception:   # logged by Ryu; a broken connection is redialed
                    pass
            hub.sleep(REDIAL_SECONDS)

    # ---- carrying out intents --------------------------------------------------------------
    def _execute(self, intents):
        waiting = False                 # a packet-out (an answer, a replay) is buffered
        for intent in intents:
            if waiting and not isinstance(intent, PacketOut):
                self._flush()           # answers leave before the flow-mods that follow them
            waiting = isinstance(intent, PacketOut)
            if isinstance(intent, IccSend):
                try:
                    self._sendto(intent.data, intent.addr)
                except OSError as exc:
                    self.core.stats["icc_send_errors"] += 1
                    self.logger.debug("ICC send to %s failed: %s", intent.peer, exc)
            elif isinstance(intent, WriteFile):
                self._write_file(intent)
            elif self.datapath is not None:
                self._out += to_wire(self.datapath, intent)
                if isinstance(intent, (RequestAggregateStats, RequestFlowStats)):
                    self._requests[self.datapath.xid] = intent   # the xid to_wire just used
                if len(self._out) >= FLUSH_AT:
                    self._flush()

    def _restore_leases(self):
        """The site's DHCP leases from before we started: their hosts may speak at once."""
        path = self.options.dhcp_lease_file
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            return                      # no lease granted yet
        except OSError as exc:
            self.logger.warning("cannot read %s ([ipop] dhcp_lease_file): %s; leased hosts "
                                "are let speak when they renew", path, exc.strerror)
            return
        self.core.restore_leases(text)  # the flows go with the pipeline when the bridge is in
        self.logger.info("%d leases restored from %s", self.core.stats["leases_restored"], path)

    def _write_file(self, intent):
        try:
            write_atomically(intent.path, intent.text)
        except OSError as exc:
            self.core.stats["file_write_errors"] += 1
            if self.core.stats["file_write_errors"] == 1:    # once: it would repeat each change
                self.logger.error("cannot write %s ([ipop] dns_hosts_dir): %s", intent.path,
                                  exc.strerror or exc)

    def _sendto(self, data, addr):
        while True:
            try:
                return self.sock.sendto(data, addr)
            except BlockingIOError:     # non-blocking socket (see _bind_icc): wait, green
                trampoline(self.sock, write=True)

    def _flush(self):
        """One write for everything buffered: under load Ryu's one sendall per message
        costs more than building the messages."""
        if self._out and self.datapath is not None:
            if len(self._out) >= BUNDLE_MIN:
                self._bundle_id = (self._bundle_id + 1) & 0xFFFFFFFF
                self._out = bundled(self.datapath, self._out, self._bundle_id)
            self.datapath.send(b"".join(self._out))
        self._out = []

    def _handle(self, event_name, call, *args, flush=True):
        """Run a core call and carry out what it returns."""
        self._carry_out(event_name, self._call(event_name, call, *args))
        if flush:
            self._flush()

    def _call(self, event_name, call, *args):
        """A core call's intents; an unexpected error is logged and counted, never fatal."""
        try:
            return call(*args)
        except Exception:
            self._internal_error(event_name)
            return []

    def _carry_out(self, event_name, intents):
        try:
            self._execute(intents)
        except Exception:
            self._internal_error(event_name)

    def _internal_error(self, event_name):
        self.core.stats["internal_errors." + event_name] += 1
        self.logger.exception("error while handling %s", event_name)

    def _icc_loop(self):
        while True:
            batch = []
            try:
                trampoline(self.sock, read=True)
                for _ in range(ICC_BATCH):
                    data, addr = self.sock.recvfrom(65535)
                    batch.append((data, addr, time.time()))
            except BlockingIOError:
                pass
            except OSError as exc:
                self.logger.warning("ICC receive failed: %s", exc)
                hub.sleep(0.1)
            # liveness first: a hello never waits behind a batch of bulk bindings
            batch.sort(key=lambda item: not icc.is_hello(item[0]))
            out = []
            for data, addr, received_at in batch:
                out += self._call("icc", self.core.icc_datagram, data, addr, received_at)
            self._carry_out("icc", pipeline.for_one_write(out))   # one write per batch
            self._flush()
            hub.sleep(0)    # let the tick (our hellos, aging) and packet-ins run between batches

    def _tick_loop(self):
        while True:
            hub.sleep(TICK_SECONDS)
            if self._reload_asked:
                self._reload_asked = False
                try:
                    self.reload()
                except Exception:
                    self._internal_error("reload")
            self._handle("tick", self.core.tick)

    # ---- OpenFlow events -------------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        datapath = ev.msg.datapath
        if self.datapath is not None and self.datapath.id != datapath.id \
                and self.datapath.is_active:
            self.logger.warning("ignoring a second bridge (dpid %016x); one controller serves "
                                "one bridge", datapath.id)
            return
        self.datapath, self._out, self._requests, self._flow_stats = datapath, [], {}, {}
        self._connecting = True     # the pipeline goes in when the port list comes back
        self.logger.info("bridge %016x connected", datapath.id)
        parser, ofp = datapath.ofproto_parser, datapath.ofproto
        # A connection the controller dialed is a "service" connection to OVS: it gets
        # packet-ins and port status only once miss_send_len is set (primary ones by default).
        datapath.send_msg(parser.OFPSetConfig(datapath, ofp.OFPC_FRAG_NORMAL,
                                              ofp.OFPCML_NO_BUFFER))
        datapath.send_msg(parser.OFPPortDescStatsRequest(datapath, 0))

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def switch_gone(self, ev):
        if ev.datapath is self.datapath:
            self.logger.info("bridge %016x disconnected", ev.datapath.id or 0)
            self.datapath, self._out = None, []

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def port_desc(self, ev):
        if ev.msg.datapath is not self.datapath:
            return
        self._port_desc.update({p.port_no: p for p in ev.msg.body})
        if more_replies_follow(ev.msg):
            return
        descs, self._port_desc = self._port_desc, {}
        ports = {number: _name(desc.name) for number, desc in descs.items()}
        down = [number for number, desc in descs.items() if port_is_down(desc)]
        if self._connecting:
            self._connecting = False
            self._handle("switch_connected", self.core.switch_connected, ports, down)
        else:
            self._handle("ports", self.core.ports_changed, ports, down)

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def port_status(self, ev):
        """A port added, deleted or changed (its link went down or up: a killed container's
        port stays, LINK_DOWN, under the same number)."""
        msg = ev.msg
        if msg.datapath is not self.datapath:
            return
        number = msg.desc.port_no
        ports = {**self.core.bridge.names, **self.core.bridge.down}
        down = set(self.core.bridge.down) - {number}
        if msg.reason == msg.datapath.ofproto.OFPPR_DELETE:
            ports.pop(number, None)
        else:
            ports[number] = _name(msg.desc.name)
            if port_is_down(msg.desc):
                down.add(number)
        self._handle("ports", self.core.ports_changed, ports, down)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        msg = ev.msg
        if msg.datapath is self.datapath:
            # more events queued: their messages go out with ours in one write
            self._handle("packet_in", self.core.packet_in, msg.match["in_port"], msg.data,
                         msg.match.get("metadata", 0), flush=self.events.empty())

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def flow_stats(self, ev):
        msg = ev.msg
        if msg.datapath is not self.datapath:
            return
        self._flow_stats.setdefault(msg.xid, []).extend(
            (stat.cookie, stat.table_id, stat.priority, stat.packet_count) for stat in msg.body)
        if not more_replies_follow(msg):
            stats = self._flow_stats.pop(msg.xid)
            request = self._requests.pop(msg.xid, None)
            if request is not None:
                self._handle("flow_stats", self.core.flow_stats, request, stats)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def switch_error(self, ev):
        """A message the switch refused (a bundle is refused whole): counted, and logged at
        most every 10 s; the next audit repairs what is missing."""
        msg = ev.msg
        self.core.stats["switch_errors"] += 1
        now = time.monotonic()
        if now - self._error_logged >= 10:
            self._error_logged = now
            self.logger.warning("the switch refused a message (xid %d, type %d, code %d); %d "
                                "so far", msg.xid, msg.type, msg.code,
                                self.core.stats["switch_errors"])

    @set_ev_cls(ofp_event.EventOFPAggregateStatsReply, MAIN_DISPATCHER)
    def aggregate_stats(self, ev):
        msg = ev.msg
        request = self._requests.pop(msg.xid, None)
        if msg.datapath is self.datapath and request is not None:
            self._handle("aggregate_stats", self.core.aggregate_stats, request,
                         msg.body.flow_count, msg.body.packet_count)


def _dial(address):
    """(socket, None) connected to the bridge's listener, or (None, the reason)."""
    family = socket.AF_UNIX if address.kind == "unix" else \
        socket.AF_INET6 if ":" in address.target[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(2.0)
    try:
        sock.connect(address.target)
    except OSError as exc:
        sock.close()
        return None, exc.strerror or exc
    return (_NoTcpOptions(sock) if family == socket.AF_UNIX else sock), None


class _NoTcpOptions:
    """A Unix stream socket for Ryu's Datapath, which sets TCP_NODELAY on every socket."""
    def __init__(self, sock):
        self._sock = sock

    def setsockopt(self, level, option, value):
        if level != socket.IPPROTO_TCP:
            self._sock.setsockopt(level, option, value)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def _name(name):
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else name


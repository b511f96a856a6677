"""A site's file as the host-side commands read it (doctor, bridge setup --encrypt): [ipop]
parsed by the controller's own parser, and the [DEFAULT] listeners."""
import configparser
import os

from ..core.config import ConfigError, parse

ETC = "/etc/ipop"
DEFAULT_OFP_PORT = 6653


class Site:
    """What doctor needs from a site's file: [ipop] parsed, and the [DEFAULT] listeners."""

    def __init__(self, path):
        self.path = path
        parser = configparser.RawConfigParser()
        try:
            with open(path) as f:
                parser.read_file(f)
        except (OSError, configparser.Error) as exc:
            raise ConfigError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
        defaults = parser.defaults()
        raw = dict(parser["ipop"]) if parser.has_section("ipop") else {}
        self.options = parse(raw, lambda name: path)   # [DEFAULT]'s names are not [ipop]'s
        self.ofp_host = defaults.get("ofp_listen_host", "").strip()
        self.ofp_port = int(defaults.get("ofp_tcp_listen_port", DEFAULT_OFP_PORT))
        host = defaults.get("wsapi_host", "").strip()
        self.rest = f"http://{_url_host(host or '127.0.0.1')}:{defaults.get('wsapi_port', 8080)}"
        self.service = f"ipop-ryu@{os.path.splitext(os.path.basename(path))[0]}"

    def is_our_controller(self, target):
        """The bridge's controller target that reaches this controller: the passive listener
        it dials ([ipop] switch_address), else an active target at its OpenFlow listener."""
        kind, _, rest = target.partition(":")
        dial = self.options.switch_address
        if dial is not None and dial.kind == "unix":
            return kind == "punix" and rest == dial.target
        if dial is not None:                        # ptcp:PORT[:HOST]
            port, _, host = rest.partition(":")
            return kind == "ptcp" and port == str(dial.target[1]) and \
                host.strip("[]") in ("", "0.0.0.0", "::", dial.target[0])
        host, _, port = rest.rpartition(":")
        if kind != "tcp" or port != str(self.ofp_port):
            return False
        wildcard = self.ofp_host in ("", "0.0.0.0", "::")
        return wildcard or host.strip("[]") == self.ofp_host

    @property
    def target(self):
        dial = self.options.switch_address
        if dial is not None and dial.kind == "unix":
            return f"punix:{dial.target}"
        if dial is not None:
            return f"ptcp:{dial.target[1]}:{_url_host(dial.target[0])}"
        host = self.ofp_host if self.ofp_host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        return f"tcp:{_url_host(host)}:{self.ofp_port}"


def is_site_file(path):
    """A site's file has an [ipop] section naming its node_id; peers.conf (a section per
    node) and other *.conf beside it do not."""
    parser = configparser.RawConfigParser()
    try:
        with open(path) as f:
            parser.read_file(f)
    except (OSError, UnicodeDecodeError, configparser.Error):
        return False
    return parser.has_option("ipop", "node_id")


def _url_host(host):
    return f"[{host}]" if ":" in host else host

"""One authenticated session with an etcd cluster, over etcd3gw, tried endpoint by endpoint.

etcd3gw talks to one host and knows no user or password, so: one etcd3gw client per endpoint
sharing one requests session, whose `Authorization` header carries a token from
`POST /v3/auth/authenticate` (re-fetched when etcd says `invalid auth token`: tokens expire,
and a restarted member forgets them). A connection error, a timeout or a member without
quorum (503: `no leader`, `request timed out`) moves on to the next endpoint.
"""
import base64
import json
import threading
import urllib.parse
from typing import Callable, List, Sequence, TypeVar

import requests
from etcd3gw import exceptions as gw_errors
from etcd3gw.client import Etcd3Client

T = TypeVar("T")
API_PATH = "/v3/"
CONNECT_TIMEOUT = 1.0     # s: a member that is down refuses at once, one that is hung does not
REQUEST_TIMEOUT = 3.0     # s: etcd's own `request timed out` comes after about 7 s
# Answers of a member that cannot serve now, where another may: try the next endpoint.
_RETRY_ELSEWHERE = (gw_errors.ConnectionFailedError, gw_errors.ConnectionTimeoutError,
                    gw_errors.InternalServerError)


class DirectoryError(Exception):
    """Any failure of the directory, with a one-line str()."""


class Unavailable(DirectoryError):
    """No endpoint could serve the request."""


class PermissionDenied(DirectoryError):
    pass


class AuthFailed(DirectoryError):
    """Bad user or password: retrying elsewhere will not help."""


def parse_endpoints(text_or_list) -> List[str]:
    """`http://a:2379,http://b:2379` (or a list) -> the URLs; ValueError naming a bad one."""
    items = text_or_list.split(",") if isinstance(text_or_list, str) else list(text_or_list)
    urls = [i.strip().rstrip("/") for i in items if i.strip()]
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
            raise ValueError(f"etcd endpoint {url!r}: expected http(s)://host:port")
    if not urls:
        raise ValueError("no etcd endpoint given")
    return urls


def b64(data) -> str:
    """etcd's JSON API carries keys and values as base64."""
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _detail(error) -> str:
    """etcd's message out of an etcd3gw exception (its detail_text is the JSON answer)."""
    text = getattr(error, "detail_text", None) or str(error)
    try:
        return json.loads(text).get("error") or text
    except (ValueError, AttributeError):
        return text.strip().splitlines()[0] if text.strip() else type(error).__name__


class Session:
    def __init__(self, endpoints: Sequence[str], user: str = "", password: str = "",
                 ca_cert=None, timeout=REQUEST_TIMEOUT):
        self.endpoints = parse_endpoints(endpoints)
        self.user, self._password = user, password
        self.http = requests.Session()
        if ca_cert:
            self.http.verify = ca_cert
        self.timeout = (CONNECT_TIMEOUT, timeout)
        self._clients = []
        for url in self.endpoints:
            parts = urllib.parse.urlsplit(url)
            self._clients.append(Etcd3Client(host=parts.hostname, port=parts.port,
                                             protocol=parts.scheme, timeout=self.timeout,
                                             api_path=API_PATH, session=self.http))
        self._current = 0
        self._lock = threading.Lock()
        self._auth_lock = threading.Lock()
        self.failovers = 0
        self.authentications = 0

    @property
    def current(self) -> str:
        return self.endpoints[self._current]

    def client(self) -> Etcd3Client:
        return self._clients[self._current]

    def failover(self, from_endpoint: str):
        """The next endpoint, unless another thread already moved off `from_endpoint`."""
        with self._lock:
            if self.endpoints[self._current] == from_endpoint:
                self._current = (self._current + 1) % len(self.endpoints)
                self.failovers += 1

    def authenticate(self, client: Etcd3Client = None):
        if not self.user:
            return
        client = client or self.client()
        # not with the old token: etcd checks a token, even a stale one, before the password
        self.http.headers.pop("Authorization", None)
        try:
            resp = requests.post(client.get_url("/auth/authenticate"), timeout=self.timeout,
                                 json={"name": self.user, "password": self._password},
                                 verify=self.http.verify)
        except requests.RequestException as e:
            raise gw_errors.ConnectionFailedError(str(e)) from None
        if resp.status_code == 503:
            raise gw_errors.ConnectionFailedError(resp.text)
        if resp.status_code != 200:
            raise AuthFailed(f"etcd user {self.user}: {_detail(gw_errors.Etcd3Exception(resp.text))}")
        self.http.headers["Authorization"] = resp.json()["token"]
        self.authentications += 1

    def call(self, op: Callable[[Etcd3Client], T], what: str = "request") -> T:
        """op(client) on the current endpoint, then on each other one in turn."""
        last = None
        for _ in range(len(self.endpoints)):
            endpoint, client = self.current, self.client()
            try:
                return self._with_auth(op, client)
            except _RETRY_ELSEWHERE as e:
                last = f"{endpoint}: {_detail(e)}"
                self.failover(endpoint)
        raise Unavailable(f"etcd {what}: no endpoint answered (last: {last})")

    def token(self):
        return self.http.headers.get("Authorization")

    def renew(self, stale, client: Etcd3Client = None):
        """A new token unless another thread already replaced `stale` (None: no token yet)."""
        if not self.user:
            return
        with self._auth_lock:
            if self.token() == stale:
                self.authenticate(client)

    def _with_auth(self, op, client):
        for attempt in (1, 2):
            used = self.token()
            if self.user and used is None:
                self.renew(None, client)
                used = self.token()
            try:
                return op(client)
            except gw_errors.Etcd3Exception as e:
                if isinstance(e, _RETRY_ELSEWHERE):
                    raise
                detail = _detail(e)
                if attempt == 1 and ("invalid auth token" in detail
                                     or "user name is empty" in detail):
                    self.renew(used, client)       # expired, or a restarted member forgot it
                    continue
                if "permission denied" in detail:
                    raise PermissionDenied(
                        f"etcd user {self.user or '(none)'}: permission denied") from None
                raise DirectoryError(f"etcd: {detail}") from None

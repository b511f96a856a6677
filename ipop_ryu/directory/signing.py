"""Signed directory values: a site's bindings carry its own signature, checked on read.

Why Ed25519 and not ICC's pairwise HMAC: a directory value is written once and read by every
site, and a pairwise HMAC proves it to one reader only (a site would have to write one MAC per
reader, N values for N sites). So each node has an Ed25519 signing key derived from its X25519
private key (core/keys.signing_seed: HKDF with its own label, no second secret to keep) and
publishes the public half (`signing_key` in its site record or peers file). A reader accepts a
value only when

- its path is in the layout, and the path's <node> is a site it knows,
- the signature verifies against that site's signing key, over the key path and the value
  (so a value cannot be replayed under another key or another site's prefix),
- for a host binding: the path's ip is the value's ip and lies in the site's allowed_ips.

So neither an etcd administrator nor a stolen etcd credential can make a site claim what it
may not: at most they delete what a site wrote, which its rewrite after a relist restores.
"""
import base64
import binascii
import json
from dataclasses import dataclass
from typing import Dict, Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..core.addr import Subnets, ip_key
from ..core.keys import decode_key, signing_seed
from . import layout

VERSION = 1
_CONTEXT = b"ipop-ryu directory value v1\0"


class Refused(ValueError):
    """A value a reader does not accept; str() is the one-line reason, args[1] its kind."""

    def __init__(self, reason: str, kind: str):
        super().__init__(reason, kind)
        self.reason, self.kind = reason, kind

    def __str__(self):
        return self.reason


def _message(key: str, record: Mapping) -> bytes:
    body = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    return _CONTEXT + key.encode() + b"\0" + body


class Signer:
    """Signs this node's values with the key derived from its private key (base64)."""

    def __init__(self, node: str, private_b64: str):
        self.node = node
        self._key = Ed25519PrivateKey.from_private_bytes(signing_seed(decode_key(private_b64)))

    def encode(self, key: str, record: Mapping) -> bytes:
        record = dict(record, v=VERSION, node=self.node)
        sig = self._key.sign(_message(key, record))
        return json.dumps(dict(record, sig=base64.b64encode(sig).decode()),
                          sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SiteTrust:
    signing_key: bytes           # Ed25519 public key, 32 bytes
    allowed_ips: Subnets


class Verifier:
    """Checks values against the sites it knows: {node: SiteTrust}."""

    def __init__(self, sites: Mapping[str, SiteTrust]):
        self._sites: Dict[str, SiteTrust] = dict(sites)
        self._keys = {n: Ed25519PublicKey.from_public_bytes(t.signing_key)
                      for n, t in self._sites.items()}

    @classmethod
    def from_text(cls, sites: Mapping[str, tuple]) -> "Verifier":
        """{node: (signing key base64, [allowed ip networks])}."""
        return cls({n: SiteTrust(decode_key(k), Subnets(nets)) for n, (k, nets) in sites.items()})

    def verify(self, key: str, raw: bytes) -> dict:
        """The value's record (without the signature), or Refused."""
        where = layout.parse(key)
        if where is None:
            raise Refused(f"{key}: not a directory key", "layout")
        trust = self._sites.get(where.node)
        if trust is None:
            raise Refused(f"{key}: unknown site {where.node}", "unknown-site")
        try:
            record = json.loads(raw)
            sig = base64.b64decode(record.pop("sig"), validate=True)
        except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
            raise Refused(f"{key}: value is not a signed JSON record", "malformed") from None
        if record.get("node") != where.node:
            raise Refused(f"{key}: signed as {record.get('node')!r}, not {where.node}",
                          "wrong-signer")
        try:
            self._keys[where.node].verify(sig, _message(key, record))
        except InvalidSignature:
            raise Refused(f"{key}: signature does not verify with {where.node}'s key",
                          "bad-signature") from None
        if where.kind == "host":
            _check_host(key, where, record, trust)
        return record

    def nodes(self) -> Iterable[str]:
        return self._sites.keys()


def _check_host(key, where, record, trust):
    if record.get("ip") != where.ip or ip_key(where.ip) is None:
        raise Refused(f"{key}: value's ip {record.get('ip')!r} is not the key's", "malformed")
    if not isinstance(record.get("mac"), str) or not isinstance(record.get("seq"), int):
        raise Refused(f"{key}: value lacks mac or seq", "malformed")
    if trust.allowed_ips.restricts(where.ip) and where.ip not in trust.allowed_ips:
        raise Refused(f"{key}: {where.ip} is outside {where.node}'s allowed_ips",
                      "outside-allowed-ips")

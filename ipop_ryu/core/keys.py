"""Node identity: WireGuard-format X25519 keys, and the ICC keys two nodes derive from them.

A node's key pair is written as WireGuard writes it (`wg genkey | tee a.key | wg pubkey`:
base64 of 32 bytes), so one pair can be the node's WireGuard key and its ICC identity. Two
nodes derive, as Noise does, a secret only they share: X25519 of one's private key and the
other's public key, through HKDF-SHA256 bound to both public keys. It yields one HMAC key per
direction, so a datagram can be neither forged by a third node nor reflected back to its
sender. Every primitive is pyca `cryptography`'s.
"""
import base64
import binascii
from typing import Tuple

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
HKDF_SALT = b"ipop-ryu icc pair key v1"
_RAW = dict(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)


def decode_key(text: str) -> bytes:
    """base64 of 32 bytes (WireGuard's format) -> the bytes; ValueError otherwise."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64 (expected a key as `wg genkey`/`wg pubkey` print it)") \
            from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"{len(raw)} bytes, a key has {KEY_BYTES} (as `wg genkey` prints)")
    return raw


def encode_key(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def generate_private_key() -> str:
    """A new private key, base64 (as `wg genkey`)."""
    key = X25519PrivateKey.generate()
    return encode_key(key.private_bytes(serialization.Encoding.Raw,
                                        serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption()))


def public_key_of(private_b64: str) -> str:
    """The public key of a base64 private key, base64 (as `wg pubkey`)."""
    private = X25519PrivateKey.from_private_bytes(decode_key(private_b64))
    return encode_key(private.public_key().public_bytes(**_RAW))


def pair_keys(private: bytes, peer_public: bytes) -> Tuple[bytes, bytes]:
    """(key for what we send the peer, key for what it sends us), 32 bytes each; both nodes
    compute the same two, swapped. ValueError for a public key no honest node has (one of
    low order gives an all-zero secret, which cryptography refuses)."""
    own = X25519PrivateKey.from_private_bytes(private)
    own_public = own.public_key().public_bytes(**_RAW)
    if own_public == peer_public:
        raise ValueError("the peer's public key is this node's own")
    secret = own.exchange(X25519PublicKey.from_public_bytes(peer_public))
    low, high = sorted((own_public, peer_public))
    okm = HKDF(algorithm=hashes.SHA256(), length=2 * KEY_BYTES, salt=HKDF_SALT,
               info=low + high).derive(secret)
    low_to_high, high_to_low = okm[:KEY_BYTES], okm[KEY_BYTES:]
    return (low_to_high, high_to_low) if own_public == low else (high_to_low, low_to_high)


# --- the directory's signing key ----------------------------------------------------------
# X25519 cannot sign, and a pairwise HMAC (as ICC uses) proves a value to one reader only: a
# directory value is read by every site, so it carries an Ed25519 signature instead. The
# Ed25519 seed is derived from the node's X25519 private key bytes (HKDF-SHA256, its own
# label), so a node has one secret to keep; the public half must be published (it cannot be
# computed from the X25519 public key).
SIGNING_INFO = b"ipop-ryu directory signing key v1"


def signing_seed(private: bytes) -> bytes:
    """The 32-byte Ed25519 seed of a node, from its X25519 private key bytes."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                info=SIGNING_INFO).derive(private)


def signing_public_key_of(private_b64: str) -> str:
    """The Ed25519 public key (base64 of 32 bytes) that verifies what this node signs."""
    seed = signing_seed(decode_key(private_b64))
    return encode_key(Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(**_RAW))

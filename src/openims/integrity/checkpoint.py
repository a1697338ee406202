"""Signed checkpoints (signed tree heads), Ed25519, in the spirit of the transparency-log checkpoint format:
the signed body is these lines, each ending in a newline:

    openims-log/v1
    <account ID>
    <tree size>
    <root hash, base64>
    <time, milliseconds since the epoch>
    <key ID>
    <SHA-256 of the previous checkpoint's body and signature, base64; 32 zero bytes for the first>

Each checkpoint commits to the previous one, so checkpoints form a chain; `digest` is what the next one holds."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, replace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ORIGIN = "openims-log/v1"


@dataclass(frozen=True)
class Checkpoint:
    account_id: str
    size: int
    root: bytes
    time_ms: int
    key_id: str
    previous: bytes
    signature: bytes = b""


def body(cp: Checkpoint) -> bytes:
    lines = (ORIGIN, cp.account_id, str(cp.size), _b64(cp.root), str(cp.time_ms), cp.key_id, _b64(cp.previous))
    return "".join(line + "\n" for line in lines).encode()


def sign(cp: Checkpoint, private_key: Ed25519PrivateKey) -> Checkpoint:
    return replace(cp, signature=private_key.sign(body(cp)))


def verify(cp: Checkpoint, public_key: Ed25519PublicKey) -> bool:
    try:
        public_key.verify(cp.signature, body(cp))
    except InvalidSignature:
        return False
    return True


def digest(cp: Checkpoint) -> bytes:
    return hashlib.sha256(body(cp) + cp.signature).digest()


def to_json(cp: Checkpoint) -> dict[str, Any]:
    return {
        "origin": ORIGIN,
        "accountId": cp.account_id,
        "treeSize": cp.size,
        "rootHash": _b64(cp.root),
        "timeMs": cp.time_ms,
        "keyId": cp.key_id,
        "previous": _b64(cp.previous),
        "signature": _b64(cp.signature),
    }


def from_json(data: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        str(data["accountId"]),
        int(data["treeSize"]),
        base64.b64decode(data["rootHash"]),
        int(data["timeMs"]),
        str(data["keyId"]),
        base64.b64decode(data["previous"]),
        base64.b64decode(data["signature"]),
    )


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key."""
    return hashlib.sha256(public_key.public_bytes_raw()).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode()


_BEGIN, _END = "-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----"


def load_public_pem(text: str) -> Ed25519PublicKey:
    """The first Ed25519 public key of a PEM text."""
    return load_public_pems(text)[0]


def load_public_pems(text: str) -> list[Ed25519PublicKey]:
    """Every Ed25519 public key of a PEM text (`openims integrity public-key` lists current and earlier ones)."""
    keys = []
    start = text.find(_BEGIN)
    while start >= 0:
        end = text.find(_END, start)
        if end < 0:
            break
        key = serialization.load_pem_public_key(text[start : end + len(_END)].encode())
        if not isinstance(key, Ed25519PublicKey):
            raise TypeError("not an Ed25519 public key")
        keys.append(key)
        start = text.find(_BEGIN, end)
    if not keys:
        raise ValueError("no PEM public key found")
    return keys


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()

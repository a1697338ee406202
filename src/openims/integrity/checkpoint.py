"""Signed checkpoints (signed tree heads) with Ed25519, in the spirit of the C2SP transparency-log checkpoint
format. The signed body is these seven lines, each ending in a newline (0x0A), UTF-8:

    openims-log/v1
    <account ID>
    <tree size, decimal>
    <root hash, base64 of 32 bytes>
    <time, milliseconds since the epoch, decimal>
    <key ID: the first 16 hex digits of SHA-256 of the raw 32-byte Ed25519 public key>
    <previous: base64 of SHA-256(body || signature) of the account's previous checkpoint; 32 zero bytes for the first>

The signature is Ed25519 over exactly those bytes. Each checkpoint commits to the previous one, so checkpoints
form a chain; `digest` is what the next one holds. Neither ID may hold whitespace, so the body has exactly seven
lines and no two checkpoints share one."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, replace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ORIGIN = "openims-log/v1"
FIRST_PREVIOUS = bytes(32)
SIGNATURE_SIZE = 64


class MalformedCheckpoint(ValueError):
    """A checkpoint's JSON that `from_json` cannot take, saying what is wrong."""


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
    """The signed bytes (see the module docstring)."""
    lines = (ORIGIN, cp.account_id, str(cp.size), _b64(cp.root), str(cp.time_ms), cp.key_id, _b64(cp.previous))
    return "".join(f"{line}\n" for line in lines).encode("utf-8", "backslashreplace")


def problem(cp: Checkpoint) -> str | None:
    """Why `cp` is not a well-formed checkpoint, or None."""
    for name in ("account_id", "key_id"):
        value = getattr(cp, name)
        if not isinstance(value, str) or not value or not value.isprintable() or any(c.isspace() for c in value):
            return f"{name} must be a non-empty text without whitespace"
    for name in ("size", "time_ms"):
        value = getattr(cp, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{name} must be a whole number, zero or more"
    for name in ("root", "previous"):
        value = getattr(cp, name)
        if not isinstance(value, bytes) or len(value) != 32:
            return f"{name} must be 32 bytes"
    if not isinstance(cp.signature, bytes):
        return "signature must be bytes"
    return None


def sign(cp: Checkpoint, private_key: Ed25519PrivateKey) -> Checkpoint:
    """`cp` with its signature; ValueError for a malformed checkpoint."""
    if why := problem(cp):
        raise ValueError(f"cannot sign the checkpoint: {why}")
    return replace(cp, signature=private_key.sign(body(cp)))


def verify(cp: Checkpoint, public_key: Ed25519PublicKey) -> bool:
    """Whether `cp` is well formed and signed by `public_key`. Never raises."""
    if problem(cp) is not None or len(cp.signature) != SIGNATURE_SIZE:
        return False
    try:
        public_key.verify(cp.signature, body(cp))
    except InvalidSignature:
        return False
    return True


def digest(cp: Checkpoint) -> bytes:
    """SHA-256 of the body and the signature: what the next checkpoint's `previous` holds."""
    signature = cp.signature if isinstance(cp.signature, bytes) else b""
    return hashlib.sha256(body(cp) + signature).digest()


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


def from_json(data: Any) -> Checkpoint:
    """The inverse of `to_json`; MalformedCheckpoint (a ValueError) saying what is wrong for anything else."""
    if not isinstance(data, dict):
        raise MalformedCheckpoint("a checkpoint is a JSON object")
    if data.get("origin") != ORIGIN:
        raise MalformedCheckpoint(f"the checkpoint's origin is {data.get('origin')!r}, not {ORIGIN!r}")
    cp = Checkpoint(
        account_id=_field(data, "accountId", str),
        size=_field(data, "treeSize", int),
        root=_unb64(data, "rootHash"),
        time_ms=_field(data, "timeMs", int),
        key_id=_field(data, "keyId", str),
        previous=_unb64(data, "previous"),
        signature=_unb64(data, "signature"),
    )
    if why := problem(cp):
        raise MalformedCheckpoint(f"malformed checkpoint: {why}")
    return cp


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
    """Every public key of a PEM text (`openims integrity public-key` lists current and earlier ones);
    ValueError if there is none or one is not valid, TypeError if one is not Ed25519."""
    keys = []
    start = text.find(_BEGIN)
    while start >= 0:
        end = text.find(_END, start)
        if end < 0:
            raise ValueError("a PEM public key is not terminated")
        key = serialization.load_pem_public_key(text[start : end + len(_END)].encode())
        if not isinstance(key, Ed25519PublicKey):
            raise TypeError(f"not an Ed25519 public key: {type(key).__name__}")
        keys.append(key)
        start = text.find(_BEGIN, end)
    if not keys:
        raise ValueError("no PEM public key found")
    return keys


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode() if isinstance(data, bytes) else str(data)


def _unb64(data: dict[str, Any], name: str) -> bytes:
    value = data.get(name)
    if not isinstance(value, str):
        raise MalformedCheckpoint(f"the checkpoint's {name} is not a base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise MalformedCheckpoint(f"the checkpoint's {name} is not valid base64") from None


def _field(data: dict[str, Any], name: str, kind: type[Any]) -> Any:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise MalformedCheckpoint(f"the checkpoint's {name} is not a {'number' if kind is int else 'text'}")
    return value

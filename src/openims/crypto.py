"""Secrets at rest: the master key, AES-GCM sealing, argon2id password hashes, and HMAC tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openims.config import ConfigError

_NONCE_BYTES = 12
_VERSION = b"\x01"
_hasher = PasswordHasher()  # argon2id with the library's current recommended cost


class MasterKey:
    """Seals secrets with AES-256-GCM; the associated data binds a ciphertext to its row."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigError("the master key must be 32 bytes (base64 of 32 random bytes)")
        self._aead = AESGCM(key)
        self._mac_key = hashlib.sha256(b"openims-token-mac" + key).digest()

    def seal(self, plaintext: str, context: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def open(self, sealed: bytes, context: str) -> str:
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        return self._aead.decrypt(nonce, bytes(body), context.encode()).decode()

    def mac(self, data: bytes) -> bytes:
        """A keyed MAC for tokens we hand out (LookupEvents NextToken, console cookies)."""
        return hmac.new(self._mac_key, data, hashlib.sha256).digest()

    def sign_token(self, purpose: str, payload: bytes) -> str:
        """An opaque, URL-safe token carrying `payload`, MACed for `purpose` (so one kind of token is never
        accepted as another)."""
        mac = self.mac(purpose.encode() + b"\0" + payload)[:16]
        return base64.urlsafe_b64encode(payload + b"." + mac).decode().rstrip("=")

    def open_token(self, purpose: str, token: str) -> bytes | None:
        """The payload of a token `sign_token` made for `purpose`, or None for anything else."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            return None
        payload, mac = raw[:-17], raw[-16:]
        if raw[-17:-16] != b"." or not hmac.compare_digest(self.mac(purpose.encode() + b"\0" + payload)[:16], mac):
            return None
        return payload


def load_master_key(path: Path, create: bool) -> MasterKey:
    """`OPENIMS_MASTER_KEY` wins (several nodes must share one key); otherwise a 0600 file in the data dir."""
    env = os.environ.get("OPENIMS_MASTER_KEY")
    if env:
        return MasterKey(_decode_key(env, "OPENIMS_MASTER_KEY"))
    if path.exists():
        return MasterKey(_decode_key(path.read_text().strip(), str(path)))
    if not create:
        raise ConfigError(f"master key file {path} is missing; the data dir is incomplete")
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(key).decode() + "\n")
    return MasterKey(key)


def _decode_key(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ConfigError(f"{where} does not hold a base64 master key") from exc


def token_hash(token: str) -> str:
    """What the database keeps of a random bearer token handed to a browser (SHA-256, hex), so a copy of
    the database hands out nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False

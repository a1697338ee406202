"""The log's Ed25519 signing keys: created when first needed (the first checkpoint of a data dir), sealed with
the master key like every other secret, rotatable. A retired key stays listed, so old checkpoints still verify."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, insert, select, update

from openims import clock
from openims.integrity import checkpoint
from openims.runtime import Runtime
from openims.store.tables.integrity import log_keys


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    pem: str
    created_ms: int
    retired_ms: int | None

    def load(self) -> Ed25519PublicKey:
        return checkpoint.load_public_pem(self.pem)


def _context(key_id: str) -> str:
    return f"log-key:{key_id}"


def current(rt: Runtime, conn: Connection) -> tuple[str, Ed25519PrivateKey]:
    """The key that signs new checkpoints, created (in `conn`'s write transaction) if there is none yet."""
    row = conn.execute(
        select(log_keys).where(log_keys.c.retired_ms.is_(None)).order_by(log_keys.c.created_ms.desc()).limit(1)
    ).first()
    if row is None:
        return _create(rt, conn)
    raw = bytes.fromhex(rt.master_key.open(row.private_sealed, _context(row.key_id)))
    return row.key_id, Ed25519PrivateKey.from_private_bytes(raw)


def rotate(rt: Runtime) -> str:
    """Retire the current key and create the next; returns the new key's ID."""
    with rt.db.transaction() as conn:
        conn.execute(update(log_keys).where(log_keys.c.retired_ms.is_(None)).values(retired_ms=clock.now_ms()))
        return _create(rt, conn)[0]


def listed(conn: Connection) -> list[PublicKey]:
    """Every key, current and retired, oldest first."""
    rows = conn.execute(select(log_keys).order_by(log_keys.c.created_ms)).all()
    return [PublicKey(r.key_id, r.public_pem, r.created_ms, r.retired_ms) for r in rows]


def _create(rt: Runtime, conn: Connection) -> tuple[str, Ed25519PrivateKey]:
    private = checkpoint.new_key()
    key_id = checkpoint.key_id(private.public_key())
    raw = private.private_bytes_raw().hex()
    conn.execute(
        insert(log_keys).values(
            key_id=key_id,
            public_pem=checkpoint.public_pem(private.public_key()),
            private_sealed=rt.master_key.seal(raw, _context(key_id)),
            created_ms=clock.now_ms(),
        )
    )
    return key_id, private

"""`openims events prove`: an inclusion proof of one event against the newest signed checkpoint, or a
consistency proof that the log only grew between two checkpoints: self-contained documents that
`openims events verify-proof` (or ten lines of any language) checks with nothing but the public key."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from openims.config import ConfigError
from openims.integrity import merkle, proofs
from openims.integrity.sequencer import newest_checkpoint, stored_checkpoint
from openims.runtime import Runtime
from openims.store.schema import events
from openims.store.tables.integrity import log_checkpoints, log_leaves, log_state


def inclusion(rt: Runtime, event_id: str) -> dict[str, Any]:
    with rt.db.read() as conn:
        leaf = conn.execute(select(log_leaves).where(log_leaves.c.event_id == event_id)).first()
        if leaf is None:
            raise ConfigError(
                f"event {event_id} is not in the log: no such event, or it committed less than a second ago"
            )
        newest = newest_checkpoint(conn, leaf.account_id)
        if newest is None or newest.size <= leaf.leaf_index:
            raise ConfigError(f"no signed checkpoint covers event {event_id} yet: try again in a few seconds")
        body = conn.execute(select(events.c.body).where(events.c.event_id == event_id)).scalar()
        if body is None:
            raise ConfigError(f"event {event_id} is in the log but no longer stored (deleted or purged)")
        cut, hashes = _leaf_hashes(conn, leaf.account_id, newest.size)
    path = merkle.inclusion_proof(leaf.leaf_index, hashes, start=cut)
    return proofs.inclusion_document(json.loads(body), leaf.leaf_index, path, stored_checkpoint(newest))


def consistency(rt: Runtime, account_id: str, from_size: int) -> dict[str, Any]:
    with rt.db.read() as conn:
        old = conn.execute(
            select(log_checkpoints).where(
                log_checkpoints.c.account_id == account_id, log_checkpoints.c.size == from_size
            )
        ).first()
        if old is None:
            raise ConfigError(f"account {account_id} has no checkpoint at size {from_size}")
        newest = newest_checkpoint(conn, account_id)
        assert newest is not None  # `old` is one
        cut, hashes = _leaf_hashes(conn, account_id, newest.size)
        if from_size < cut.size:
            raise ConfigError(f"the log before position {cut.size} was purged (retention): prove from there on")
    path = merkle.consistency_proof(from_size, hashes, start=cut)
    return proofs.consistency_document(stored_checkpoint(old), stored_checkpoint(newest), path)


def _leaf_hashes(conn: Connection, account_id: str, size: int) -> tuple[merkle.Frontier, list[bytes]]:
    """The frontier where the stored leaves start (empty, or the retention cut's) and the leaf hashes after it."""
    start = conn.execute(select(log_state.c.start).where(log_state.c.account_id == account_id)).scalar() or 0
    cut = merkle.Frontier()
    if start:
        kept = conn.execute(
            select(log_checkpoints.c.frontier).where(
                log_checkpoints.c.account_id == account_id, log_checkpoints.c.size == start
            )
        ).scalar()
        if kept is None:
            raise ConfigError(f"the checkpoint at the retention cut (position {start}) is missing")
        cut = merkle.Frontier.from_json(json.loads(kept))
    rows = conn.execute(
        select(log_leaves.c.leaf_hash)
        .where(log_leaves.c.account_id == account_id, log_leaves.c.leaf_index >= start, log_leaves.c.leaf_index < size)
        .order_by(log_leaves.c.leaf_index)
    ).scalars()
    return cut, [bytes(h) for h in rows]

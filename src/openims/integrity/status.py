"""What the console shows of the log: an event's position and the checkpoint that covers it, and an account's
newest checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from openims.integrity.sequencer import newest_checkpoint
from openims.runtime import Runtime
from openims.store.tables.integrity import log_checkpoints, log_leaves


@dataclass(frozen=True)
class Position:
    leaf_index: int | None  # None: not appended yet (it is, within a second of its commit)
    covered_by: Any  # the first checkpoint whose tree holds it, or None


def position(rt: Runtime, account_id: str, event_id: str) -> Position:
    with rt.db.read() as conn:
        leaf = conn.execute(
            select(log_leaves.c.leaf_index).where(
                log_leaves.c.event_id == event_id, log_leaves.c.account_id == account_id
            )
        ).scalar()
        if leaf is None:
            return Position(None, None)
        covering = conn.execute(
            select(log_checkpoints)
            .where(log_checkpoints.c.account_id == account_id, log_checkpoints.c.size > leaf)
            .order_by(log_checkpoints.c.size)
            .limit(1)
        ).first()
    return Position(int(leaf), covering)


def newest(rt: Runtime, account_id: str) -> Any:
    """The account's newest signed checkpoint, or None."""
    with rt.db.read() as conn:
        return newest_checkpoint(conn, account_id)

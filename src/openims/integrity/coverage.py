"""Where delivered events stand in the log: trail delivery asks, for each batch, the leaf index and leaf hash of
its events (carried in SLS, syslog and webhook records) and, for a bucket's digest file, a checkpoint covering
them with one inclusion proof for all of them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from openims.integrity import checkpoint, merkle, sequencer
from openims.runtime import Runtime
from openims.store.tables.integrity import log_checkpoints, log_leaves


@dataclass(frozen=True)
class Leaf:
    index: int
    hash: bytes


@dataclass(frozen=True)
class Coverage:
    leaves: dict[str, Leaf]  # by eventId; an event missing here is not in the log (deleted before it entered)
    checkpoint: checkpoint.Checkpoint | None  # covers every leaf above, when asked to sign


def cover(rt: Runtime, account_id: str, event_ids: Iterable[str], sign: bool) -> Coverage:
    """Append what is queued for the account (so these events have their place), sign a checkpoint over them
    if `sign`, and return their leaves."""
    sequencer.cover(rt, account_id, sign)
    wanted = list(event_ids)
    leaves: dict[str, Leaf] = {}
    with rt.db.read() as conn:
        for start in range(0, len(wanted), 500):
            rows = conn.execute(
                select(log_leaves.c.event_id, log_leaves.c.leaf_index, log_leaves.c.leaf_hash).where(
                    log_leaves.c.account_id == account_id, log_leaves.c.event_id.in_(wanted[start : start + 500])
                )
            )
            leaves.update({r.event_id: Leaf(int(r.leaf_index), bytes(r.leaf_hash)) for r in rows})
        covering = None
        if sign and leaves:
            # The first checkpoint covering them all, not the newest: a proof then reads only the leaves between
            # the batch and it, however far the log has grown since (a backlog delivered after an outage).
            covering = conn.execute(
                select(log_checkpoints)
                .where(
                    log_checkpoints.c.account_id == account_id,
                    log_checkpoints.c.size > max(leaf.index for leaf in leaves.values()),
                )
                .order_by(log_checkpoints.c.size)
                .limit(1)
            ).first()
    return Coverage(leaves, sequencer.stored_checkpoint(covering) if covering is not None else None)


def proof(rt: Runtime, account_id: str, indexes: list[int], cp: checkpoint.Checkpoint) -> list[bytes]:
    """`merkle.multi_inclusion_proof` of the leaves at `indexes` against `cp`, reading only the leaves after the
    newest checkpoint at or before the first of them (its stored frontier stands for everything earlier)."""
    first = min(indexes)
    with rt.db.read() as conn:
        base = conn.execute(
            select(log_checkpoints.c.size, log_checkpoints.c.frontier)
            .where(log_checkpoints.c.account_id == account_id, log_checkpoints.c.size <= first)
            .order_by(log_checkpoints.c.size.desc())
            .limit(1)
        ).first()
        start = merkle.Frontier.from_json(json.loads(base.frontier)) if base is not None else merkle.Frontier()
        hashes = [
            bytes(h)
            for h in conn.execute(
                select(log_leaves.c.leaf_hash)
                .where(
                    log_leaves.c.account_id == account_id,
                    log_leaves.c.leaf_index >= start.size,
                    log_leaves.c.leaf_index < cp.size,
                )
                .order_by(log_leaves.c.leaf_index)
            ).scalars()
        ]
    if start.size + len(hashes) != cp.size:
        raise ValueError(f"the log of account {account_id} is missing leaves before position {cp.size}")
    return merkle.multi_inclusion_proof(indexes, hashes, start=start)

"""Purging events past the retention period without breaking verification. Events not in the log are simply
deleted (with their queue rows). Logged events go up to a cut: the newest signed checkpoint whose last event is
past retention. The cut checkpoint stays, with its Merkle frontier, so the log goes on appending and
`events verify` starts there (and says so); the leaves, events and checkpoints before it go."""

from __future__ import annotations

import logging

from sqlalchemy import Connection, and_, delete, select, update

from openims import clock
from openims.integrity.sequencer import locked_state
from openims.runtime import Runtime
from openims.store.schema import events
from openims.store.tables.integrity import log_checkpoints, log_leaves, log_queue, log_state

log = logging.getLogger("openims.maintenance")
# Events deleted per transaction: each batch holds SQLite's write lock, which every audited call needs.
BATCH = 2_000


def purge_events(rt: Runtime) -> int:
    """Delete events older than the retention period, in bounded batches; returns how many."""
    cutoff = clock.now_ms() - rt.settings.event_retention_days * clock.DAY_MS
    with rt.db.read() as conn:
        accounts = list(
            conn.execute(select(events.c.account_id).where(events.c.event_ms < cutoff).distinct()).scalars()
        )
    removed = sum(_purge_account(rt, account_id, cutoff) for account_id in accounts)
    if removed:
        log.info("purged %d events older than %d days", removed, rt.settings.event_retention_days)
    return removed


def _purge_account(rt: Runtime, account_id: str, cutoff: int) -> int:
    removed = 0
    while True:
        with rt.db.transaction() as conn:
            # The appender's lock: an event is either appended before this deletes it, or deleted unlogged.
            state = locked_state(conn, account_id)
            cut = _cut(conn, account_id, cutoff, state.start)
            if cut > state.start:
                conn.execute(update(log_state).where(log_state.c.account_id == account_id).values(start=cut))
                conn.execute(
                    delete(log_checkpoints).where(
                        log_checkpoints.c.account_id == account_id, log_checkpoints.c.size < cut
                    )
                )
            done = _delete_batch(conn, account_id, cutoff, max(cut, state.start))
        removed += done
        if done < BATCH:
            return removed


def _cut(conn: Connection, account_id: str, cutoff: int, start: int) -> int:
    """The size of the newest checkpoint whose last leaf's event is past retention (or `start`)."""
    last_leaf = and_(
        log_leaves.c.account_id == log_checkpoints.c.account_id, log_leaves.c.leaf_index == log_checkpoints.c.size - 1
    )
    found = conn.execute(
        select(log_checkpoints.c.size)
        .join(log_leaves, last_leaf)
        .join(events, events.c.event_id == log_leaves.c.event_id)
        .where(log_checkpoints.c.account_id == account_id, log_checkpoints.c.size > start, events.c.event_ms < cutoff)
        .order_by(log_checkpoints.c.size.desc())
        .limit(1)
    ).scalar()
    return int(found) if found is not None else start


def _delete_batch(conn: Connection, account_id: str, cutoff: int, start: int) -> int:
    """Up to BATCH of the account's purgeable events: logged before the cut, or old and never logged."""
    below_cut = list(
        conn.execute(
            select(log_leaves.c.leaf_index, log_leaves.c.event_id)
            .where(log_leaves.c.account_id == account_id, log_leaves.c.leaf_index < start)
            .order_by(log_leaves.c.leaf_index)
            .limit(BATCH)
        )
    )
    if below_cut:
        ids = [r.event_id for r in below_cut]
        conn.execute(delete(events).where(events.c.event_id.in_(ids)))
        conn.execute(
            delete(log_leaves).where(
                log_leaves.c.account_id == account_id, log_leaves.c.leaf_index <= below_cut[-1].leaf_index
            )
        )
        return len(ids)
    unlogged = list(
        conn.execute(
            select(events.c.seq, events.c.event_id)
            .select_from(events.outerjoin(log_leaves, log_leaves.c.event_id == events.c.event_id))
            .where(events.c.account_id == account_id, events.c.event_ms < cutoff, log_leaves.c.event_id.is_(None))
            .order_by(events.c.seq)
            .limit(BATCH)
        )
    )
    if unlogged:
        conn.execute(delete(log_queue).where(log_queue.c.event_id.in_([r.event_id for r in unlogged])))
        conn.execute(delete(events).where(events.c.seq.in_([r.seq for r in unlogged])))
    return len(unlogged)

"""Appends committed events to each account's log, in one order every verifier agrees on, and signs checkpoints.

How order is assigned: an event is queued (log_queue) in the transaction that records it, and this sequencer
appends queued events a moment after they commit, as Trillian does, in queue order. Writers never wait for the
log or for each other, and a call's answer never waits for a checkpoint. One sequencer at a time works on an
account (its log_state row is locked, so any number of server processes may run one); an event that committed is
appended exactly once (its queue row is deleted in the transaction that appends it), and one that rolled back
was never queued. The leaf index is the event's place in the log, whatever order transactions committed in.

A checkpoint (signed tree head) is signed when the tree grew and the last checkpoint is about to be
`checkpoint_seconds` old, so every event is covered by one within that time (the sequencer runs every second).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from starlette.concurrency import run_in_threadpool

from openims import clock, jsontext
from openims.integrity import checkpoint, signing_keys
from openims.integrity.canonical import canonical_event
from openims.integrity.merkle import Frontier, leaf_hash
from openims.runtime import Runtime
from openims.store.schema import events
from openims.store.tables.integrity import log_checkpoints, log_leaves, log_queue, log_state

log = logging.getLogger("openims.integrity")
# Small batches keep each write transaction short (a few ms); a round appends batch after batch for up to
# ROUND_MS, so the log keeps up with thousands of events a second.
BATCH = 500
ROUND_MS = 800
INTERVAL_S = 1.0


def advance(rt: Runtime) -> int:
    """Append what is queued and sign the checkpoints that are due, for every account; returns leaves added."""
    now = clock.now_ms()
    with rt.db.read() as conn:
        queued = set(conn.execute(select(log_queue.c.account_id).distinct()).scalars())
        unsigned = set(conn.execute(_UNSIGNED).scalars())
    appended = 0
    for account_id in sorted(queued | unsigned):
        # Batch after batch while full ones come, within the round's time.
        while (added := _advance_account(rt, account_id, now)) >= BATCH and clock.now_ms() - now < ROUND_MS:
            appended += added
        appended += added
    return appended


# Accounts whose tree grew past their newest checkpoint.
_UNSIGNED = select(log_state.c.account_id).where(
    log_state.c.size
    > func.coalesce(
        select(func.max(log_checkpoints.c.size))
        .where(log_checkpoints.c.account_id == log_state.c.account_id)
        .scalar_subquery(),
        0,
    )
)


def cover(rt: Runtime, account_id: str, sign: bool) -> None:
    """Append everything queued for the account now and, with `sign`, sign a checkpoint covering it at once
    (if the tree grew since the last one): trail delivery calls this so that each batch's records carry their
    leaf index and each digest file a checkpoint that covers its events (docs/integrity.md, "Trail digests")."""
    while _advance_account(rt, account_id, clock.now_ms(), force=sign) >= BATCH:
        pass


def _advance_account(rt: Runtime, account_id: str, now: int, force: bool = False) -> int:
    """Append one batch of the account's queue. The events are read and hashed before the write transaction,
    which then only checks that no other sequencer appended meanwhile (else it reads again) and writes the
    leaves: on SQLite every API call waits while a write transaction is open, so it must stay short."""
    while True:
        with rt.db.read() as conn:
            start = conn.execute(select(log_state.c.size, log_state.c.frontier).where(_ACCOUNT == account_id)).first()
            rows = conn.execute(_queued(account_id)).all()
        frontier = Frontier.from_json(json.loads(start.frontier)) if start is not None else Frontier()
        leaves: list[dict[str, Any]] = []
        for row in rows:
            if row.body is None:
                # Queued and committed, then gone before it was appended: only a direct deletion does that.
                log.error("event %s of account %s was deleted before it entered the log", row.event_id, account_id)
                continue
            digest = leaf_hash(canonical_event(jsontext.loads(row.body)))
            leaves.append(
                {"account_id": account_id, "leaf_index": frontier.size, "event_id": row.event_id, "leaf_hash": digest}
            )
            frontier.append(digest)
        with rt.db.transaction() as conn:
            if locked_state(conn, account_id).size != (start.size if start is not None else 0):
                continue  # another sequencer appended since the read: this batch may overlap it
            if rows:
                if leaves:
                    conn.execute(insert(log_leaves), leaves)
                conn.execute(delete(log_queue).where(log_queue.c.id.in_([r.id for r in rows])))
                conn.execute(
                    update(log_state)
                    .where(_ACCOUNT == account_id)
                    .values(size=frontier.size, frontier=frontier_json(frontier))
                )
            _sign_if_due(rt, conn, account_id, frontier, now, force)
        return len(leaves)


_ACCOUNT = log_state.c.account_id


def _queued(account_id: str) -> Any:
    return (
        select(log_queue.c.id, log_queue.c.event_id, events.c.body)
        .select_from(log_queue.outerjoin(events, events.c.event_id == log_queue.c.event_id))
        .where(log_queue.c.account_id == account_id)
        .order_by(log_queue.c.id)
        .limit(BATCH)
    )


def locked_state(conn: Connection, account_id: str) -> Any:
    """The account's log_state row, created empty if missing, locked until the transaction ends."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    empty = dialect.insert(log_state).values(account_id=account_id, size=0, frontier=frontier_json(Frontier()))
    conn.execute(empty.on_conflict_do_nothing())
    return conn.execute(select(log_state).where(log_state.c.account_id == account_id).with_for_update()).one()


def newest_checkpoint(conn: Connection, account_id: str) -> Any:
    """The account's newest log_checkpoints row, or None."""
    return conn.execute(
        select(log_checkpoints)
        .where(log_checkpoints.c.account_id == account_id)
        .order_by(log_checkpoints.c.size.desc())
        .limit(1)
    ).first()


def frontier_json(frontier: Frontier) -> str:
    """A frontier as log_state and log_checkpoints store it."""
    return json.dumps(frontier.to_json(), separators=(",", ":"))


def _sign_if_due(
    rt: Runtime, conn: Connection, account_id: str, frontier: Frontier, now: int, force: bool = False
) -> None:
    last = newest_checkpoint(conn, account_id)
    if frontier.size == 0 or (last is not None and last.size >= frontier.size):
        return
    # Signed a second early, so that with the sequencer's own second the wait stays within checkpoint_seconds.
    spacing_ms = max(0.0, rt.settings.checkpoint_seconds - INTERVAL_S) * 1000
    if not force and last is not None and now - last.time_ms < spacing_ms:
        return
    key_id, private = signing_keys.current(rt, conn)
    previous = checkpoint.digest(stored_checkpoint(last)) if last is not None else bytes(32)
    signed = checkpoint.sign(
        checkpoint.Checkpoint(account_id, frontier.size, frontier.root(), now, key_id, previous, b""), private
    )
    conn.execute(
        insert(log_checkpoints).values(
            account_id=account_id,
            size=signed.size,
            root=signed.root,
            time_ms=signed.time_ms,
            key_id=signed.key_id,
            previous=signed.previous,
            signature=signed.signature,
            frontier=frontier_json(frontier),
        )
    )


def stored_checkpoint(row: Any) -> checkpoint.Checkpoint:
    """A log_checkpoints row as a Checkpoint."""
    return checkpoint.Checkpoint(
        row.account_id, row.size, bytes(row.root), row.time_ms, row.key_id, bytes(row.previous), bytes(row.signature)
    )


async def sequencer_job(rt: Runtime) -> None:
    """The `openims serve` background job: advance the log every INTERVAL_S."""
    while True:
        try:
            await run_in_threadpool(advance, rt)
        except Exception:  # keep serving; the next round retries, and nothing is lost: the queue waits
            log.exception("the tamper-evident log could not advance")
        await asyncio.sleep(INTERVAL_S)

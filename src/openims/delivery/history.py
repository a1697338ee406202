"""Historic delivery (CreateDeliveryHistoryJob): a trail receives, once, the account's stored events from before
its live delivery began.

Where the two meet: a trail's `live_from_ms` is set by its first StartLogging (or by its first history job, for a
trail never started). The outbox queues only events made from then on (`outbox.wants`), and the job delivers only
events made before it, from the start of the retention window, that match the trail's EventRW. So no event
reaches the trail twice, whatever the order in which the two run.

A job runs in the deliverer (`openims serve`, `openims deliver`), off the request path. It claims the job with a
lease (at most one process works on it; another takes over once the lease lapses), and works in chunks: it fixes
a chunk's last event in the job's row before sending it, so a retry after a failure, a crash or a restart sends
exactly the same events (the same object key for OSS/S3 and the directory sink, the same batch ID for SLS and
webhooks), then moves the cursor past the chunk in the same transaction that records its success. A chunk that
keeps failing (MAX_ATTEMPTS tries, with the deliverer's backoff) fails the job (JobStatus 3); creating the job
again for the trail resumes it from its cursor.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, select, tuple_, update

from openims import clock
from openims.delivery import outbox
from openims.delivery.batch import Batch
from openims.delivery.targets import Target
from openims.store.db import Database
from openims.store.schema import events
from openims.store.tables.key_activity import delivery_history_jobs as jobs
from openims.store.tables.trails import trails

log = logging.getLogger("openims.delivery.history")

# ActionTrail's JobStatus values.
INITIALIZING, DELIVERING, COMPLETE, FAILED = 0, 1, 2, 3
LEASE_MS = 120_000  # longer than a chunk's delivery to every target takes, sink timeouts included
MAX_ATTEMPTS = 8  # per chunk, with exponential backoff capped as the deliverer's: minutes, not hours

Send = Callable[[list[Target], Batch, frozenset[str]], dict[str, str | None]]


@dataclass(frozen=True)
class Chunk:
    end_ms: int
    end_seq: int


def _scope(job: Row[Any]) -> list[Any]:
    """The job's events: the account's, from the window's start to the trail's live delivery, of its EventRW."""
    where: list[Any] = [
        events.c.account_id == job.account_id,
        events.c.event_ms >= job.window_start_ms,
        events.c.event_ms < job.window_end_ms,
    ]
    if job.event_rw != "All":
        where.append(events.c.event_rw == job.event_rw)
    return where


def _after(ms: int, seq: int) -> Any:
    return tuple_(events.c.event_ms, events.c.seq) > tuple_(ms, seq)


def next_chunk(conn: Connection, job: Row[Any]) -> Chunk | None:
    """The last event of the next chunk (at most outbox.MAX_BATCH events past the cursor), or None when done."""
    rows = conn.execute(
        select(events.c.event_ms, events.c.seq)
        .where(*_scope(job), _after(job.cursor_ms, job.cursor_seq))
        .order_by(events.c.event_ms, events.c.seq)
        .limit(outbox.MAX_BATCH)
    ).all()
    return Chunk(rows[-1].event_ms, rows[-1].seq) if rows else None


def chunk_events(conn: Connection, job: Row[Any]) -> list[dict[str, Any]]:
    """The events of the job's fixed chunk, oldest first (the same on every retry, less any purged since)."""
    upto = tuple_(events.c.event_ms, events.c.seq) <= tuple_(job.chunk_end_ms, job.chunk_end_seq)
    bodies = conn.execute(
        select(events.c.body)
        .where(*_scope(job), _after(job.cursor_ms, job.cursor_seq), upto)
        .order_by(events.c.event_ms, events.c.seq)
    ).scalars()
    return [json.loads(b) for b in bodies]


def _claimable(now: int) -> tuple[Any, ...]:
    return (
        jobs.c.status < COMPLETE,
        jobs.c.deleted_ms.is_(None),
        jobs.c.next_attempt_ms <= now,
        jobs.c.lease_until_ms < now,
    )


def claim(db: Database, owner: str, now: int) -> Row[Any] | None:
    """Lease the job that has waited longest, if one is due and unleased; it is then delivering."""
    if not db.finds(select(jobs.c.id).where(*_claimable(now))):
        return None
    with db.transaction() as conn:
        found = conn.execute(
            select(jobs.c.id)
            .where(*_claimable(now))
            .order_by(jobs.c.next_attempt_ms)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).scalar()
        if found is None:
            return None
        taken = conn.execute(
            update(jobs)
            .where(jobs.c.id == found, *_claimable(now))
            .values(lease_owner=owner, lease_until_ms=now + LEASE_MS, status=DELIVERING, updated_ms=now)
        ).rowcount
        if not taken:
            return None
        conn.execute(update(jobs).where(jobs.c.id == found, jobs.c.started_ms.is_(None)).values(started_ms=now))
        return conn.execute(select(jobs).where(jobs.c.id == found)).first()


def _mine(job: Row[Any], owner: str) -> tuple[Any, ...]:
    # Not conditional on the job being undeleted: a chunk delivered while its job was deleted is still recorded,
    # so a resumed job does not send it again.
    return (jobs.c.id == job.id, jobs.c.lease_owner == owner)


def step(
    db: Database,
    owner: str,
    job: Row[Any],
    targets_for: Callable[[Any], list[Target]],
    send: Send,
    region: str,
    cap_ms: int,
) -> None:
    """Deliver the claimed job's next chunk (fixing it first), and record the outcome; ends the job when no
    events are left, or when its trail is gone."""
    now = clock.now_ms()
    with db.transaction() as conn:
        trail = conn.execute(select(trails).where(trails.c.id == job.trail_id)).first() if job.trail_id else None
        if trail is None:
            _end(conn, job, owner, FAILED, "The trail was deleted.", now)
            return
        if job.chunk_end_ms is None:
            chunk = next_chunk(conn, job)
            if chunk is None:
                _end(conn, job, owner, COMPLETE, None, now)
                return
            conn.execute(
                update(jobs)
                .where(*_mine(job, owner))
                .values(chunk_end_ms=chunk.end_ms, chunk_end_seq=chunk.end_seq, chunk_done_targets="")
            )
            job = conn.execute(select(jobs).where(jobs.c.id == job.id)).one()
        found = chunk_events(conn, job)
    done = frozenset(t for t in job.chunk_done_targets.split(",") if t)
    targets = targets_for(trail)
    errors: dict[str, str | None] = {}
    if found:
        # Named for the job and the chunk's last event: fixed before the first attempt, so every retry matches.
        batch_id = f"{trail.name}-history{job.id}-{job.chunk_end_seq}"
        batch = Batch(trail.name, job.account_id, region, batch_id, found)
        errors = send(targets, batch, done)
    delivered = done | {kind for kind, error in errors.items() if error is None}
    failures = [f"{kind}: {error}" for kind, error in errors.items() if error is not None]
    now = clock.now_ms()
    with db.transaction() as conn:
        if not failures:
            conn.execute(
                update(jobs)
                .where(*_mine(job, owner))
                .values(
                    cursor_ms=job.chunk_end_ms,
                    cursor_seq=job.chunk_end_seq,
                    chunk_end_ms=None,
                    chunk_end_seq=None,
                    chunk_done_targets="",
                    delivered=jobs.c.delivered + len(found),
                    attempts=0,
                    last_error=None,
                    next_attempt_ms=0,
                    lease_until_ms=0,
                    updated_ms=now,
                )
            )
            return
        attempts = job.attempts + 1
        error = "; ".join(failures)[:4000]
        log.warning("historic delivery job %s for trail %s: %s", job.id, trail.name, error)
        if attempts >= MAX_ATTEMPTS:
            _end(conn, job, owner, FAILED, error, now, chunk_done_targets=",".join(sorted(delivered)))
            return
        conn.execute(
            update(jobs)
            .where(*_mine(job, owner))
            .values(
                attempts=attempts,
                next_attempt_ms=now + outbox.backoff_ms(attempts, cap_ms),
                chunk_done_targets=",".join(sorted(delivered)),
                last_error=error,
                lease_until_ms=0,
                updated_ms=now,
            )
        )


def _end(conn: Connection, job: Row[Any], owner: str, status: int, error: str | None, now: int, **more: Any) -> None:
    conn.execute(
        update(jobs)
        .where(*_mine(job, owner))
        .values(status=status, last_error=error, finished_ms=now, lease_until_ms=0, updated_ms=now, **more)
    )

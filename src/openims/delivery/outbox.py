"""The trail outbox: events queued for logging trails in the event's own transaction, and the batches that
deliverers form from them, claim, and finish.

Queueing is an `IN_TX_HOOKS` hook, so an event and its outbox rows commit or roll back together. To stay
cheap it keeps, per account, the trails and their EventRW filters in a process-local cache, checked on every
event against the account's row in `trail_generations` (one primary-key read). Every trail change writes a
new random token there in its own transaction, so each process sees another process's change with the first
event after that change commits: no TTL, and no window in which a started trail misses events.

Claims are safe with several deliverers at once: PostgreSQL uses `SELECT ... FOR UPDATE SKIP LOCKED`; SQLite
runs every claim inside `BEGIN IMMEDIATE` (its single writer), re-checking the lease there.
"""

from __future__ import annotations

import logging
import random
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from openims import clock
from openims.runtime import Runtime
from openims.store.db import Database
from openims.store.prepared import Prepared
from openims.store.schema import events
from openims.store.tables.insights import insight_selectors
from openims.store.tables.trails import trail_batches, trail_generations, trail_outbox, trail_target_status, trails
from openims.store.upsert import dialect_insert

log = logging.getLogger("openims.delivery")

MAX_BATCH = 500  # events per batch: well under SLS PutLogs' 4096 logs / 5 MB per request
LEASE_MS = 30_000  # a claimed batch is another deliverer's to take when its lease lapses (renewed meanwhile)
BACKOFF_BASE_MS = 1_000
KEEP_DELIVERED_MS = 24 * 3600 * 1000  # delivered batch rows stay a day, for inspection, then are purged


# --- queueing, inside the event's transaction ----------------------------------------------------------------


@dataclass(frozen=True)
class TrailFilter:
    trail_id: str
    name: str
    event_rw: str
    logging: bool
    # Events before this are the historic delivery job's (openims.delivery.history), never the outbox's.
    live_from_ms: int | None = None
    # The insight types it delivers (PutInsightSelectors); insight events go only where selected.
    insights: frozenset[str] = frozenset()


_cache: dict[str, tuple[int, tuple[TrailFilter, ...]]] = {}


def new_generation(conn: Connection, account_id: str) -> None:
    """Record that the account's trails changed (call in the changing transaction)."""
    token = secrets.randbits(62)
    ins = dialect_insert(conn, trail_generations).values(account_id=account_id, generation=token)
    conn.execute(ins.on_conflict_do_update(index_elements=[trail_generations.c.account_id], set_={"generation": token}))


_GENERATION = Prepared(
    select(trail_generations.c.generation).where(trail_generations.c.account_id == bindparam("account_id"))
)


def trails_of(conn: Connection, account_id: str) -> tuple[TrailFilter, ...]:
    """The account's trails with their filters, from the cache when its generation is current."""
    generation = _GENERATION.scalar(conn, {"account_id": account_id})
    if generation is None:
        return ()
    cached = _cache.get(account_id)
    if cached is not None and cached[0] == generation:
        return cached[1]
    rows = conn.execute(
        select(trails.c.id, trails.c.name, trails.c.event_rw, trails.c.is_logging, trails.c.live_from_ms).where(
            trails.c.account_id == account_id
        )
    ).all()
    selected: dict[str, set[str]] = {}
    if rows:
        for trail_id, insight_type in conn.execute(
            select(insight_selectors.c.trail_id, insight_selectors.c.insight_type).where(
                insight_selectors.c.trail_id.in_([r.id for r in rows])
            )
        ):
            selected.setdefault(trail_id, set()).add(insight_type)
    found = tuple(
        TrailFilter(r.id, r.name, r.event_rw, bool(r.is_logging), r.live_from_ms, frozenset(selected.get(r.id, ())))
        for r in rows
    )
    _cache[account_id] = (generation, found)
    return found


def wants(trail: TrailFilter, ev: dict[str, Any], event_ms: int) -> bool:
    """Whether `trail` delivers `ev` (made at `event_ms`): its EventRW matches and it is logging, or `ev` is the
    call that stopped it (so that stopping a trail is itself on the record the trail delivers). An event from
    before the trail's live delivery began is left to its historic delivery job, even when it is recorded
    after StartLogging committed, so that it can never be delivered twice. An insight event goes to the logging
    trails whose insight selectors name its type, whatever their EventRW."""
    details = ev.get("insightDetails")
    if isinstance(details, dict):
        return trail.logging and details.get("insightType") in trail.insights
    if trail.event_rw != "All" and ev.get("eventRW") != trail.event_rw:
        return False
    if trail.live_from_ms is not None and event_ms < trail.live_from_ms:
        return False
    if trail.logging:
        return True
    return (
        ev.get("eventName") == "StopLogging"
        and ev.get("serviceName") == "Actiontrail"
        and "errorCode" not in ev
        and ev.get("resourceName") == trail.name
    )


def queue_event(conn: Connection, ev: dict[str, Any], event_ms: int) -> None:
    """An outbox row per trail that wants the event just inserted (called by audit.event.record)."""
    account_id = ev.get("recipientAccountId")
    if not account_id:
        return
    now = clock.now_ms()
    rows = [
        {"trail_id": t.trail_id, "event_id": ev["eventId"], "created_ms": now}
        for t in trails_of(conn, account_id)
        if wants(t, ev, event_ms)
    ]
    if rows:
        conn.execute(insert(trail_outbox), rows)


# --- batches ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    batch_id: str
    trail_id: str
    attempts: int
    done_targets: frozenset[str]


def due_trails(conn: Connection, older_than_ms: int) -> list[str]:
    """Trails whose oldest queued, unbatched event was queued before `older_than_ms`."""
    query = (
        select(trail_outbox.c.trail_id)
        .where(trail_outbox.c.batch_id.is_(None))
        .group_by(trail_outbox.c.trail_id)
        .having(func.min(trail_outbox.c.created_ms) <= older_than_ms)
    )
    return list(conn.execute(query).scalars())


def form_batch(db: Database, trail_id: str, now: int) -> int:
    """Fix the membership of the trail's next batch (its oldest queued events); returns how many it holds."""
    with db.transaction() as conn:
        ids = list(
            conn.execute(
                select(trail_outbox.c.id)
                .where(trail_outbox.c.trail_id == trail_id, trail_outbox.c.batch_id.is_(None))
                .order_by(trail_outbox.c.id)
                .limit(MAX_BATCH)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if not ids:
            return 0
        name = conn.execute(select(trails.c.name).where(trails.c.id == trail_id)).scalar()
        if name is None:  # deleted meanwhile; the cascade takes its rows
            return 0
        batch_id = f"{name}-{ids[0]}-{ids[-1]}"
        conn.execute(
            insert(trail_batches).values(
                id=batch_id, trail_id=trail_id, event_count=len(ids), created_ms=now, next_attempt_ms=now
            )
        )
        conn.execute(update(trail_outbox).where(trail_outbox.c.id.in_(ids)).values(batch_id=batch_id))
    return len(ids)


def _claimable(now: int) -> Any:
    return (
        trail_batches.c.delivered_ms.is_(None),
        trail_batches.c.next_attempt_ms <= now,
        trail_batches.c.lease_until_ms < now,
    )


def has_claimable(conn: Connection, now: int) -> bool:
    return conn.execute(select(trail_batches.c.id).where(*_claimable(now)).limit(1)).first() is not None


def claim(db: Database, owner: str, now: int) -> Claim | None:
    """Lease the batch that has waited longest, if any is due and unleased."""
    if not db.finds(select(trail_batches.c.id).where(*_claimable(now))):
        return None
    with db.transaction() as conn:
        row = conn.execute(
            select(trail_batches.c.id, trail_batches.c.trail_id, trail_batches.c.attempts, trail_batches.c.done_targets)
            .where(*_claimable(now))
            .order_by(trail_batches.c.next_attempt_ms)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return None
        taken = conn.execute(
            update(trail_batches)
            .where(trail_batches.c.id == row.id, *_claimable(now))
            .values(lease_owner=owner, lease_until_ms=now + LEASE_MS)
        ).rowcount
        if not taken:
            return None
    return Claim(row.id, row.trail_id, row.attempts, frozenset(t for t in row.done_targets.split(",") if t))


def renew(db: Database, owner: str, batch_ids: list[str], now: int) -> None:
    """Extend the leases this deliverer holds while it is still working on them."""
    if not batch_ids:
        return
    with db.transaction() as conn:
        conn.execute(
            update(trail_batches)
            .where(
                trail_batches.c.id.in_(batch_ids),
                trail_batches.c.lease_owner == owner,
                trail_batches.c.delivered_ms.is_(None),
            )
            .values(lease_until_ms=now + LEASE_MS)
        )


def batch_events(conn: Connection, batch_id: str) -> list[str]:
    """The JSON bodies of the batch's events, in queueing order (the same on every retry)."""
    query = (
        select(events.c.body)
        .select_from(trail_outbox.join(events, events.c.event_id == trail_outbox.c.event_id))
        .where(trail_outbox.c.batch_id == batch_id)
        .order_by(trail_outbox.c.id)
    )
    return list(conn.execute(query).scalars())


def backoff_ms(attempts: int, cap_ms: int) -> int:
    """Exponential from 1 s, capped, with jitter so that many failed batches do not retry in lockstep."""
    delay = min(cap_ms, BACKOFF_BASE_MS * 2 ** min(attempts - 1, 30))
    return int(delay * random.uniform(0.8, 1.0))


def finish(
    db: Database,
    claimed: Claim,
    owner: str,
    all_targets: list[str],
    errors: dict[str, str | None],
    now: int,
    cap_ms: int,
) -> bool:
    """Record one delivery attempt: per-target status, and the batch delivered or scheduled for a retry.
    Returns whether the batch is now delivered to every target."""
    done = set(claimed.done_targets) | {kind for kind, error in errors.items() if error is None}
    complete = set(all_targets) <= done
    failures = [f"{kind}: {error}" for kind, error in errors.items() if error is not None]
    with db.transaction() as conn:
        if conn.execute(select(trails.c.id).where(trails.c.id == claimed.trail_id)).first() is None:
            return complete  # the trail was deleted while its batch was in flight; the cascade removed the batch
        for kind, error in errors.items():
            _record_status(conn, claimed.trail_id, kind, error, now)
        mine = (
            trail_batches.c.id == claimed.batch_id,
            trail_batches.c.lease_owner == owner,
            trail_batches.c.delivered_ms.is_(None),
        )
        if complete:
            if conn.execute(
                update(trail_batches)
                .where(*mine)
                .values(delivered_ms=now, done_targets=",".join(sorted(done)), lease_until_ms=0, last_error=None)
            ).rowcount:
                conn.execute(delete(trail_outbox).where(trail_outbox.c.batch_id == claimed.batch_id))
        else:
            attempts = claimed.attempts + 1
            conn.execute(
                update(trail_batches)
                .where(*mine)
                .values(
                    attempts=attempts,
                    next_attempt_ms=now + backoff_ms(attempts, cap_ms),
                    lease_until_ms=0,
                    done_targets=",".join(sorted(done)),
                    last_error="; ".join(failures)[:4000],
                )
            )
    return complete


def _record_status(conn: Connection, trail_id: str, kind: str, error: str | None, now: int) -> None:
    values: dict[str, Any] = {"last_attempt_ms": now, "ok": error is None}
    if error is None:
        values["last_success_ms"] = now
    else:
        values.update(last_error=error[:4000], last_error_ms=now)
    ins = dialect_insert(conn, trail_target_status).values(trail_id=trail_id, target=kind, **values)
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=[trail_target_status.c.trail_id, trail_target_status.c.target],
            set_=values,
            # Several deliverers may finish batches of one trail out of order: keep the newest attempt.
            where=trail_target_status.c.last_attempt_ms <= now,
        )
    )


def has_undelivered(conn: Connection) -> bool:
    """Whether any queued event still waits for delivery (to any trail)."""
    return conn.execute(select(trail_outbox.c.id).limit(1)).first() is not None


def pending_count(conn: Connection, trail_id: str) -> int:
    """Events queued for the trail and not yet delivered to all its targets."""
    return conn.execute(
        select(func.count()).select_from(trail_outbox).where(trail_outbox.c.trail_id == trail_id)
    ).scalar_one()


# --- housekeeping ------------------------------------------------------------------------------------------------


def purge_delivered(rt: Runtime) -> int:
    """Delete batch rows delivered more than a day ago, in bounded chunks."""
    cutoff = clock.now_ms() - KEEP_DELIVERED_MS
    removed = 0
    while True:
        with rt.db.transaction() as conn:
            ids = list(
                conn.execute(
                    select(trail_batches.c.id)
                    .where(trail_batches.c.delivered_ms.is_not(None), trail_batches.c.delivered_ms < cutoff)
                    .limit(5000)
                ).scalars()
            )
            if ids:
                conn.execute(delete(trail_batches).where(trail_batches.c.id.in_(ids)))
        removed += len(ids)
        if len(ids) < 5000:
            return removed

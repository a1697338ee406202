"""The queued alerts: claimed one at a time with a lease, so that any number of deliverers (the `openims serve`
processes sharing a database) deliver each alert once between them, and finished with its outcome.

Claims are safe with several deliverers: PostgreSQL uses `SELECT ... FOR UPDATE SKIP LOCKED`; SQLite runs each
claim in its single writer's transaction, re-checking the lease there. A lease outlives the slowest possible
attempt (every destination's timeout added up), so it needs no renewal; a deliverer that dies mid-attempt
leaves its alert to be claimed again when the lease lapses, under the same alert ID.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update

from openims import clock
from openims.delivery.outbox import backoff_ms
from openims.runtime import Runtime
from openims.store.db import Database
from openims.store.tables.alerts import alerts

LEASE_MS = 60_000
KEEP_FINISHED_MS = 90 * 24 * 3600 * 1000  # DescribeUserAlertCount looks back up to 90 days


@dataclass(frozen=True)
class Claim:
    alert_id: str
    rule_id: str | None
    attempts: int
    done: frozenset[str]
    body: dict[str, Any]


def _claimable(now: int) -> Any:
    return (alerts.c.finished_ms.is_(None), alerts.c.next_attempt_ms <= now, alerts.c.lease_until_ms < now)


def has_claimable(db: Database, now: int) -> bool:
    with db.read() as conn:
        return conn.execute(select(alerts.c.id).where(*_claimable(now)).limit(1)).first() is not None


def claim(db: Database, owner: str, now: int) -> Claim | None:
    """Lease the alert that has waited longest, if any is due and unleased."""
    with db.transaction() as conn:
        row = conn.execute(
            select(alerts.c.id, alerts.c.rule_id, alerts.c.attempts, alerts.c.done_targets, alerts.c.body)
            .where(*_claimable(now))
            .order_by(alerts.c.next_attempt_ms)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return None
        taken = conn.execute(
            update(alerts)
            .where(alerts.c.id == row.id, *_claimable(now))
            .values(lease_owner=owner, lease_until_ms=now + LEASE_MS)
        ).rowcount
        if not taken:
            return None
    done = frozenset(t for t in row.done_targets.split(",") if t)
    return Claim(row.id, row.rule_id, row.attempts, done, json.loads(row.body))


def finish(
    db: Database, claimed: Claim, owner: str, kinds: list[str], errors: dict[str, str | None], now: int, cap_ms: int
) -> bool:
    """Record one attempt: the destinations that took the alert, and the alert finished or due again after a
    backoff. Returns whether every destination has it."""
    done = set(claimed.done) | {kind for kind, error in errors.items() if error is None}
    complete = set(kinds) <= done
    failures = "; ".join(f"{kind}: {error}" for kind, error in errors.items() if error is not None)
    attempts = claimed.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts,
        "done_targets": ",".join(sorted(done)),
        "last_attempt_ms": now,
        "last_error": failures[:4000] or None,
        "lease_until_ms": 0,
    }
    if complete:
        values["finished_ms"] = now
    else:
        values["next_attempt_ms"] = now + backoff_ms(attempts, cap_ms)
    with db.transaction() as conn:
        conn.execute(
            update(alerts)
            .where(alerts.c.id == claimed.alert_id, alerts.c.lease_owner == owner, alerts.c.finished_ms.is_(None))
            .values(**values)
        )
    return complete


def abandon(db: Database, claimed: Claim, owner: str, why: str, now: int) -> None:
    """Finish an alert that can no longer be delivered (its rule was deleted), saying why."""
    with db.transaction() as conn:
        conn.execute(
            update(alerts)
            .where(alerts.c.id == claimed.alert_id, alerts.c.lease_owner == owner, alerts.c.finished_ms.is_(None))
            .values(finished_ms=now, last_error=why, lease_until_ms=0)
        )


def purge_finished(rt: Runtime) -> int:
    """Delete alerts finished more than 90 days ago, in bounded chunks."""
    cutoff = clock.now_ms() - KEEP_FINISHED_MS
    removed = 0
    while True:
        with rt.db.transaction() as conn:
            ids = list(
                conn.execute(
                    select(alerts.c.id)
                    .where(alerts.c.finished_ms.is_not(None), alerts.c.finished_ms < cutoff)
                    .limit(5000)
                ).scalars()
            )
            if ids:
                conn.execute(delete(alerts).where(alerts.c.id.in_(ids)))
        removed += len(ids)
        if len(ids) < 5000:
            return removed

"""The queued alerts: claimed in small batches with a lease, so that any number of deliverers (the `openims serve`
processes sharing a database) deliver each alert once between them, and finished with its outcome.

Claims are safe with several deliverers: PostgreSQL uses `SELECT ... FOR UPDATE SKIP LOCKED`; SQLite runs each
claim in its single writer's transaction, re-checking the lease there. A lease outlives the slowest possible
attempt (every destination's timeout added up), and a deliverer starts no attempt on a claimed alert that could
outlast the lease (it hands the rest back), so leases need no renewal; a deliverer that dies mid-attempt leaves
its alerts to be claimed again when the lease lapses, under the same alert IDs.
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
# The longest one attempt at one alert can take: every destination's timeout (webhook 5 s, syslog 5 s, SMTP 10 s).
ATTEMPT_MAX_MS = 20_000
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


def claim(db: Database, owner: str, now: int, limit: int = 1) -> list[Claim]:
    """Lease up to `limit` due, unleased alerts, those that have waited longest first (one transaction for all:
    on SQLite every claim takes the writer's lock, which the API's writes wait for, so it looks first)."""
    if not db.finds(select(alerts.c.id).where(*_claimable(now))):
        return []
    with db.transaction() as conn:
        rows = conn.execute(
            select(alerts.c.id, alerts.c.rule_id, alerts.c.attempts, alerts.c.done_targets, alerts.c.body)
            .where(*_claimable(now))
            .order_by(alerts.c.next_attempt_ms)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return []
        conn.execute(
            update(alerts)
            .where(alerts.c.id.in_([r.id for r in rows]), *_claimable(now))
            .values(lease_owner=owner, lease_until_ms=now + LEASE_MS)
        )
        # Ours are those the update leased (on SQLite no other writer ran meanwhile; on PostgreSQL the rows stay
        # locked by this transaction), read back to be sure.
        mine = set(
            conn.execute(
                select(alerts.c.id).where(
                    alerts.c.id.in_([r.id for r in rows]),
                    alerts.c.lease_owner == owner,
                    alerts.c.lease_until_ms == now + LEASE_MS,
                )
            ).scalars()
        )
    return [
        Claim(r.id, r.rule_id, r.attempts, frozenset(t for t in r.done_targets.split(",") if t), json.loads(r.body))
        for r in rows
        if r.id in mine
    ]


@dataclass(frozen=True)
class Outcome:
    """One attempt at one claimed alert: the destinations the rule has, and each one's error (None: it took it);
    or `abandoned`, why the alert can no longer be delivered."""

    claimed: Claim
    kinds: list[str]
    errors: dict[str, str | None]
    abandoned: str | None = None
    # Not tried at all (the lease was running out): handed back as it was.
    released: bool = False

    @property
    def complete(self) -> bool:
        done = set(self.claimed.done) | {kind for kind, error in self.errors.items() if error is None}
        return set(self.kinds) <= done


def finish(db: Database, owner: str, outcomes: list[Outcome], now: int, cap_ms: int) -> None:
    """Record attempts (one transaction for all): the destinations that took each alert, and the alert finished,
    or due again after a backoff."""
    with db.transaction() as conn:
        for outcome in outcomes:
            claimed = outcome.claimed
            done = set(claimed.done) | {kind for kind, error in outcome.errors.items() if error is None}
            failures = "; ".join(f"{kind}: {error}" for kind, error in outcome.errors.items() if error is not None)
            values: dict[str, Any] = {"lease_until_ms": 0}
            if outcome.released:
                pass
            elif outcome.abandoned:
                values.update(finished_ms=now, last_error=outcome.abandoned)
            else:
                attempts = claimed.attempts + 1
                values.update(
                    attempts=attempts,
                    done_targets=",".join(sorted(done)),
                    last_attempt_ms=now,
                    last_error=failures[:4000] or None,
                )
                if outcome.complete:
                    values["finished_ms"] = now
                else:
                    values["next_attempt_ms"] = now + backoff_ms(attempts, cap_ms)
            conn.execute(
                update(alerts)
                .where(alerts.c.id == claimed.alert_id, alerts.c.lease_owner == owner, alerts.c.finished_ms.is_(None))
                .values(**values)
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

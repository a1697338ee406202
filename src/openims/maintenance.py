"""Housekeeping that keeps the store bounded: events past retention, spent signature nonces."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Column, delete

from openims import clock
from openims.runtime import Runtime
from openims.store.schema import events, signature_nonces

log = logging.getLogger("openims.maintenance")
DAY_MS = 24 * 3600 * 1000
BATCH = 10_000

# Families with their own retention (recycle bin, delivered outbox rows) add purge(rt) -> rows removed.
PURGERS: dict[str, Callable[[Runtime], int]] = {}


def purge_expired(name: str, expires_ms: Column[int]) -> Callable[[Runtime], int]:
    """Register (and return) the housekeeping of a table whose rows live until their `expires_ms`."""

    def purge_table(rt: Runtime) -> int:
        with rt.db.transaction() as conn:
            return conn.execute(delete(expires_ms.table).where(expires_ms <= clock.now_ms())).rowcount or 0

    PURGERS[name] = purge_table
    return purge_table


def purge(rt: Runtime) -> dict[str, int]:
    """Delete expired rows in bounded batches, so a large purge never holds the write lock for long."""
    now = clock.now_ms()
    removed = {"events": 0, "nonces": 0}
    cutoff = now - rt.settings.event_retention_days * DAY_MS
    while True:
        with rt.db.transaction() as conn:
            oldest = (
                conn.execute(
                    events.select()
                    .with_only_columns(events.c.seq)
                    .where(events.c.event_ms < cutoff)
                    .order_by(events.c.seq)
                    .limit(BATCH)
                )
                .scalars()
                .all()
            )
            if oldest:
                conn.execute(delete(events).where(events.c.seq.in_(oldest)))
        removed["events"] += len(oldest)
        if len(oldest) < BATCH:
            break
    with rt.db.transaction() as conn:
        removed["nonces"] = (
            conn.execute(delete(signature_nonces).where(signature_nonces.c.expires_ms < now)).rowcount or 0
        )
    for name, purger in PURGERS.items():
        removed[name] = purger(rt)
    if removed["events"]:
        log.info("purged %d events older than %d days", removed["events"], rt.settings.event_retention_days)
    return removed

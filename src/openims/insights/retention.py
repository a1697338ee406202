"""Keeping the detector's tables bounded: window counts and the addresses of profiles older than the baseline,
a key's services and action classes once older than the event retention (a subject's own first and last use,
which AkInsight's "unused for a long time" needs, stay), and the index rows and closed insights of insight events
the event retention has removed."""

from __future__ import annotations

from sqlalchemy import delete

from openims import clock
from openims.insights import catalogue
from openims.runtime import Runtime
from openims.store.tables.insights import insight_counts, insight_events, insight_profiles, insights

# A day past the baseline, so a window at its far edge still has every count it needs.
KEEP_MS = catalogue.BASELINE_MS + clock.DAY_MS


def purge(rt: Runtime) -> int:
    """Delete what no insight will read again; returns how many rows."""
    now = clock.now_ms()
    events_before = now - rt.settings.event_retention_days * clock.DAY_MS
    with rt.db.transaction() as conn:
        removed = conn.execute(delete(insight_counts).where(insight_counts.c.bucket_ms < now - KEEP_MS)).rowcount
        removed += conn.execute(
            delete(insight_profiles).where(
                insight_profiles.c.last_ms < now - KEEP_MS, insight_profiles.c.dimension == "ip"
            )
        ).rowcount
        removed += conn.execute(
            delete(insight_profiles).where(
                insight_profiles.c.last_ms < events_before, insight_profiles.c.dimension.in_(("service", "class"))
            )
        ).rowcount
        removed += conn.execute(delete(insight_events).where(insight_events.c.event_ms < events_before)).rowcount
        removed += conn.execute(
            delete(insights).where(insights.c.open.is_(False), insights.c.end_ms < events_before)
        ).rowcount
    return int(removed or 0)

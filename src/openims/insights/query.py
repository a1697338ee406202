"""Finding insight events: LookupInsightEvents' filters and pages, and GetInsightsEventsCount's counts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from openims import jsontext
from openims.audit.lookup import Query, make_token, open_token
from openims.crypto import MasterKey
from openims.errors import ApiError
from openims.store.schema import events
from openims.store.tables.insights import insight_events, insights

# LookupInsightEvents' LookupAttribute keys -> column of insight_events (EventId: of the insight event).
ATTRIBUTES = {
    "ServiceName": insight_events.c.service_name,
    "EventName": insight_events.c.event_name,
    "SourceIpAddress": insight_events.c.source_ip,
    "InsightType": insight_events.c.insight_type,
    "EventId": insight_events.c.event_id,
    "AccessKeyId": insight_events.c.access_key_id,
    "InsightObject": insight_events.c.insight_object,
}
# Marks the fingerprint of these pages' NextTokens, so a LookupEvents token is no token here.
_SCOPE = ("LookupInsightEvents", "")


def search(conn: Connection, key: MasterKey, q: Query, token: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of insight events (full records, newest first) and the token for the next, or None at the end."""
    where = [
        insight_events.c.account_id == q.account_id,
        insight_events.c.event_ms >= q.start_ms,
        insight_events.c.event_ms <= q.end_ms,
    ]
    for name, value in q.attributes:
        if name not in ATTRIBUTES:
            raise ApiError(
                "InvalidParameter.LookupAttribute.Key",
                f'The lookup attribute key "{name}" is not supported; use one of {", ".join(ATTRIBUTES)}.',
            )
        where.append(ATTRIBUTES[name] == value)
    scoped = Query(q.account_id, q.start_ms, q.end_ms, (*q.attributes, _SCOPE), limit=q.limit, span=q.span)
    if token:
        after_ms, after_seq = open_token(key, token, scoped)
        where.append(or_(events.c.event_ms < after_ms, and_(events.c.event_ms == after_ms, events.c.seq < after_seq)))
    rows = conn.execute(
        select(events.c.seq, events.c.event_ms, events.c.body)
        .select_from(insight_events.join(events, events.c.event_id == insight_events.c.event_id))
        .where(*where)
        .order_by(events.c.event_ms.desc(), events.c.seq.desc())
        .limit(q.limit + 1)
    ).all()
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    next_token = make_token(key, scoped, rows[-1].event_ms, rows[-1].seq) if more and rows else None
    return [jsontext.loads(r.body) for r in rows], next_token


def counts(conn: Connection, account_id: str, start_ms: int, end_ms: int) -> dict[str, int]:
    """How many insights of each type started in [start_ms, end_ms)."""
    rows = conn.execute(
        select(insights.c.insight_type, func.count())
        .where(insights.c.account_id == account_id, insights.c.start_ms >= start_ms, insights.c.start_ms < end_ms)
        .group_by(insights.c.insight_type)
    )
    return {r[0]: int(r[1]) for r in rows}

"""A resource's history: every recorded change to it, oldest first, with who made it and from where. Read from
the events themselves (their additionalEventData.resourceChanges), found through the resource index, so it
holds what the events hold: the retention window, from the release that began recording changes on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select

from openims import jsontext
from openims.store.schema import events
from openims.store.tables.event_resources import event_resources

BATCH = 500


def changes(conn: Connection, account_id: str, resource_type: str, name: str) -> Iterator[dict[str, Any]]:
    """Each change to the resource (under this name, or renamed from it), oldest first."""
    r = event_resources
    query = (
        select(r.c.event_ms, r.c.event_seq, events.c.body)
        .select_from(r.join(events, events.c.seq == r.c.event_seq))
        .where(
            r.c.account_id == account_id,
            r.c.resource_name == name,
            r.c.resource_type == resource_type,
            events.c.event_rw == "Write",
            events.c.error_code.is_(None),
        )
        .order_by(r.c.event_ms, r.c.event_seq)
    )
    after: tuple[int, int] | None = None
    while True:
        page = query
        if after is not None:
            page = query.where((r.c.event_ms > after[0]) | ((r.c.event_ms == after[0]) & (r.c.event_seq > after[1])))
        rows = conn.execute(page.limit(BATCH)).all()
        for row in rows:
            yield from _entries(jsontext.loads(row.body), resource_type, name)
        if len(rows) < BATCH:
            return
        after = (rows[-1].event_ms, rows[-1].event_seq)


def _entries(event: dict[str, Any], resource_type: str, name: str) -> Iterator[dict[str, Any]]:
    identity = event.get("userIdentity") or {}
    for entry in (event.get("additionalEventData") or {}).get("resourceChanges") or []:
        if entry.get("resourceType") == resource_type and name in (entry.get("resourceName"), entry.get("formerName")):
            yield {
                "eventTime": event.get("eventTime"),
                "eventId": event.get("eventId"),
                "eventName": event.get("eventName"),
                "userName": identity.get("userName", ""),
                "userType": identity.get("type", ""),
                "sourceIpAddress": event.get("sourceIpAddress", ""),
                **entry,
            }

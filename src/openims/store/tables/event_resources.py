"""Every resource each event names (its referencedResources), one row per resource, so LookupEvents by
ResourceName or ResourceType finds an event by any of its resources from an index.

Rows carry the event's account and time, so a lookup is an index range scan in time order that stops after
one page; they die with their event (ON DELETE CASCADE), so retention purges them too.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table

from openims.store.schema import Seq, metadata

event_resources = Table(
    "event_resources",
    metadata,
    Column("event_seq", Seq, ForeignKey("events.seq", ondelete="CASCADE"), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("resource_name", String(255), primary_key=True),
    Column("account_id", String(16), nullable=False),
    Column("event_ms", BigInteger, nullable=False),
)
Index(
    "ix_event_resources_name",
    event_resources.c.account_id,
    event_resources.c.resource_name,
    event_resources.c.event_ms,
    event_resources.c.event_seq,
)
Index(
    "ix_event_resources_type",
    event_resources.c.account_id,
    event_resources.c.resource_type,
    event_resources.c.event_ms,
    event_resources.c.event_seq,
)

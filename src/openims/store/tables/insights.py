"""Insights (openims.insights): which types each account has switched on, which a trail delivers, what the
detector has learned (profiles and per-window counts), the insights it opened and closed, the index that
LookupInsightEvents searches, and the detector's cursor and lease.

The insight events themselves are ordinary rows of `events` (so the tamper-evident log and the trails cover
them); `insight_events` only indexes them by the attributes LookupInsightEvents filters on.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, text

from openims.store.schema import metadata

# EnableInsight / DisableInsight, per account: a type without a row is off (as in ActionTrail).
insight_types = Table(
    "insight_types",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("insight_type", String(32), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

# PutInsightSelectors: the insight types a trail delivers (under the Actiontrail-Insight object path).
insight_selectors = Table(
    "insight_selectors",
    metadata,
    Column("trail_id", String(32), ForeignKey("trails.id", ondelete="CASCADE"), primary_key=True),
    Column("insight_type", String(32), primary_key=True),
)

# One row ("detector"): the last events.seq the detector has read, the end of the last window it evaluated,
# and the lease that lets one process at a time detect, however many servers share the database.
insight_job = Table(
    "insight_job",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("cursor_seq", BigInteger, nullable=False, server_default=text("0")),
    Column("evaluated_ms", BigInteger, nullable=False, server_default=text("0")),
    Column("lease_owner", String(64), nullable=False, server_default=""),
    Column("lease_until_ms", BigInteger, nullable=False, server_default=text("0")),
)

# What a subject (an AccessKey `key:<id>` or a console user `user:<name>`) was seen doing: dimension `ip`,
# `service`, `class` (action class) with the value, first and last seen; dimension `seen` (value "") is the
# subject's own first and last activity.
insight_profiles = Table(
    "insight_profiles",
    metadata,
    Column("account_id", String(16), primary_key=True),
    Column("subject", String(200), primary_key=True),
    Column("dimension", String(16), primary_key=True),
    Column("value", String(160), primary_key=True),
    Column("first_ms", BigInteger, nullable=False),
    Column("last_ms", BigInteger, nullable=False),
)

# Events per window (OPENIMS_INSIGHTS_WINDOW_SECONDS) of a metric (`write`, `error`, `signin_user`,
# `signin_ip`) and subject: the baseline is the mean and spread of these over the 7 days before a window.
insight_counts = Table(
    "insight_counts",
    metadata,
    Column("account_id", String(16), primary_key=True),
    Column("metric", String(16), primary_key=True),
    Column("subject", String(200), primary_key=True),
    Column("bucket_ms", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
)
Index("ix_insight_counts_bucket", insight_counts.c.bucket_ms)

# One row per insight: opened by its Start event (whose eventId is the insight's ID and both events'
# sharedEventId), closed by its End event.
insights = Table(
    "insights",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(16), nullable=False),
    Column("insight_type", String(32), nullable=False),
    Column("insight_object", String(200), nullable=False),
    Column("open", Boolean, nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger),
    # The last event that kept the insight open (IpInsight, AkInsight: the unusual use itself).
    Column("activity_ms", BigInteger, nullable=False),
    Column("end_event_id", String(36)),
    # What the Start event said (insightDetails), from which the End event is built.
    Column("details", Text, nullable=False),
)
Index("ix_insights_account", insights.c.account_id, insights.c.open, insights.c.start_ms)
Index("ix_insights_open", insights.c.open, insights.c.insight_type)

# LookupInsightEvents' attributes, one row per insight event (Start and End).
insight_events = Table(
    "insight_events",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("account_id", String(16), nullable=False),
    Column("event_ms", BigInteger, nullable=False),
    Column("insight_id", String(36), nullable=False),
    Column("insight_type", String(32), nullable=False),
    Column("insight_object", String(200), nullable=False),
    Column("service_name", String(32), nullable=False, server_default=""),
    Column("event_name", String(64), nullable=False, server_default=""),
    Column("source_ip", String(64), nullable=False, server_default=""),
    Column("access_key_id", String(32), nullable=False, server_default=""),
)
Index("ix_insight_events_time", insight_events.c.account_id, insight_events.c.event_ms)
Index("ix_insight_events_insight", insight_events.c.insight_id)

"""Indexes on `events` for AccessKey activity (ActionTrail's GetAccessKeyLastUsed* actions), and the trails'
historic delivery jobs (CreateDeliveryHistoryJob).

The activity indexes let `openims.actions.access_key_activity` list the distinct source IPs, event names and
resources of one key within one service by skipping from one distinct value to the next (a seek per value),
and find each value's newest event with one more seek, however many events the key made. They are partial
(`access_key_id <> ''`): console sessions and housekeeping make events without a key and pay nothing.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text, text

from openims.store import constraints
from openims.store.schema import Seq, events, metadata

_KEYED = "access_key_id <> ''"
for _name, _cols in (
    ("ip", ("source_ip",)),
    ("event", ("event_name",)),
    ("resource", ("resource_type", "resource_name")),
):
    Index(
        f"ix_events_key_{_name}",
        events.c.account_id,
        events.c.access_key_id,
        events.c.service_name,
        *(events.c[c] for c in _cols),
        events.c.event_ms,
        events.c.seq,
        sqlite_where=text(_KEYED),
        postgresql_where=text(_KEYED),
    )

# One row per historic delivery job. The job delivers the account's stored events from `window_start_ms` up to
# the trail's `live_from_ms` (events from then on are the live outbox's), in chunks: `cursor_*` is the last
# event delivered; `chunk_*` the last event of the chunk in flight, fixed before it is sent so that a retry
# (after a failure, a crash or a restart) sends exactly the same events, under the same object key.
delivery_history_jobs = Table(
    "delivery_history_jobs",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    # The trail's row dies with the trail; the job keeps its name for the record.
    Column("trail_id", String(32), ForeignKey("trails.id", ondelete="SET NULL")),
    Column("trail_name", String(36), nullable=False),
    Column("client_token", String(64)),
    # ActionTrail's JobStatus: 0 initializing, 1 delivering, 2 complete, 3 failed.
    Column("status", Integer, nullable=False, server_default=text("0")),
    Column("window_start_ms", BigInteger, nullable=False),
    Column("window_end_ms", BigInteger, nullable=False),
    # The trail's EventRW when the job was created: a later UpdateTrail must not change a chunk being retried.
    Column("event_rw", String(8), nullable=False, server_default="All"),
    Column("cursor_ms", BigInteger, nullable=False, server_default=text("0")),
    Column("cursor_seq", BigInteger, nullable=False, server_default=text("0")),
    Column("chunk_end_ms", BigInteger),
    Column("chunk_end_seq", BigInteger),
    Column("chunk_done_targets", String(64), nullable=False, server_default=""),
    Column("delivered", BigInteger, nullable=False, server_default=text("0")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_ms", BigInteger, nullable=False, server_default=text("0")),
    Column("lease_owner", String(64), nullable=False, server_default=""),
    Column("lease_until_ms", BigInteger, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("started_ms", BigInteger),
    Column("finished_ms", BigInteger),
    Column("updated_ms", BigInteger, nullable=False),
    # DeleteDeliveryHistoryJob hides the job; the row stays, so the trail's events are never delivered twice.
    Column("deleted_ms", BigInteger),
    # AUTOINCREMENT: a JobId is never reused, even after the newest job is deleted.
    sqlite_autoincrement=True,
)
Index("ix_delivery_history_jobs_account", delivery_history_jobs.c.account_id, delivery_history_jobs.c.id)
# Once per trail: ActionTrail's "one job per trail", and what makes a second backfill (a duplicate) impossible.
Index("uq_delivery_history_jobs_trail", delivery_history_jobs.c.trail_id, unique=True)
# One running job per account (ActionTrail's limit), held by the database against concurrent creations.
_RUNNING = "status < 2 AND deleted_ms IS NULL"
Index(
    "uq_delivery_history_jobs_running",
    delivery_history_jobs.c.account_id,
    unique=True,
    sqlite_where=text(_RUNNING),
    postgresql_where=text(_RUNNING),
)
constraints.register(
    "uq_delivery_history_jobs_trail",
    "EntityAlreadyExists.DeliveryHistoryJob",
    "The trail already has a historic delivery job.",
    sqlite_columns="delivery_history_jobs.trail_id",
)
constraints.register(
    "uq_delivery_history_jobs_running",
    "Conflict.DeliveryHistoryJob.Running",
    "A historic delivery job is still running: an account runs one at a time.",
    sqlite_columns="delivery_history_jobs.account_id",
)
Index(
    "ix_delivery_history_jobs_due",
    delivery_history_jobs.c.next_attempt_ms,
    sqlite_where=text("status < 2"),
    postgresql_where=text("status < 2"),
)

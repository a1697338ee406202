"""Trails, the outbox of events they still have to deliver, the batches deliverers claim, and delivery status.

An event a logging trail wants gets one `trail_outbox` row in the event's own transaction. A deliverer
groups pending rows into a `trail_batches` row (fixing its membership, so a batch re-claimed after a crash
holds exactly the same events and is written to the same object key), delivers it to every target of the
trail, then deletes the batch's outbox rows and marks the batch delivered (purged later).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, LargeBinary, String, Table, Text, text

from openims.store import constraints
from openims.store.schema import Seq, metadata

trails = Table(
    "trails",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(36), nullable=False),
    Column("event_rw", String(8), nullable=False, server_default="Write"),
    Column("trail_region", String(256), nullable=False, server_default="All"),
    Column("oss_bucket_name", String(63), nullable=False, server_default=""),
    Column("oss_key_prefix", String(32), nullable=False, server_default=""),
    Column("oss_write_role_arn", String(256), nullable=False, server_default=""),
    Column("sls_project_arn", String(256), nullable=False, server_default=""),
    Column("sls_write_role_arn", String(256), nullable=False, server_default=""),
    # OpenIMS extensions: RFC 5424 syslog over TCP/TLS, and a signed HTTPS webhook.
    Column("syslog_address", String(262), nullable=False, server_default=""),
    Column("syslog_tls", Boolean, nullable=False, server_default=text("false")),
    Column("webhook_url", String(2048), nullable=False, server_default=""),
    # The HMAC key, sealed with the master key (context: the trail ID).
    Column("webhook_secret_sealed", LargeBinary),
    Column("is_logging", Boolean, nullable=False, server_default=text("false")),
    Column("start_logging_ms", BigInteger),
    # Where live delivery begins (migration 0016): set by the first StartLogging (or the first historic delivery
    # job); the outbox queues only events from then on, and the history job delivers only events before it, so
    # no event reaches the trail twice (openims.delivery.history).
    Column("live_from_ms", BigInteger),
    Column("stop_logging_ms", BigInteger),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
Index("uq_trails_account_name", trails.c.account_id, trails.c.name, unique=True)

# A random token per account, replaced by every trail change: the in-transaction outbox hook compares it
# with its cache of the account's logging trails, which is how other processes' changes reach that cache.
# Random rather than incremented, so the token of a rolled-back change can never be reused for other content.
trail_generations = Table(
    "trail_generations",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("generation", BigInteger, nullable=False),
)

trail_batches = Table(
    "trail_batches",
    metadata,
    # `<trail name>-<first outbox id>-<last outbox id>`: outbox IDs are never reused, so neither are batch IDs.
    Column("id", String(80), primary_key=True),
    Column("trail_id", String(32), ForeignKey("trails.id", ondelete="CASCADE"), nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    # The claim: a deliverer owns the batch until lease_until_ms (renewed while it works on it).
    Column("lease_owner", String(64), nullable=False, server_default=""),
    Column("lease_until_ms", BigInteger, nullable=False, server_default=text("0")),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # Comma-separated targets (oss, sls, syslog, webhook) that already have this batch.
    Column("done_targets", String(64), nullable=False, server_default=""),
    Column("last_error", Text),
    Column("delivered_ms", BigInteger),
)
Index(
    "ix_trail_batches_due",
    trail_batches.c.next_attempt_ms,
    sqlite_where=text("delivered_ms IS NULL"),
    postgresql_where=text("delivered_ms IS NULL"),
)
Index(
    "ix_trail_batches_delivered",
    trail_batches.c.delivered_ms,
    sqlite_where=text("delivered_ms IS NOT NULL"),
    postgresql_where=text("delivered_ms IS NOT NULL"),
)
Index("ix_trail_batches_trail", trail_batches.c.trail_id)

trail_outbox = Table(
    "trail_outbox",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("trail_id", String(32), ForeignKey("trails.id", ondelete="CASCADE"), nullable=False),
    # The event's body stays in `events`; this only references it.
    Column("event_id", String(36), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("batch_id", String(80), ForeignKey("trail_batches.id", ondelete="CASCADE")),
    # AUTOINCREMENT: SQLite would otherwise reuse the IDs of deleted rows, and with them batch IDs.
    sqlite_autoincrement=True,
)
Index(
    "ix_trail_outbox_pending",
    trail_outbox.c.trail_id,
    trail_outbox.c.id,
    sqlite_where=text("batch_id IS NULL"),
    postgresql_where=text("batch_id IS NULL"),
)
Index("ix_trail_outbox_batch", trail_outbox.c.batch_id)

# Delivery status of each target of a trail (what GetTrailStatus reports).
trail_target_status = Table(
    "trail_target_status",
    metadata,
    Column("trail_id", String(32), ForeignKey("trails.id", ondelete="CASCADE"), primary_key=True),
    Column("target", String(16), primary_key=True),
    Column("last_attempt_ms", BigInteger, nullable=False, server_default=text("0")),
    Column("ok", Boolean, nullable=False, server_default=text("true")),
    Column("last_success_ms", BigInteger),
    Column("last_error", Text),
    Column("last_error_ms", BigInteger),
)

constraints.register(
    "uq_trails_account_name",
    "EntityAlreadyExists.Trail",
    "The trail already exists.",
    sqlite_columns="trails.account_id, trails.name",
)

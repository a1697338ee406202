"""Trail digest files (docs/integrity.md, "Trail digests") and the console's background verifications.

A digest is fixed here (its key and exact bytes, signed) in a short transaction before it is written to the
bucket, so a retried batch writes the very same object again and the chain never forks. A chain is per trail
and destination (bucket and key prefix); its head row is locked while the next digest is chained to it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, LargeBinary, String, Table, Text

from openims.store.schema import metadata

trail_digest_heads = Table(
    "trail_digest_heads",
    metadata,
    Column("trail_id", String(32), ForeignKey("trails.id", ondelete="CASCADE"), primary_key=True),
    Column("location", String(128), primary_key=True),  # "<bucket>/<key prefix>"
    Column("sequence", BigInteger, nullable=False),  # of the newest digest; -1 before the first
    Column("digest_key", Text),
    Column("digest_sha256", String(64)),
    Column("signature", String(100)),
)

trail_digests = Table(
    "trail_digests",
    metadata,
    Column("trail_id", String(32), ForeignKey("trails.id", ondelete="CASCADE"), primary_key=True),
    Column("location", String(128), primary_key=True),
    Column("batch_id", String(80), primary_key=True),
    Column("sequence", BigInteger, nullable=False),
    Column("digest_key", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)
Index("ix_trail_digests_created", trail_digests.c.created_ms)

# `Verify now` on the console's Integrity page runs in the background; any server shows its progress.
verify_jobs = Table(
    "verify_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("state", String(16), nullable=False),  # running, done
    Column("events_done", BigInteger, nullable=False, server_default="0"),
    Column("events_total", BigInteger, nullable=False, server_default="0"),
    Column("result", Text),  # JSON: events, checkpoints, problems, notes
    Column("started_ms", BigInteger, nullable=False),
    Column("heartbeat_ms", BigInteger, nullable=False),
    Column("finished_ms", BigInteger),
)
Index("ix_verify_jobs_account", verify_jobs.c.account_id, verify_jobs.c.started_ms)

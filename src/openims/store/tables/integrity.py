"""The tamper-evident log (see openims.integrity): which events wait to be appended, each account's leaves in
log order, the log's state, its signed checkpoints, and the signing keys.

Events carry no foreign key to these tables on purpose: the log must notice a deleted event, not lose its leaf.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text

from openims.store.schema import metadata

# Written with each event, in its transaction (like the trail outbox); the sequencer appends and deletes rows.
log_queue = Table(
    "log_queue",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", String(16), nullable=False),
    Column("event_id", String(36), nullable=False, unique=True),
)
Index("ix_log_queue_account", log_queue.c.account_id, log_queue.c.id)

# One row per leaf: the event it covers and the leaf hash computed when it was appended.
log_leaves = Table(
    "log_leaves",
    metadata,
    Column("account_id", String(16), primary_key=True),
    Column("leaf_index", BigInteger, primary_key=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("leaf_hash", LargeBinary(32), nullable=False),
)

# Per account: the tree size and its Merkle frontier (enough to go on appending), locked by the appender.
log_state = Table(
    "log_state",
    metadata,
    Column("account_id", String(16), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("frontier", Text, nullable=False),
    # The first leaf still stored: leaves before it were purged with their events (retention); verification
    # starts from the checkpoint at this size, whose frontier it keeps.
    Column("start", BigInteger, nullable=False, server_default="0"),
)

log_checkpoints = Table(
    "log_checkpoints",
    metadata,
    Column("account_id", String(16), primary_key=True),
    Column("size", BigInteger, primary_key=True),
    Column("root", LargeBinary(32), nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("previous", LargeBinary(32), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    # The frontier at this size: verification can start here once the leaves before it are purged.
    Column("frontier", Text, nullable=False),
)

# Ed25519 signing keys; the private key sealed with the master key. A retired key still verifies old checkpoints.
log_keys = Table(
    "log_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("public_pem", Text, nullable=False),
    Column("private_sealed", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("retired_ms", BigInteger),
)

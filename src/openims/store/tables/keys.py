"""AccessKey side tables: last use, network access policies, and the account's credential report snapshot.

Each row dies with what it describes (ON DELETE CASCADE), so purging a key or an account leaves nothing behind.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table, Text

from openims.store.schema import metadata

# The last authenticated use of each key, flushed in batches from memory (see openims.credentials.key_usage).
access_key_usage = Table(
    "access_key_usage",
    metadata,
    Column("access_key_id", String(32), ForeignKey("access_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("last_used_ms", BigInteger, nullable=False),
    Column("service_name", String(32), nullable=False, server_default=""),
    Column("source_ip", String(64), nullable=False, server_default=""),
)

# Network access policies: one per key (id = the key's ID) and one per account (id = "account:" + account ID),
# so the check reads both with one primary-key lookup.
access_key_policies = Table(
    "access_key_policies",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("access_key_id", String(32), ForeignKey("access_keys.id", ondelete="CASCADE")),
    Column("document", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
Index("ix_access_key_policies_account", access_key_policies.c.account_id)

# The last generated credential report of each account (GenerateCredentialReport / GetCredentialReport).
credential_reports = Table(
    "credential_reports",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("generated_ms", BigInteger, nullable=False),
    Column("content", Text, nullable=False),
)

"""SQL over the trail (openims.query): each account's recorded queries (CreateAdvancedQueryHistory) and saved
templates. On PostgreSQL, migration 0019 also makes the role, the per-account view and the binding table the
query engine runs through (openims.query.postgres); they are not tables of the application, so not declared here."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, String, Table, Text, text

from openims.store.schema import metadata

query_history = Table(
    "query_history",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("query_sql", Text, nullable=False),
    Column("simple_query", Boolean, nullable=False, server_default=text("false")),
    Column("created_ms", BigInteger, nullable=False),
)
Index("ix_query_history_account", query_history.c.account_id, query_history.c.created_ms)

query_templates = Table(
    "query_templates",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("template_sql", Text, nullable=False),
    Column("simple_query", Boolean, nullable=False, server_default=text("false")),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
Index("uq_query_templates_account_name", query_templates.c.account_id, query_templates.c.name, unique=True)

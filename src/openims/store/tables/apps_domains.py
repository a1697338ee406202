"""OAuth applications with their sealed secrets, and the account's domains (auxiliary and custom)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, LargeBinary, String, Table, Text, text

from openims.store import constraints
from openims.store.schema import metadata

applications = Table(
    "applications",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("display_name", String(64), nullable=False),
    Column("app_type", String(16), nullable=False),
    Column("protocol_version", String(8), nullable=False, server_default="2.0"),
    # JSON arrays of strings, in the order the caller gave them.
    Column("redirect_uris", Text, nullable=False, server_default="[]"),
    Column("predefined_scopes", Text, nullable=False, server_default="[]"),
    Column("required_scopes", Text, nullable=False, server_default="[]"),
    Column("access_token_validity", Integer, nullable=False),
    Column("refresh_token_validity", Integer, nullable=False),
    Column("is_multi_tenant", Boolean, nullable=False),
    Column("secret_required", Boolean, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
Index("uq_applications_account_name", applications.c.account_id, applications.c.name, unique=True)

app_secrets = Table(
    "app_secrets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("app_id", String(24), ForeignKey("applications.id", ondelete="CASCADE"), nullable=False),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    # AES-GCM with the master key, bound to the secret's ID; the plaintext is shown once, at creation.
    Column("secret_sealed", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)
Index("ix_app_secrets_app", app_secrets.c.app_id)

# The account's own `<alias>.onaliyun.com` needs no row until another domain becomes the default.
domains = Table(
    "domains",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(64), primary_key=True),  # lower case
    Column("domain_type", String(16), nullable=False),  # Auxiliary (*.onaliyun.com) or Custom
    Column("status", String(16), nullable=False),  # Pending or Verified
    Column("is_default", Boolean, nullable=False, server_default="0"),
    # The TXT challenge value: random, fixed for the life of the row.
    Column("verification_token", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("verified_ms", BigInteger),
)
# A verified domain belongs to one account only; a pending one may be claimed by several until one proves it.
Index(
    "uq_domains_verified_name",
    domains.c.name,
    unique=True,
    sqlite_where=text("status = 'Verified'"),
    postgresql_where=text("status = 'Verified'"),
)
Index(
    "uq_domains_default",
    domains.c.account_id,
    unique=True,
    sqlite_where=text("is_default"),
    postgresql_where=text("is_default"),
)

constraints.register(
    "uq_applications_account_name",
    "EntityAlreadyExists.Application",
    "The application already exists.",
    "applications.account_id, applications.name",
)
constraints.register(
    "uq_domains_verified_name",
    "EntityAlreadyExists.Domain",
    "The domain is already verified by an account.",
    "domains.name",
)
constraints.register(
    "pk_domains", "EntityAlreadyExists.Domain", "The domain already exists.", "domains.account_id, domains.name"
)

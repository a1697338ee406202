"""The core tables. Uniqueness and referential rules live here, so they hold whatever the code does.

Times are integer milliseconds since the epoch (UTC): portable across SQLite and PostgreSQL and cheap to
index and compare. Families that need more tables add them on the same `metadata` in their own module
under `openims.store.tables` (discovered by `load_all`), each with its own Alembic revision.
"""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

# SQLite only aliases the rowid (and so auto-increments) for a column declared exactly INTEGER PRIMARY KEY.
Seq = BigInteger().with_variant(Integer(), "sqlite")

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("alias", String(64), nullable=False, unique=True),
    Column("password_hash", String(255)),
    Column("created_ms", BigInteger, nullable=False),
    # Bumped by database triggers (migration 0009) on any change to which policies apply to whom.
    Column("authz_version", BigInteger, nullable=False, server_default=text("0")),
    # The root identity's virtual MFA (migration 0010, `openims.signin.root_mfa`): its TOTP seed sealed with the
    # master key, when it was bound, and the last time step a code of it was accepted (never accepted again).
    Column("mfa_seed_sealed", LargeBinary),
    Column("mfa_bound_ms", BigInteger),
    Column("mfa_last_step", BigInteger),
)

users = Table(
    "users",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("upn", String(128), nullable=False),
    Column("display_name", String(128), nullable=False),
    Column("email", String(128), nullable=False, server_default=""),
    Column("mobile_phone", String(32), nullable=False, server_default=""),
    Column("comments", String(256), nullable=False, server_default=""),
    Column("provision_type", String(32), nullable=False, server_default="Manual"),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("last_login_ms", BigInteger),
    # Set while the user sits in the recycle bin; a name is unique only among live users.
    Column("deleted_ms", BigInteger),
)
# Names are unique case-insensitively, as RAM treats them; the expression index also serves the lookups.
Index(
    "uq_users_account_name",
    users.c.account_id,
    func.lower(users.c.name),
    unique=True,
    sqlite_where=text("deleted_ms IS NULL"),
    postgresql_where=text("deleted_ms IS NULL"),
)

groups = Table(
    "groups",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("display_name", String(128), nullable=False, server_default=""),
    Column("comments", String(256), nullable=False, server_default=""),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
Index("uq_groups_account_name", groups.c.account_id, groups.c.name, unique=True)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", String(24), ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", String(24), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("joined_ms", BigInteger, nullable=False),
)
Index("ix_group_members_user", group_members.c.user_id)

access_keys = Table(
    "access_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    # NULL for the account's root keys.
    Column("user_id", String(24), ForeignKey("users.id", ondelete="CASCADE")),
    Column("secret_sealed", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False, server_default="Active"),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("deleted_ms", BigInteger),
)
Index("ix_access_keys_account_user", access_keys.c.account_id, access_keys.c.user_id)

resource_tags = Table(
    "resource_tags",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("resource_type", String(32), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("tag_key", String(128), primary_key=True),
    Column("tag_value", String(128), nullable=False, server_default=""),
)
Index("ix_resource_tags_lookup", resource_tags.c.account_id, resource_tags.c.tag_key, resource_tags.c.tag_value)

# Every accepted signature nonce, kept for the timestamp window so a replay is refused even after a
# restart and by another server process on the same database.
signature_nonces = Table(
    "signature_nonces",
    metadata,
    Column("access_key_id", String(32), primary_key=True),
    Column("nonce", String(128), primary_key=True),
    Column("expires_ms", BigInteger, nullable=False),
)
Index("ix_signature_nonces_expires", signature_nonces.c.expires_ms)

events = Table(
    "events",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("account_id", String(16), nullable=False),
    Column("event_ms", BigInteger, nullable=False),
    Column("event_name", String(64), nullable=False),
    Column("event_rw", String(8), nullable=False),
    Column("service_name", String(32), nullable=False),
    Column("user_name", String(160), nullable=False, server_default=""),
    Column("access_key_id", String(32), nullable=False, server_default=""),
    Column("resource_type", String(64), nullable=False, server_default=""),
    Column("resource_name", String(255), nullable=False, server_default=""),
    Column("error_code", String(128)),
    Column("source_ip", String(64), nullable=False, server_default=""),
    # The caller had passed MFA (openims.audit.event.mfa_used): the console's MFA filter and LookupEvents' MFAUsed.
    Column("mfa_used", Boolean, nullable=False, server_default=text("false")),
    # LookupEvents' PrincipalId, EventType and SensitiveAction (migration 0021); resources are indexed in
    # event_resources (openims.store.tables.event_resources), since an event may name several.
    Column("principal_id", String(64), nullable=False, server_default=""),
    Column("event_type", String(32), nullable=False, server_default="ApiCall"),
    Column("sensitive", Boolean, nullable=False, server_default=text("false")),
    Column("body", Text, nullable=False),
)
# One index per LookupEvents attribute, each ending in the sort key, so a filtered page is an index range
# scan that stops after MaxResults rows however many events are stored.
for _col in (
    None,
    "event_name",
    "event_rw",
    "service_name",
    "user_name",
    "access_key_id",
    "source_ip",
    "principal_id",
    "event_type",
):
    _cols = [events.c.account_id] + ([events.c[_col]] if _col else []) + [events.c.event_ms, events.c.seq]
    Index(f"ix_events_{_col or 'time'}", *_cols)
# Few events are made with MFA (console sessions), so a partial index finds them at almost no cost to the
# API calls' inserts; "without MFA" is most events, which the time index walks through quickly.
Index(
    "ix_events_mfa_used",
    events.c.account_id,
    events.c.event_ms,
    events.c.seq,
    sqlite_where=text("mfa_used = 1"),
    postgresql_where=text("mfa_used"),
)
# Failed calls are a small share too, and most events have no error code: a partial index costs the successful
# calls nothing. Both databases see that ErrorCode=X, a prefix and "any error" (IS NOT NULL) fall inside it.
Index(
    "ix_events_error_code",
    events.c.account_id,
    events.c.error_code,
    events.c.event_ms,
    events.c.seq,
    sqlite_where=text("error_code IS NOT NULL"),
    postgresql_where=text("error_code IS NOT NULL"),
)
# Sensitive actions are a small share of all calls, as MFA sessions are.
Index(
    "ix_events_sensitive",
    events.c.account_id,
    events.c.event_ms,
    events.c.seq,
    sqlite_where=text("sensitive = 1"),
    postgresql_where=text("sensitive"),
)


def load_all() -> MetaData:
    """Import every family's table module so `metadata` is complete (for Alembic and tests)."""
    from openims.store import tables

    for info in pkgutil.iter_modules(tables.__path__):
        importlib.import_module(f"{tables.__name__}.{info.name}")
    return metadata

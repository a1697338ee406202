"""Accounts: creation (with the root AccessKey), listing, and the account's user domains."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, or_, select

from openims import clock, ids
from openims.config import ConfigError
from openims.params import has_control
from openims.runtime import Runtime
from openims.store.schema import access_keys, accounts
from openims.store.tables.apps_domains import domains

ALIAS_RULE = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,30})[a-z0-9]")
DOMAIN_SUFFIX = ".onaliyun.com"


@dataclass(frozen=True)
class NewAccount:
    account_id: str
    alias: str
    access_key_id: str
    access_key_secret: str


def default_domain(alias: str) -> str:
    return f"{alias}{DOMAIN_SUFFIX}"


def create_account(rt: Runtime, alias: str) -> NewAccount:
    """A new, isolated account with one root AccessKey."""
    if not ALIAS_RULE.fullmatch(alias):
        raise ConfigError(
            "the alias must be 3 to 32 lowercase letters, digits or hyphens, not starting or ending with a hyphen"
        )
    with rt.db.transaction() as conn:
        if conn.execute(select(accounts.c.id).where(accounts.c.alias == alias)).first():
            raise ConfigError(f"an account with alias {alias!r} already exists")
        if conn.execute(
            select(domains.c.account_id).where(domains.c.name == default_domain(alias), domains.c.status == "Verified")
        ).first():
            raise ConfigError(f"the domain {default_domain(alias)} is already another account's default domain")
        account_id = ids.account_id()
        now = clock.now_ms()
        conn.execute(insert(accounts).values(id=account_id, alias=alias, created_ms=now))
        key_id, secret = new_access_key(conn, rt, account_id, None, now)
    return NewAccount(account_id, alias, key_id, secret)


def new_access_key(conn: Connection, rt: Runtime, account_id: str, user_id: str | None, now: int) -> tuple[str, str]:
    """Insert a new Active key, its secret sealed with the master key; returns (id, plaintext secret)."""
    key_id, secret = ids.access_key_id(), ids.access_key_secret()
    conn.execute(
        insert(access_keys).values(
            id=key_id,
            account_id=account_id,
            user_id=user_id,
            status="Active",
            created_ms=now,
            updated_ms=now,
            secret_sealed=rt.master_key.seal(secret, context=key_id),
        )
    )
    return key_id, secret


def list_accounts(rt: Runtime) -> list[dict[str, str]]:
    with rt.db.read() as conn:
        rows = conn.execute(select(accounts).order_by(accounts.c.created_ms)).all()
        return [
            {
                "AccountId": r.id,
                "Alias": r.alias,
                "DefaultDomain": user_domains(conn, r.id)[0],
                "CreateDate": clock.iso(r.created_ms),
            }
            for r in rows
        ]


def find(conn: Connection, ref: str | None) -> Row[Any] | None:
    """The account named by ID or alias (case-insensitive); None means the first account created."""
    if ref is None:
        return conn.execute(select(accounts).order_by(accounts.c.created_ms)).first()
    ref = ref.strip().lower()
    if has_control(ref):
        return None
    return conn.execute(select(accounts).where(or_(accounts.c.id == ref, accounts.c.alias == ref))).first()


def named(conn: Connection, ref: str | None) -> Row[Any]:
    """As `find`, for the operator's commands: a missing account is their one-line error."""
    acct = find(conn, ref)
    if acct is None:
        raise ConfigError(f"no account {ref!r} in this data dir" if ref else "this data dir has no account yet")
    return acct


_ALIAS = select(accounts.c.alias).where(accounts.c.id == bindparam("account_id"))
_VERIFIED_DOMAINS = (
    select(domains.c.name, domains.c.is_default)
    .where(domains.c.account_id == bindparam("account_id"), domains.c.status == "Verified")
    .order_by(domains.c.created_ms, domains.c.name)
)


def alias_of(conn: Connection, account_id: str) -> str:
    return str(conn.execute(_ALIAS, {"account_id": account_id}).scalar_one())


def user_domains(conn: Connection, account_id: str) -> list[str]:
    """Domains a UserPrincipalName may use in this account: the default one first, then the account's own
    `<alias>.onaliyun.com` and every other verified domain (former defaults stay, so existing UPNs keep working)."""
    own = default_domain(alias_of(conn, account_id))
    rows = conn.execute(_VERIFIED_DOMAINS, {"account_id": account_id}).all()
    default = next((r.name for r in rows if r.is_default), own)
    return list(dict.fromkeys([default, own, *(r.name for r in rows)]))

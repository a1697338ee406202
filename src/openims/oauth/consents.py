"""A user consents once per application: the consent is kept, and asked again only for scopes beyond it (or
when the client sends `prompt=consent`). It ends with the application or the user (ON DELETE CASCADE)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select

from openims import clock
from openims.oauth.owners import Owner
from openims.store.tables.oauth import oauth_consents


def covers(conn: Connection, app_id: str, owner: Owner, scope: str) -> bool:
    """Whether the owner already consented to every scope of `scope` for this application."""
    stored = conn.execute(
        select(oauth_consents.c.scope).where(
            oauth_consents.c.app_id == app_id, oauth_consents.c.subject == owner.subject_key
        )
    ).scalar()
    return stored is not None and set(scope.split()) <= set(stored.split())


def store(conn: Connection, app_id: str, owner: Owner, scope: str) -> None:
    """Keep the consent (widened to `scope` plus what was consented to before)."""
    mine = (oauth_consents.c.app_id == app_id, oauth_consents.c.subject == owner.subject_key)
    before = conn.execute(select(oauth_consents.c.scope).where(*mine)).scalar() or ""
    conn.execute(delete(oauth_consents).where(*mine))
    conn.execute(
        insert(oauth_consents).values(
            app_id=app_id,
            subject=owner.subject_key,
            account_id=owner.account_id,
            user_id=owner.user_id,
            scope=" ".join(dict.fromkeys(before.split() + scope.split())),
            granted_ms=clock.now_ms(),
        )
    )

"""Taking a RAM user's console access away ends it for good: the user's console sessions and the browsers'
saved MFA tickets are deleted, and the tokens applications hold for the user revoked, in the same transaction as
the change. Checking access only when a session is
next used would let a session (or a ticket) left idle through a disable, delete or recycle come back to life
when access is restored."""

from __future__ import annotations

from sqlalchemy import Connection, delete

from openims.oauth import tokens as oauth_tokens
from openims.signin import mfa_tickets
from openims.store.tables.console import console_sessions


def end(conn: Connection, user_id: str) -> None:
    conn.execute(delete(console_sessions).where(console_sessions.c.user_id == user_id))
    mfa_tickets.revoke_user(conn, user_id)
    oauth_tokens.end_user(conn, user_id)

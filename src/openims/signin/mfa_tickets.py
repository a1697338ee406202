"""Saved MFA tickets: with the security preference EnableSaveMFATicket, a RAM user who signed in to the console
with a verified MFA code may let the browser keep a ticket that stands in for the code at that user's later
sign-ins for LIFETIME_MS (Alibaba Cloud: "a saved code is valid for seven days").

The browser holds a random token; the database only its SHA-256, so a copy of the database hands out no
ticket. A ticket is bound to its user and to the MFA device bound to that user when it was issued (serial
number and bind time): unbinding, re-binding, replacing or deleting the device voids it without any
bookkeeping here. What the device cannot tell — the user moved to the recycle bin, the preference turned
off — deletes the tickets outright, so restoring the user or turning the preference on again revives none.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select

from openims.crypto import token_hash
from openims.store.tables.console import console_mfa_tickets

LIFETIME_DAYS = 7
LIFETIME_MS = LIFETIME_DAYS * 24 * 3600 * 1000
# A browser holds one ticket per user who saved one in it: a few. A flood of cookies costs no more than this.
MAX_PRESENTED = 16


def issue(conn: Connection, account_id: str, user_id: str, device: Row[Any], now_ms: int) -> str:
    """A new ticket for the user and its bound `device` (an mfa_devices row); returns the browser's token."""
    token = secrets.token_urlsafe(32)
    conn.execute(
        insert(console_mfa_tickets).values(
            token_hash=token_hash(token),
            account_id=account_id,
            user_id=user_id,
            serial_number=device.serial_number,
            device_bound_ms=device.bound_ms,
            created_ms=now_ms,
            expires_ms=now_ms + LIFETIME_MS,
        )
    )
    return token


def holds(conn: Connection, presented: Collection[str], user_id: str, device: Row[Any], now_ms: int) -> bool:
    """Whether one of the tokens a browser presented is a live ticket of this user for its bound `device`."""
    hashes = [token_hash(t) for t in list(presented)[:MAX_PRESENTED] if t and len(t) <= 128]
    if not hashes:
        return False
    found = conn.execute(
        select(console_mfa_tickets.c.token_hash).where(
            console_mfa_tickets.c.token_hash.in_(hashes),
            console_mfa_tickets.c.user_id == user_id,
            console_mfa_tickets.c.serial_number == device.serial_number,
            console_mfa_tickets.c.device_bound_ms == device.bound_ms,
            console_mfa_tickets.c.expires_ms > now_ms,
        )
    ).first()
    return found is not None


def revoke_user(conn: Connection, user_id: str) -> None:
    conn.execute(delete(console_mfa_tickets).where(console_mfa_tickets.c.user_id == user_id))


def revoke_account(conn: Connection, account_id: str) -> None:
    conn.execute(delete(console_mfa_tickets).where(console_mfa_tickets.c.account_id == account_id))

"""Server-side console sessions: the browser holds only a random token in an HttpOnly cookie; the row keyed
by its SHA-256 says who signed in, what the session may do yet (its stage), and its CSRF token.

A session changes token whenever its stage changes (password -> MFA code -> full session), so a token seen
before sign-in completed is worthless after. Sign-out deletes the row; so do expiry (housekeeping), the
deletion of the account or user (foreign keys), and a disabled user or login profile (checked per request).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection, delete, insert, select, update

from openims import clock
from openims.crypto import token_hash
from openims.principal import RAM_USER, ROOT, Principal
from openims.runtime import Runtime
from openims.store.schema import accounts, users
from openims.store.tables.console import console_sessions
from openims.store.tables.credentials import login_profiles

COOKIE = "openims_console"
PATH = "/console"
ACTIVE, MFA, BIND_MFA, CHANGE_PASSWORD = "active", "mfa", "bind_mfa", "change_password"
# How long a half-finished sign-in may wait for its next step.
MFA_STEP_MS = 5 * 60 * 1000
SETUP_STEP_MS = 15 * 60 * 1000


@dataclass(frozen=True)
class Session:
    token_hash: str
    account_id: str
    user_id: str | None
    user_name: str
    stage: str
    mfa_authenticated: bool
    csrf_token: str
    pending_serial: str | None
    next_stages: tuple[str, ...]
    flash: str | None
    created_ms: int
    expires_ms: int
    # The account's authz_version when the session was loaded: the policy cache holds across requests.
    authz_version: int | None = None

    @property
    def is_root(self) -> bool:
        return self.user_id is None

    def principal(self) -> Principal:
        """The caller of the session's console operations: audited as `ConsoleOperation` events."""
        if self.user_id is None:
            return Principal(
                self.account_id,
                ROOT,
                self.account_id,
                "root",
                mfa_authenticated=self.mfa_authenticated,
                event_type="ConsoleOperation",
                session_created_ms=self.created_ms,
            )
        return Principal(
            self.account_id,
            RAM_USER,
            self.user_id,
            self.user_name,
            user_id=self.user_id,
            mfa_authenticated=self.mfa_authenticated,
            event_type="ConsoleOperation",
            session_created_ms=self.created_ms,
            authz_version=self.authz_version,
        )


def _from_row(row: Any) -> Session:
    return Session(
        token_hash=row.token_hash,
        account_id=row.account_id,
        user_id=row.user_id,
        user_name=row.user_name,
        stage=row.stage,
        mfa_authenticated=bool(row.mfa_authenticated),
        csrf_token=row.csrf_token,
        pending_serial=row.pending_serial,
        next_stages=tuple(s for s in row.next_stages.split(",") if s),
        flash=row.flash,
        created_ms=row.created_ms,
        expires_ms=row.expires_ms,
        authz_version=row.authz_version,
    )


class AccessEnded(Exception):
    """The user lost console access (deleted, disabled, login profile removed) while signing in."""


def create(
    conn: Connection,
    rt: Runtime,
    *,
    account_id: str,
    user_id: str | None,
    user_name: str,
    stages: list[str],
    mfa_authenticated: bool,
    lifetime_ms: int,
    source_ip: str,
    user_agent: str,
    created_ms: int | None = None,
    pending_password: str | None = None,
) -> str:
    """Insert a session at the first of `stages` (the rest follow in order); returns the cookie token.
    A half-finished sign-in lives only minutes, whatever the full session's lifetime."""
    if user_id is not None:
        # The sign-in was checked in an earlier transaction: check again, in line with the account's writes,
        # so access taken away meanwhile (console_access.end) cannot leave this session behind.
        rt.db.serialize_account(conn, account_id)
        if not _user_may_sign_in(conn, user_id):
            raise AccessEnded(user_id)
    token = secrets.token_urlsafe(32)
    digest = token_hash(token)
    now = clock.now_ms()
    stage, rest = (stages[0], stages[1:]) if stages else (ACTIVE, [])
    step_limit = {MFA: MFA_STEP_MS, BIND_MFA: SETUP_STEP_MS, CHANGE_PASSWORD: SETUP_STEP_MS}.get(stage)
    expires = now + (min(lifetime_ms, step_limit) if step_limit else lifetime_ms)
    conn.execute(
        insert(console_sessions).values(
            token_hash=digest,
            account_id=account_id,
            user_id=user_id,
            user_name=user_name,
            stage=stage,
            mfa_authenticated=mfa_authenticated,
            csrf_token=secrets.token_urlsafe(32),
            pending_sealed=rt.master_key.seal(pending_password, digest) if pending_password is not None else None,
            next_stages=",".join(rest),
            source_ip=source_ip[:64],
            user_agent=user_agent[:255],
            created_ms=created_ms or now,
            expires_ms=expires,
            last_seen_ms=now,
        )
    )
    return token


def load(rt: Runtime, token: str | None) -> Session | None:
    """The live session of a cookie token, or None (unknown, expired, or its user can no longer sign in)."""
    if not token or len(token) > 128:
        return None
    now = clock.now_ms()
    with rt.db.read() as conn:
        row = conn.execute(
            select(console_sessions, accounts.c.authz_version)
            .join(accounts, accounts.c.id == console_sessions.c.account_id)
            .where(console_sessions.c.token_hash == token_hash(token))
        ).first()
        if row is None or row.expires_ms <= now:
            return None
        if row.user_id is not None and not _user_may_sign_in(conn, row.user_id):
            return None
    return _from_row(row)


def _user_may_sign_in(conn: Connection, user_id: str) -> bool:
    """A user deleted (recycled) or disabled, or whose console logon was removed or disabled, loses its sessions."""
    found = conn.execute(
        select(users.c.status, users.c.deleted_ms, login_profiles.c.status.label("profile_status"))
        .select_from(users.outerjoin(login_profiles, login_profiles.c.user_id == users.c.id))
        .where(users.c.id == user_id)
    ).first()
    return bool(found and found.deleted_ms is None and found.status == "active" and found.profile_status == "Active")


def pending_password(rt: Runtime, session: Session) -> str | None:
    with rt.db.read() as conn:
        sealed = conn.execute(
            select(console_sessions.c.pending_sealed).where(console_sessions.c.token_hash == session.token_hash)
        ).scalar()
    return rt.master_key.open(sealed, session.token_hash) if sealed else None


def advance(
    rt: Runtime,
    session: Session,
    lifetime_ms: int,
    source_ip: str,
    user_agent: str,
    *,
    mfa_authenticated: bool | None = None,
    stages: list[str] | None = None,
) -> str:
    """Replace the session by one at its next stage (or at `stages`), under a new token; returns the token."""
    remaining = list(stages if stages is not None else session.next_stages)
    with rt.db.transaction() as conn:
        if not conn.execute(
            delete(console_sessions).where(console_sessions.c.token_hash == session.token_hash)
        ).rowcount:
            raise AccessEnded(session.user_id)  # ended meanwhile (sign-out, or access taken away)
        lifetime = max(lifetime_ms - (clock.now_ms() - session.created_ms), 1000)
        return create(
            conn,
            rt,
            account_id=session.account_id,
            user_id=session.user_id,
            user_name=session.user_name,
            stages=remaining,
            created_ms=session.created_ms,
            lifetime_ms=lifetime,
            mfa_authenticated=session.mfa_authenticated if mfa_authenticated is None else mfa_authenticated,
            source_ip=source_ip,
            user_agent=user_agent,
        )


def update_session(rt: Runtime, session: Session, **values: Any) -> None:
    with rt.db.transaction() as conn:
        conn.execute(
            update(console_sessions).where(console_sessions.c.token_hash == session.token_hash).values(**values)
        )


def set_flash(rt: Runtime, session: Session, message: str) -> None:
    update_session(rt, session, flash=message[:2000])


def take_flash(rt: Runtime, session: Session) -> str | None:
    if not session.flash:
        return None
    update_session(rt, session, flash=None)
    return session.flash


def _reveal_context(session: Session, kind: str) -> str:
    return f"{session.token_hash}:reveal:{kind}"


def hold_reveal(rt: Runtime, session: Session, kind: str, secret: dict[str, Any]) -> None:
    """Keep a just-created secret (an AccessKey, an MFA seed) for the one page that shows it: the POST that
    created it redirects there, so reloading or going back can never repeat the creation. It is sealed to
    this session and this kind, and `take_reveal` erases it as it reads it."""
    update_session(rt, session, pending_sealed=rt.master_key.seal(json.dumps(secret), _reveal_context(session, kind)))


def take_reveal(rt: Runtime, session: Session, kind: str) -> dict[str, Any] | None:
    """The held secret of this kind, once: a second request (a reload, a concurrent tab) gets None."""
    column = console_sessions.c.pending_sealed
    mine = console_sessions.c.token_hash == session.token_hash
    with rt.db.transaction() as conn:
        sealed = conn.execute(select(column).where(mine)).scalar()
        if (
            not sealed
            or not conn.execute(
                update(console_sessions).where(mine, column == sealed).values(pending_sealed=None)
            ).rowcount
        ):
            return None
    try:
        found: dict[str, Any] = json.loads(rt.master_key.open(sealed, _reveal_context(session, kind)))
    except InvalidTag:  # held for another page: it is gone now as well, which only costs a new creation
        return None
    return found


def destroy(rt: Runtime, session: Session) -> None:
    with rt.db.transaction() as conn:
        conn.execute(delete(console_sessions).where(console_sessions.c.token_hash == session.token_hash))


def cookie_options(secure: bool) -> dict[str, Any]:
    """HttpOnly (no script reads it), SameSite=Lax (not sent on cross-site POSTs), Secure over HTTPS."""
    return {"httponly": True, "samesite": "lax", "secure": secure, "path": PATH}

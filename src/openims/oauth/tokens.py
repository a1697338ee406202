"""Authorization codes and tokens as the database keeps them: only SHA-256 hashes of the values handed out.
A code or token is good only while it is unexpired, unrevoked, its application and (for tokens issued to a
client that authenticated with one) its secret exist, and its owner may still act (`owners.load`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, insert, select, update

from openims import clock, ids
from openims.crypto import token_hash
from openims.oauth import owners
from openims.oauth.owners import Owner
from openims.store.tables.oauth import oauth_codes, oauth_tokens

CODE_LIFETIME_MS = 60_000
# Why a token was revoked (`oauth_tokens.revoked_reason`), as a refusal says it.
REVOKED = {
    "rotated": "a refresh replaced it",
    "revoked": "the application revoked it",
    "reuse": "a replaced refresh token of its authorization was presented again",
    "user": "its user was deleted or disabled, or lost console logon",
}
MAX_TOKEN_CHARS = 128


@dataclass
class Code:
    """An authorization code, as Authlib's AuthorizationCodeMixin (and the OIDC one) sees it."""

    row: Row[Any]

    def get_redirect_uri(self) -> str:
        return str(self.row.redirect_uri)

    def get_scope(self) -> str:
        return str(self.row.scope)

    def get_nonce(self) -> str | None:
        return self.row.nonce  # type: ignore[no-any-return]

    def get_auth_time(self) -> int:
        return int(self.row.auth_time_ms // 1000)

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd", "mfa"] if self.row.mfa_authenticated else ["pwd"]

    @property
    def code_challenge(self) -> str | None:
        return self.row.code_challenge  # type: ignore[no-any-return]

    @property
    def code_challenge_method(self) -> str | None:
        return self.row.code_challenge_method  # type: ignore[no-any-return]


@dataclass
class Token:
    """An issued token, as Authlib's TokenMixin sees it, with its owner (None once the user no longer exists)."""

    row: Row[Any]
    owner: Owner | None
    # Whether the value presented was the refresh token (else the access token).
    refresh: bool = False

    def check_client(self, client: Any) -> bool:
        return bool(self.row.app_id == client.get_client_id())

    def get_scope(self) -> str:
        return str(self.row.scope)

    def expires_ms(self) -> int:
        return int(self.row.refresh_expires_ms if self.refresh else self.row.access_expires_ms)

    def is_expired(self) -> bool:
        return self.expires_ms() <= clock.now_ms()

    def is_revoked(self) -> bool:
        """Revoked, or its owner may no longer act."""
        return self.row.revoked_ms is not None or self.owner is None or not self.owner.active

    def why_not(self) -> str | None:
        """Why the token is no longer good (for the event of a refused use), or None while it is."""
        if self.row.revoked_ms is not None:
            return "it was revoked: " + REVOKED.get(self.row.revoked_reason, str(self.row.revoked_reason))
        if self.owner is None or not self.owner.active:
            return "its user was deleted or disabled"
        if self.is_expired():
            return "it expired"
        return None


def save_code(
    conn: Connection,
    code: str,
    *,
    app_id: str,
    owner: Owner,
    redirect_uri: str,
    scope: str,
    nonce: str | None,
    code_challenge: str | None,
    code_challenge_method: str | None,
    auth_time_ms: int,
    mfa_authenticated: bool,
) -> None:
    conn.execute(
        insert(oauth_codes).values(
            code_hash=token_hash(code),
            app_id=app_id,
            account_id=owner.account_id,
            user_id=owner.user_id,
            redirect_uri=redirect_uri,
            scope=scope,
            nonce=nonce,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            auth_time_ms=auth_time_ms,
            mfa_authenticated=mfa_authenticated,
            expires_ms=clock.now_ms() + CODE_LIFETIME_MS,
        )
    )


def find_code(conn: Connection, code: str, app_id: str) -> Code | None:
    if len(code) > MAX_TOKEN_CHARS:
        return None
    row = conn.execute(
        select(oauth_codes).where(
            oauth_codes.c.code_hash == token_hash(code),
            oauth_codes.c.app_id == app_id,
            oauth_codes.c.expires_ms > clock.now_ms(),
        )
    ).first()
    return Code(row) if row is not None else None


def redeem_code(conn: Connection, code: Code) -> bool:
    """Delete the code; False when another request redeemed it first (it is good once)."""
    return bool(conn.execute(delete(oauth_codes).where(oauth_codes.c.code_hash == code.row.code_hash)).rowcount)


def nonce_used(conn: Connection, app_id: str, nonce: str) -> bool:
    found = conn.execute(
        select(oauth_codes.c.code_hash).where(oauth_codes.c.app_id == app_id, oauth_codes.c.nonce == nonce).limit(1)
    ).first()
    return found is not None


def issue(
    conn: Connection,
    token: dict[str, Any],
    *,
    app_id: str,
    secret_id: str | None,
    owner: Owner,
    auth_time_ms: int,
    grant_id: str | None,
    refresh_expires_ms: int | None,
) -> str:
    """Store a token response's access (and refresh) token; returns the grant ID its family shares."""
    now = clock.now_ms()
    access_expires = now + int(token["expires_in"]) * 1000
    refresh = token.get("refresh_token")
    grant = grant_id or ids.oauth_token_id()
    conn.execute(
        insert(oauth_tokens).values(
            id=ids.oauth_token_id(),
            grant_id=grant,
            access_hash=token_hash(token["access_token"]),
            refresh_hash=token_hash(refresh) if refresh else None,
            app_id=app_id,
            secret_id=secret_id,
            account_id=owner.account_id,
            user_id=owner.user_id,
            scope=token.get("scope", ""),
            auth_time_ms=auth_time_ms,
            issued_ms=now,
            access_expires_ms=access_expires,
            refresh_expires_ms=refresh_expires_ms if refresh else None,
            expires_ms=max(access_expires, refresh_expires_ms or 0) if refresh else access_expires,
        )
    )
    return grant


def find(conn: Connection, value: str, hint: str | None = None) -> Token | None:
    """An access or refresh token (`hint`: which to try first) with its owner, whatever its state."""
    if not value or len(value) > MAX_TOKEN_CHARS:
        return None
    digest = token_hash(value)
    columns = [oauth_tokens.c.access_hash, oauth_tokens.c.refresh_hash]
    if hint == "refresh_token":
        columns.reverse()
    for column in columns:
        row = conn.execute(select(oauth_tokens).where(column == digest)).first()
        if row is not None:
            return Token(row, owners.load(conn, row.account_id, row.user_id), column is oauth_tokens.c.refresh_hash)
    return None


def revoke(conn: Connection, row_id: str, reason: str) -> bool:
    """Revoke one token (its access and refresh token); False when it was revoked already."""
    return bool(
        conn.execute(
            update(oauth_tokens)
            .where(oauth_tokens.c.id == row_id, oauth_tokens.c.revoked_ms.is_(None))
            .values(revoked_ms=clock.now_ms(), revoked_reason=reason)
        ).rowcount
    )


def revoke_grant(conn: Connection, grant_id: str, reason: str) -> int:
    """Revoke every token of one authorization."""
    return (
        conn.execute(
            update(oauth_tokens)
            .where(oauth_tokens.c.grant_id == grant_id, oauth_tokens.c.revoked_ms.is_(None))
            .values(revoked_ms=clock.now_ms(), revoked_reason=reason)
        ).rowcount
        or 0
    )


def end_user(conn: Connection, user_id: str) -> None:
    """The user lost access (deleted, disabled, console logon removed): its codes and tokens end for good, in
    the same transaction, so restoring access later does not bring them back."""
    conn.execute(delete(oauth_codes).where(oauth_codes.c.user_id == user_id))
    conn.execute(
        update(oauth_tokens)
        .where(and_(oauth_tokens.c.user_id == user_id, oauth_tokens.c.revoked_ms.is_(None)))
        .values(revoked_ms=clock.now_ms(), revoked_reason="user")
    )

"""The resource owner of an authorization: a RAM user, or the account's root identity, as the ID token, the
userinfo endpoint and the events name them; and the claims each scope releases (Alibaba Cloud's names)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from openims.principal import RAM_USER, ROOT, Principal
from openims.runtime import Runtime
from openims.store.schema import accounts, users

# Scope -> the claims it releases, as Alibaba Cloud documents them.
SCOPE_CLAIMS = {
    "openid": ("sub",),
    "aliuid": ("uid", "aid"),
    "profile": ("name", "upn", "login_name"),
}


@dataclass(frozen=True)
class Owner:
    account_id: str
    # None for the account's root identity.
    user_id: str | None
    # UserPrincipalName, or "root".
    upn: str
    login_name: str
    display_name: str
    # False once it may no longer act: a user deleted (recycle bin) or disabled.
    active: bool = True

    @property
    def subject_key(self) -> str:
        """Who consented: the user's ID, or the account ID for the root identity."""
        return self.user_id or self.account_id

    def principal(self, mfa_authenticated: bool = False) -> Principal:
        """The owner as an event's userIdentity."""
        if self.user_id is None:
            return Principal(self.account_id, ROOT, self.account_id, "root", mfa_authenticated=mfa_authenticated)
        return Principal(
            self.account_id,
            RAM_USER,
            self.user_id,
            self.upn,
            user_id=self.user_id,
            mfa_authenticated=mfa_authenticated,
        )


def load(conn: Connection, account_id: str, user_id: str | None) -> Owner | None:
    """The owner (None when it is gone for good); `active` says whether it may still act, checked at every use
    of a code or token, so taking a user's access away ends its tokens too."""
    if user_id is None:
        alias = conn.execute(select(accounts.c.alias).where(accounts.c.id == account_id)).scalar()
        return None if alias is None else Owner(account_id, None, "root", alias, alias)
    row = conn.execute(
        select(users.c.upn, users.c.name, users.c.display_name, users.c.status, users.c.deleted_ms).where(
            users.c.id == user_id, users.c.account_id == account_id
        )
    ).first()
    if row is None:
        return None
    active = row.deleted_ms is None and row.status == "active"
    return Owner(account_id, user_id, row.upn, row.name, row.display_name, active)


def subject(rt: Runtime, owner: Owner) -> str:
    """The `sub` claim: stable for the owner, opaque (as Alibaba's, it holds neither the UID nor the name)."""
    digest = rt.master_key.mac(f"oauth-sub:{owner.account_id}:{owner.subject_key}".encode())[:20]
    return base64.b32encode(digest).decode().lower()


def claims(rt: Runtime, owner: Owner, scope: str) -> dict[str, Any]:
    """The claims about the owner that `scope` releases (ID token and userinfo alike)."""
    values: dict[str, Any] = {
        "sub": subject(rt, owner),
        "uid": owner.user_id or owner.account_id,
        "aid": owner.account_id,
        "name": owner.display_name,
        "upn": owner.upn if owner.user_id else None,
        "login_name": owner.login_name,
    }
    granted = scope.split()
    return {
        name: values[name]
        for scope_name in granted
        for name in SCOPE_CLAIMS.get(scope_name, ())
        if values[name] is not None
    }

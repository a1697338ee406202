"""Applications as Authlib clients: what each application type may do, its redirect URIs and scopes enforced
exactly as `CreateApplication`/`UpdateApplication` stored them, and its secrets checked against the sealed values
`CreateAppSecret` made."""

from __future__ import annotations

import hmac
import json
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin
from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection, Row, select

from openims.runtime import Runtime
from openims.store.tables.apps_domains import app_secrets, applications

SECRET_METHODS = ("client_secret_basic", "client_secret_post")
# Applications with users sign in through the authorization code flow; a ServerApp has no user to sign in.
USER_APPS = ("WebApp", "NativeApp")


class Client(ClientMixin):  # type: ignore[misc]
    """One application, loaded for one request."""

    def __init__(self, rt: Runtime, conn: Connection, row: Row[Any]) -> None:
        self._rt, self._conn = rt, conn
        self.id: str = row.id
        self.account_id: str = row.account_id
        self.name: str = row.name
        self.display_name: str = row.display_name
        self.app_type: str = row.app_type
        self.redirect_uris: list[str] = json.loads(row.redirect_uris)
        self.scopes: list[str] = json.loads(row.predefined_scopes)
        self.required_scopes: list[str] = json.loads(row.required_scopes)
        self.access_token_validity: int = row.access_token_validity
        self.refresh_token_validity: int = row.refresh_token_validity
        self.secret_required: bool = bool(row.secret_required)
        # The secret this request authenticated with (tokens issued are bound to it).
        self.secret_id: str | None = None

    @property
    def public(self) -> bool:
        """A NativeApp without SecretRequired authenticates with no secret (PKCE stands in)."""
        return self.app_type == "NativeApp" and not self.secret_required

    def get_client_id(self) -> str:
        return self.id

    def get_default_redirect_uri(self) -> None:
        # The redirect URI is always named in the request and must be one of the application's.
        return None

    def default_scope(self) -> str:
        """What a request that names no scope gets: the application's required scopes, else `openid`."""
        return " ".join(self.required_scopes or [s for s in self.scopes if s == "openid"])

    def get_allowed_scope(self, scope: str | None) -> str:
        # The requested scopes were checked against the application's (grants.validate_requested_scope).
        return " ".join(dict.fromkeys((scope or self.default_scope()).split()))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exactly one of the application's redirect URIs, character for character."""
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        """One of the application's secrets; the matching one is remembered, to bind the tokens to it."""
        rows = self._conn.execute(
            select(app_secrets.c.id, app_secrets.c.secret_sealed).where(app_secrets.c.app_id == self.id)
        ).all()
        for secret_id, sealed in rows:
            try:
                value = self._rt.master_key.open(sealed, secret_id)
            except InvalidTag:
                continue
            if hmac.compare_digest(value.encode(), client_secret.encode()):
                self.secret_id = secret_id
                return True
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none"
        return method in SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.app_type in USER_APPS

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token") and self.app_type in USER_APPS


def find(rt: Runtime, conn: Connection, client_id: str | None) -> Client | None:
    if not client_id or len(client_id) > 24 or not client_id.isdigit():
        return None
    row = conn.execute(select(applications).where(applications.c.id == client_id)).first()
    return Client(rt, conn, row) if row is not None else None

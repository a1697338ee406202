"""The grants and endpoints Authlib runs, with OpenIMS's storage and rules: the authorization code grant with
PKCE (required of a NativeApp, S256 only) and OpenID Connect ID tokens, the refresh token grant (rotating, a
replayed refresh token ends its whole authorization), revocation (RFC 7009) and introspection (RFC 7662).
Each reaches its request's `server.Exchange` as `self.server.x`."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core.grants import OpenIDCode

from openims.oauth import owners, signing_keys, tokens
from openims.oauth.clients import SECRET_METHODS
from openims.oauth.owners import Owner
from openims.params import has_control

MAX_NONCE = 255
# Every method; the client's own rule (clients.Client.check_endpoint_auth_method) decides which it may use.
AUTH_METHODS = [*SECRET_METHODS, "none"]


def _x(holder: Any) -> Any:
    """The request's Exchange (server.Exchange), from a grant or an endpoint."""
    return holder.server.x


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def __init__(self, request: Any, server: Any) -> None:
        super().__init__(request, server)
        self.register_hook("after_validate_authorization_request_payload", _check_nonce)

    def validate_requested_scope(self) -> None:
        """Only the application's own scopes (`PredefinedScopes`), exactly; none named means its defaults."""
        client = self.request.client
        requested = (self.request.payload.scope or "").split()
        outside = [s for s in requested if s not in client.scopes]
        if outside:
            raise InvalidScopeError(f"The application does not have the scope(s) {', '.join(outside)}.")
        if not client.get_allowed_scope(self.request.payload.scope):
            raise InvalidScopeError("The request names no scope and the application has no required scopes.")

    def save_authorization_code(self, code: str, request: Any) -> None:
        x = _x(self)
        data = request.payload.data
        tokens.save_code(
            x.conn,
            code,
            app_id=request.client.id,
            owner=request.user,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            auth_time_ms=x.auth_time_ms,
            mfa_authenticated=x.step.mfa_authenticated,
        )

    def query_authorization_code(self, code: str, client: Any) -> tokens.Code | None:
        x = _x(self)
        found = tokens.find_code(x.conn, code, client.id)
        if found is not None:
            x.step.owner = owners.load(x.conn, found.row.account_id, found.row.user_id)
            x.step.mfa_authenticated = bool(found.row.mfa_authenticated)
        return found

    def delete_authorization_code(self, authorization_code: tokens.Code) -> None:
        if not tokens.redeem_code(_x(self).conn, authorization_code):
            raise InvalidGrantError("The code was already used.")

    def authenticate_user(self, authorization_code: tokens.Code) -> Owner | None:
        owner = _x(self).step.owner
        if owner is None or not owner.active:
            raise InvalidGrantError("The user of this code was deleted or disabled.")
        return owner  # type: ignore[no-any-return]


def _check_nonce(grant: Any, redirect_uri: str) -> None:
    _refuse_unstorable_nonce(grant.request.payload.data.get("nonce"))


def _refuse_unstorable_nonce(nonce: str | None) -> None:
    """The nonce is kept with the code (and looked up for replays): it must fit the column and hold no control
    character, which PostgreSQL text cannot store."""
    if nonce and (len(nonce) > MAX_NONCE or has_control(nonce)):
        raise InvalidRequestError(f"The nonce must be at most {MAX_NONCE} printable characters.")


class Pkce(CodeChallenge):  # type: ignore[misc]
    """PKCE: required of a NativeApp, and S256 only (`plain` would hand the verifier to whoever sees the
    authorization request)."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if grant.request.client.app_type == "NativeApp" and not data.get("code_challenge"):
            raise InvalidRequestError("A NativeApp must send a PKCE code_challenge (code_challenge_method S256).")
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class OpenID(OpenIDCode):  # type: ignore[misc]
    """ID tokens: RS256 with the current signing key, Alibaba Cloud's claims for the granted scopes."""

    def __init__(self) -> None:
        super().__init__(require_nonce=False)

    def __call__(self, grant: Any) -> None:
        self.server = grant.server
        super().__call__(grant)

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        # Authlib may ask before the grant's own nonce check has run (its hook order differs between releases).
        _refuse_unstorable_nonce(nonce)
        return tokens.nonce_used(_x(self).conn, request.payload.client_id, nonce)

    def resolve_client_private_key(self, client: Any) -> dict[str, Any]:
        return _x(self).signing_key().private_jwk  # type: ignore[no-any-return]

    def get_client_algorithm(self, client: Any) -> str:
        return signing_keys.ALG

    def get_encode_header(self, client: Any) -> dict[str, str]:
        return {"alg": signing_keys.ALG, "kid": _x(self).signing_key().kid, "typ": "JWT"}

    def get_client_claims(self, client: Any) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": _x(self).issuer, "aud": client.id, "iat": now, "exp": now + client.access_token_validity}

    def generate_user_info(self, user: Owner, scope: str) -> dict[str, Any]:
        return owners.claims(_x(self).rt, user, scope)


class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    # Rotation: each refresh hands out a new refresh token and retires the one presented.
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> tokens.Token | None:
        x = _x(self)
        found = tokens.find(x.conn, refresh_token, "refresh_token")
        if found is None or not found.refresh or not found.check_client(self.request.client):
            return None
        x.step.owner = found.owner
        if found.row.revoked_reason == "rotated":
            # Presented again after it was replaced: one of the two holders stole it. End the authorization, and
            # keep that even though this request is refused.
            grant_id = found.row.grant_id
            x.on_refusal.append(lambda conn: tokens.revoke_grant(conn, grant_id, "reuse"))
            raise InvalidGrantError("The refresh token was already used; the authorization has ended.")
        why = found.why_not()
        if why is not None:
            raise InvalidGrantError(f"The refresh token is no longer valid: {why}.")
        outside = [s for s in found.get_scope().split() if s not in self.request.client.scopes]
        if outside:
            raise InvalidGrantError(f"The application no longer has the scope(s) {', '.join(outside)}.")
        return found

    def authenticate_user(self, refresh_token: tokens.Token) -> Owner | None:
        return refresh_token.owner

    def revoke_old_credential(self, refresh_token: tokens.Token) -> None:
        if not tokens.revoke(_x(self).conn, refresh_token.row.id, "rotated"):
            raise InvalidGrantError("The refresh token was already used.")


def _find(endpoint: Any, token_string: str, hint: str | None) -> tokens.Token | None:
    x = _x(endpoint)
    found = tokens.find(x.conn, token_string, hint)
    if found is not None:
        x.step.owner = found.owner
        x.step.details["tokenType"] = "refresh_token" if found.refresh else "access_token"
    return found


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> tokens.Token | None:
        return _find(self, token_string, token_type_hint)

    def revoke_token(self, token: tokens.Token, request: Any) -> None:
        """Revoking either token ends the authorization: its access and refresh tokens alike (RFC 7009 2.1)."""
        _x(self).step.details["revoked"] = tokens.revoke_grant(_x(self).conn, token.row.grant_id, "revoked")


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> tokens.Token | None:
        found = _find(self, token_string, token_type_hint)
        x = _x(self)
        if found is None:
            x.step.details["reason"] = "no such token"
        elif (why := found.why_not()) is not None:
            x.step.details["reason"] = why
        return found

    def check_permission(self, token: tokens.Token, client: Any, request: Any) -> bool:
        """An application introspects its own tokens only."""
        if not token.check_client(client):
            _x(self).step.details["reason"] = "the token belongs to another application"
            return False
        return True

    def introspect_token(self, token: tokens.Token) -> dict[str, Any]:
        x = _x(self)
        owner = token.owner
        assert owner is not None  # an inactive token never gets here
        return {
            "active": True,
            "client_id": token.row.app_id,
            "token_type": "refresh_token" if token.refresh else "Bearer",
            "scope": token.get_scope(),
            "sub": owners.subject(x.rt, owner),
            "username": owner.upn,
            "aud": token.row.app_id,
            "iss": x.issuer,
            "iat": token.row.issued_ms // 1000,
            "exp": token.expires_ms() // 1000,
        }

"""An OAuth client built with Authlib, and a person at a browser driven over HTTP with the console's own forms
(sign-in, consent), for the authorization server's tests."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from alibabacloud_ims20190815 import models as m
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support import Account

PASSWORD = "Oauth-user-pass-42"
CALLBACK = "http://127.0.0.1:9/callback"


def user_with_password(acct: Account, name: str) -> str:
    upn = acct.upn(name)
    ims = acct.ims()
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=name.title()))
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=PASSWORD))
    return upn


def application(acct: Account, app_type: str, scopes: str = "openid;profile;aliuid", uris: str = CALLBACK) -> str:
    created = acct.ims().create_application(
        m.CreateApplicationRequest(
            app_name=f"app-{secrets.token_hex(3)}",
            display_name="Test app",
            app_type=app_type,
            redirect_uris=uris,
            predefined_scopes=scopes,
        )
    )
    return str(created.body.application.app_id)


def secret_of(acct: Account, app_id: str) -> tuple[str, str]:
    made = acct.ims().create_app_secret(m.CreateAppSecretRequest(app_id=app_id)).body.app_secret
    return str(made.app_secret_id), str(made.app_secret_value)


def hidden_fields(html: str) -> dict[str, str]:
    return {
        unescape(name): unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)
    }


@dataclass
class Browser:
    """A person's browser: a cookie jar that follows the server's redirects until it is sent to the client."""

    acct: Account
    http: httpx.Client

    @classmethod
    def open(cls, acct: Account) -> Browser:
        return cls(acct, httpx.Client(base_url=acct.server.url, follow_redirects=False, timeout=30))

    def walk(self, url: str) -> httpx.Response:
        """GET `url` and follow redirects that stay on the server; returns the last response."""
        response = self.http.get(url)
        while response.status_code in (302, 303) and self._ours(response.headers["location"]):
            response = self.http.get(urljoin(str(response.url), response.headers["location"]))
        return response

    def _ours(self, location: str) -> bool:
        return location.startswith(("/", self.acct.server.url))

    def submit(self, page: httpx.Response, action: str, **fields: str) -> httpx.Response:
        """Send the page's form (its hidden fields and `fields`), then follow the server's redirects."""
        response = self.http.post(action, data={**hidden_fields(page.text), **fields})
        while response.status_code in (302, 303) and self._ours(response.headers["location"]):
            response = self.http.get(urljoin(str(response.url), response.headers["location"]))
        return response

    def sign_in(self, page: httpx.Response, login: str, password: str = PASSWORD) -> httpx.Response:
        assert "Sign in" in page.text and 'name="login"' in page.text, page.text[:300]
        return self.submit(page, "/console/signin", login=login, password=password)

    def consent(self, page: httpx.Response, decision: str = "allow") -> httpx.Response:
        assert 'name="decision"' in page.text, page.text[:500]
        return self.submit(page, "/console/oauth2/authorize", decision=decision)


def redirected_to_client(response: httpx.Response) -> dict[str, str]:
    """The query of the redirect that sent the browser back to the client."""
    assert response.status_code in (302, 303), (response.status_code, response.text[:500])
    location = response.headers["location"]
    assert location.startswith(CALLBACK), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def discovery(acct: Account) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{acct.server.url}/.well-known/openid-configuration").json()
    return found


def client(acct: Account, app_id: str, secret: str | None = None, scope: str = "openid profile aliuid") -> OAuth2Client:
    return OAuth2Client(
        client_id=app_id,
        client_secret=secret,
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
        redirect_uri=CALLBACK,
        scope=scope,
        code_challenge_method="S256",
        timeout=30,
    )


def verified_id_token(acct: Account, id_token: str, app_id: str, nonce: str) -> dict[str, Any]:
    """The ID token's claims, its signature checked with the published key set and iss/aud/exp/nonce with
    joserfc's claims registry, as a relying party does."""
    meta = discovery(acct)
    keys = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": meta["issuer"]},
        aud={"essential": True, "value": app_id},
        nonce={"essential": True, "value": nonce},
        exp={"essential": True},
        sub={"essential": True},
    ).validate(token.claims)
    return dict(token.claims)


def authorize_url(acct: Account, oauth: OAuth2Client, nonce: str | None = None, **extra: str) -> tuple[str, str, str]:
    """(authorization URL, code_verifier, nonce) of a new PKCE authorization request."""
    verifier, nonce = secrets.token_urlsafe(48), nonce or secrets.token_urlsafe(12)
    url, _state = oauth.create_authorization_url(
        discovery(acct)["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **extra
    )
    return url, verifier, nonce

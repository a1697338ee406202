"""Authlib's authorization server, bound to one HTTP request: its database transaction, the issuer, and the
`Step` its event is built from. Every request runs `exchange`: the protocol work inside a savepoint that a
refusal rolls back (nothing half-written), then the step's event in the same transaction, then commit."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Payload, OAuth2Request
from sqlalchemy import Connection

from openims import clock, ids
from openims.audit.event import Origin
from openims.federation.sp_metadata import public_url
from openims.oauth import clients, events, grants, signing_keys, tokens
from openims.oauth.events import Step
from openims.oauth.owners import Owner
from openims.runtime import Runtime

log = logging.getLogger("openims.oauth")

Answer = tuple[int, Any, list[tuple[str, str]]]


def issuer(rt: Runtime) -> str:
    """The issuer: where users and clients reach this server (OPENIMS_PUBLIC_URL)."""
    return public_url(rt.settings)


class Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class Incoming(OAuth2Request):  # type: ignore[misc]
    """An HTTP request as Authlib reads it: query and form parameters kept apart (a token request's secrets are
    read from the form only), repeated parameters kept (Authlib refuses them)."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self._args = dict(query)
        self._form = dict(form)
        self.payload = Payload(query + form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass
class Exchange:
    """One request's share of the server: its transaction, its step, and what to do if it is refused."""

    rt: Runtime
    conn: Connection
    step: Step
    # When the sign-in behind an authorization happened, and whether it passed MFA (authorization endpoint).
    auth_time_ms: int = 0
    # Changes that must survive the refusal the request ends in (a replayed refresh token ends its family).
    on_refusal: list[Callable[[Connection], None]] = field(default_factory=list)
    _key: signing_keys.SigningKey | None = None

    @property
    def issuer(self) -> str:
        return issuer(self.rt)

    def signing_key(self) -> signing_keys.SigningKey:
        if self._key is None:
            self._key = signing_keys.current(self.rt, self.conn)
        return self._key


class Server(AuthorizationServer):  # type: ignore[misc]
    """The authorization server for one request."""

    def __init__(self, x: Exchange) -> None:
        super().__init__()
        self.x = x
        self.register_token_generator("default", self._generate_token)
        self.register_grant(grants.CodeGrant, [grants.Pkce(required=True), grants.OpenID()])
        self.register_grant(grants.RefreshGrant)
        self.register_endpoint(grants.Revocation)
        self.register_endpoint(grants.Introspection)

    def query_client(self, client_id: str | None) -> clients.Client | None:
        client = clients.find(self.x.rt, self.x.conn, client_id)
        if client is not None:
            self.x.step.application(client.account_id, client.id, client.name)
        return client

    def _generate_token(
        self,
        grant_type: str,
        client: clients.Client,
        user: Owner | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": ids.oauth_token(),
            "expires_in": expires_in or client.access_token_validity,
            "scope": scope or "",
        }
        if include_refresh_token:
            token["refresh_token"] = ids.oauth_token()
        return token

    def save_token(self, token: dict[str, Any], request: Incoming) -> None:
        client: clients.Client = request.client
        previous: tokens.Token | None = request.refresh_token
        owner: Owner = request.user
        if previous is not None:
            # A refresh keeps the authorization's sign-in time and its refresh tokens' absolute expiry.
            auth_time, grant_id, refresh_expires = (
                previous.row.auth_time_ms,
                previous.row.grant_id,
                previous.row.refresh_expires_ms,
            )
        else:
            code: tokens.Code = request.authorization_code
            auth_time, grant_id = code.row.auth_time_ms, None
            refresh_expires = clock.now_ms() + client.refresh_token_validity * 1000
        tokens.issue(
            self.x.conn,
            token,
            app_id=client.id,
            secret_id=client.secret_id,
            owner=owner,
            auth_time_ms=auth_time,
            grant_id=grant_id,
            refresh_expires_ms=refresh_expires,
        )
        self.x.step.details["scope"] = token.get("scope", "")

    def create_oauth2_request(self, request: Incoming) -> Incoming:
        return request

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Answer:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib's signals: the steps are recorded from the exchange's Step instead."""


def refusal(answer: Answer) -> tuple[str, str] | None:
    """The OAuth error of a JSON answer, as an event's (errorCode, errorMessage); None for success."""
    status, body, _ = answer
    if status < 400:
        return None
    body = body if isinstance(body, dict) else {}
    return str(body.get("error", "invalid_request")), str(body.get("error_description", ""))[:500]


def exchange(
    rt: Runtime,
    step: Step,
    origin: Origin,
    work: Callable[[Server], Answer],
    refused: Callable[[Answer], tuple[str, str] | None] = refusal,
    auth_time_ms: int = 0,
) -> Answer:
    """Run `work` against a server bound to a new transaction and record its step: the step's changes are kept
    only when it succeeded, its event always (in the application's account, when an application was named)."""
    with rt.db.transaction() as conn:
        x = Exchange(rt, conn, step, auth_time_ms=auth_time_ms)
        savepoint = conn.begin_nested()
        try:
            answer = work(Server(x))
        except BaseException:
            savepoint.rollback()
            raise
        error = refused(answer)
        if error is None:
            savepoint.commit()
        else:
            savepoint.rollback()
            for change in x.on_refusal:
                change(conn)
        if events.record(rt, conn, step, origin, error) is None and error is not None and not step.silent:
            log.info("OAuth %s refused for an unknown client: %s", step.name, error[0])
    return answer

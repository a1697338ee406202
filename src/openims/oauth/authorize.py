"""The authorization endpoint's decisions, for the console page that asks the signed-in user
(`console/routes_oauth.py`): refuse a request the application could not have made (unknown client, a redirect URI
not exactly one of its own: shown, never redirected to), ask for consent once per application, then send the
browser back to the application with a code, or with `access_denied`. Each answer is an `OAuthAuthorize` event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2.rfc6749.errors import AccessDeniedError, OAuth2Error

from openims.actions.applications import SCOPES
from openims.audit.event import Origin
from openims.oauth import consents, owners
from openims.oauth.events import AUTHORIZE, Step
from openims.oauth.server import Answer, Incoming, Server, exchange, refusal
from openims.runtime import Runtime

ALLOW, DENY = "allow", "deny"


@dataclass(frozen=True)
class Signin:
    """Who is signed in to the console, and how."""

    account_id: str
    user_id: str | None
    mfa_authenticated: bool
    auth_time_ms: int


@dataclass
class Outcome:
    """Send the browser to `redirect`, or ask for consent (`consent`), or show `error` (nothing to redirect to)."""

    redirect: str | None = None
    error: str | None = None
    consent: bool = False
    app_name: str = ""
    app_type: str = ""
    redirect_uri: str = ""
    # (scope, what it releases) for the consent page.
    scopes: list[tuple[str, str]] = field(default_factory=list)


def _location(answer: Answer) -> str | None:
    return dict(answer[2]).get("Location")


def _refused(answer: Answer) -> tuple[str, str] | None:
    """An authorization answer's refusal: a redirect carrying `error`, or an error page."""
    location = _location(answer)
    if answer[0] == 200:
        return None  # the consent page
    if location is None:
        return refusal(answer)
    query = parse_qs(urlsplit(location).query)
    if "error" in query:
        return query["error"][0], query.get("error_description", [""])[0][:500]
    return None


def decide(rt: Runtime, request: Incoming, signin: Signin, origin: Origin, decision: str | None) -> Outcome:
    """Answer an authorization request (`decision`: the user's answer on the consent page, None before it)."""
    step = Step(AUTHORIZE, mfa_authenticated=signin.mfa_authenticated)
    outcome = Outcome()

    def work(server: Server) -> Answer:
        x = server.x
        owner = owners.load(x.conn, signin.account_id, signin.user_id)
        step.owner = owner
        try:
            grant = server.get_consent_grant(request, end_user=owner)
        except OAuth2Error as err:
            if err.redirect_uri:
                return server.handle_error_response(request, err)  # type: ignore[no-any-return]
            return err.status_code, dict(err.get_body()), []
        client = grant.client
        outcome.app_name, outcome.app_type, outcome.redirect_uri = (
            client.display_name,
            client.app_type,
            grant.redirect_uri,
        )
        if owner is None or not owner.active:
            return _deny(server, request, grant, "Your identity can no longer sign in to applications.")
        if owner.account_id != client.account_id:
            return _deny(
                server, request, grant, "Only users of the account that owns the application may sign in to it."
            )
        scope = grant.request.scope
        step.details["scope"] = scope
        asked_again = "consent" in (request.payload.data.get("prompt") or "").split()
        if decision is None and (asked_again or not consents.covers(x.conn, client.id, owner, scope)):
            outcome.consent = step.silent = True
            outcome.scopes = [(s, SCOPES.get(s, ("",))[0]) for s in scope.split()]
            return 200, {}, []
        if decision not in (None, ALLOW):
            return _deny(server, request, grant, "The user did not allow the application to sign in.")
        if decision == ALLOW:
            consents.store(x.conn, client.id, owner, scope)
        step.details["consent"] = "given" if decision == ALLOW else "stored"
        return server.create_authorization_response(request, grant_user=owner, grant=grant)  # type: ignore[no-any-return]

    answer = exchange(rt, step, origin, work, _refused, auth_time_ms=signin.auth_time_ms)
    if outcome.consent:
        return outcome
    location = _location(answer)
    if location is not None:
        outcome.redirect = location
    else:
        error = _refused(answer)
        outcome.error = (error[1] or error[0]) if error else "The authorization request is not valid."
    return outcome


def _deny(server: Server, request: Incoming, grant: Any, why: str) -> Answer:
    return server.handle_error_response(  # type: ignore[no-any-return]
        request, AccessDeniedError(why, redirect_uri=grant.redirect_uri, state=request.payload.state)
    )

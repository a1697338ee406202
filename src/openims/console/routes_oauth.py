"""The authorization endpoint's page (`/oauth2/v1/auth` sends the browser here): the user signs in with the
console's own sign-in (password, MFA, or whatever the sign-in page offers) and comes back, consents once per
application, and is sent back to the application. The decisions are `openims.oauth.authorize`'s."""

from __future__ import annotations

from urllib.parse import urlsplit

from authlib.oauth2.rfc6749.errors import InsecureTransportError
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from openims.console.web import SECURITY_HEADERS, Page, endpoint
from openims.oauth import authorize
from openims.oauth.routes import origin_of
from openims.oauth.server import Incoming

# Fields of the consent form that are the console's, not the authorization request's.
FORM_FIELDS = ("csrf_token", "decision")


def _redirect_origin(uri: str) -> str:
    """What the consent form's CSP must allow the browser to be sent on to (Chromium applies form-action to the
    redirect that follows a form)."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"


def _incoming(page: Page, method: str, query: list[tuple[str, str]], form: list[tuple[str, str]]) -> Incoming | None:
    """The request as Authlib reads it; None over plain HTTP to another host than this one's loopback."""
    try:
        return Incoming(method, str(page.request.url), page.request.headers, query, form)
    except InsecureTransportError:
        return None


def _insecure(page: Page) -> Response:
    return page.render(
        "error.html",
        status=400,
        title="The application's sign-in request was refused",
        message="OAuth needs HTTPS: reach this server over HTTPS (a TLS proxy named in OPENIMS_TRUSTED_PROXIES).",
    )


def _answer(page: Page, request: Incoming | None, decision: str | None) -> Response:
    if request is None:
        return _insecure(page)
    session = page.session
    assert session is not None
    signin = authorize.Signin(session.account_id, session.user_id, session.mfa_authenticated, session.created_ms)
    outcome = authorize.decide(page.rt, request, signin, origin_of(page.request), decision)
    if outcome.redirect is not None:
        return RedirectResponse(outcome.redirect, status_code=303)
    if outcome.error is not None:
        return page.render(
            "error.html", status=400, title="The application's sign-in request was refused", message=outcome.error
        )
    response = page.render(
        "oauth_consent.html",
        title=f"Sign in to {outcome.app_name}",
        outcome=outcome,
        params=[(k, v) for k, v in request.payload.data.items() if k not in FORM_FIELDS],
    )
    csp = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "form-action 'self'", f"form-action 'self' {_redirect_origin(outcome.redirect_uri)}"
    )
    response.headers["Content-Security-Policy"] = csp
    return response


@endpoint()
def authorize_page(page: Page) -> Response:
    """An authorization request: answered at once when the user consented before, else the consent form."""
    return _answer(page, _incoming(page, "GET", list(page.request.query_params.multi_items()), []), None)


@endpoint()
def authorize_decision(page: Page) -> Response:
    """The consent form's answer: the authorization request again (validated again), and the user's decision."""
    form = [(k, v) for k, v in page.form.items() if k not in FORM_FIELDS]
    decision = authorize.ALLOW if page.form.get("decision") == authorize.ALLOW else authorize.DENY
    return _answer(page, _incoming(page, "POST", [], form), decision)


routes = [
    Route("/oauth2/authorize", authorize_page, methods=["GET"]),
    Route("/oauth2/authorize", authorize_decision, methods=["POST"]),
]

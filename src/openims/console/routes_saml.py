"""SAML user SSO in the console (openims.federation.saml_sso):

- `/saml/metadata/{account}`: OpenIMS's SP metadata for the account, public as SP metadata is (an identity
  provider fetches it from the MetadataUrl that GetSamlSsoProperties gives); the same document as that action's.
- `/saml/login?account=`: "Sign in with your identity provider" (SP-initiated): sends the browser to the IdP
  with an AuthnRequest.
- `/saml/acs/{account}`: the Assertion Consumer Service, where the IdP's page posts the SAMLResponse (both
  flows); a verified Response for a RAM user who may sign in opens that user's console session.
- `/settings/sso`: what to give the IdP (SP entity ID, ACS and metadata URLs) and the state of SSO.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from openims.accounts import alias_of
from openims.audit.event import Origin
from openims.console import sessions
from openims.console.routes_signin import start_session
from openims.console.web import SECURITY_HEADERS, Page, endpoint, local_path, url
from openims.federation import saml_sso
from openims.federation.sp_metadata import service_provider
from openims.runtime import Runtime
from openims.store.schema import accounts


def _account_exists(rt: Runtime, account_id: str) -> bool:
    with rt.db.read() as conn:
        return conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first() is not None


async def sp_metadata(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    account_id = request.path_params["account_id"]
    if not (account_id.isdigit() and await run_in_threadpool(_account_exists, rt, account_id)):
        return PlainTextResponse("No such account.", status_code=404)
    return Response(service_provider(rt.settings, account_id).metadata_xml(), media_type="application/samlmetadata+xml")


def _unavailable(page: Page, status: int, message: str, account: str = "") -> Response:
    return page.render("saml_refused.html", status=status, title="Single sign-on", message=message, account=account)


@endpoint(stages=None)
def login(page: Page) -> Response:
    """SP-initiated sign-in: store an AuthnRequest's ID and send the browser to the identity provider. The
    page moves on by itself (meta refresh): a 303 after the sign-in form would break its form-action policy."""
    ref = page.q("account")
    if not ref:
        return page.redirect("/signin")
    account_id = saml_sso.find_account(page.rt, ref)
    outbound = saml_sso.start(page.rt, account_id, local_path(page.q("next"))) if account_id else None
    if outbound is None:
        return _unavailable(page, 404, f"No account {ref[:64]!r} signs its users in through an identity provider.")
    response = page.render("saml_login.html", title="Sign in with your identity provider", outbound=outbound)
    if outbound.binding != saml_sso.HTTP_REDIRECT:
        # The POST binding's form goes to the IdP: allow that one origin as a form target on this page.
        target = urlsplit(outbound.url)
        response.headers["Content-Security-Policy"] = SECURITY_HEADERS["Content-Security-Policy"].replace(
            "form-action 'self'", f"form-action 'self' {target.scheme}://{target.netloc}"
        )
    return response


@endpoint(stages=None, foreign_post=True)
def acs(page: Page) -> Response:
    """Accept the IdP's POSTed Response: a console session for the RAM user it names, or a refusal page."""
    account_id = page.request.path_params["account_id"]
    if not account_id.isdigit() or len(account_id) > 16 or not _account_exists(page.rt, account_id):
        return _unavailable(page, 404, "No such account.")
    origin = Origin(page.source_ip, page.user_agent, page.scheme)
    result = saml_sso.sign_in(page.rt, account_id, page.form.get("SAMLResponse", ""), origin)
    if not result.success:
        return _unavailable(page, 403, result.error_message or "The sign-in was refused.", account_id)
    assert result.user_id and result.user_principal_name
    # SP-initiated: the page asked for at the start; IdP-initiated: the RelayState the IdP was set up with.
    target = local_path(result.next_path or page.f("RelayState"))
    try:
        with page.rt.db.transaction() as conn:
            token = sessions.create(
                conn,
                page.rt,
                account_id=account_id,
                user_id=result.user_id,
                user_name=result.user_principal_name,
                stages=[],
                mfa_authenticated=False,
                lifetime_ms=result.session_ms,
                source_ip=page.source_ip,
                user_agent=page.user_agent,
            )
    except sessions.AccessEnded:
        return _unavailable(page, 403, "Your console access was removed while you were signing in.", account_id)
    return start_session(page, token, target)


@endpoint()
def settings_page(page: Page) -> Response:
    """The SSO tab of Settings: the SP facts to enter in the IdP, and the IdP settings in force."""
    assert page.session is not None
    settings: dict[str, Any] = page.call("GetSamlSsoSettings")["SamlSsoSettings"]
    with page.rt.db.read() as conn:
        alias = alias_of(conn, page.session.account_id) or page.session.account_id
    base = service_provider(page.rt.settings, page.session.account_id).acs_url.split("/console/", 1)[0]
    return page.render(
        "settings_sso.html",
        section="settings",
        title="Single sign-on",
        sso=settings,
        sp=settings["ServiceProvider"],
        signin_url=base + url("/saml/login", account=alias),
    )


routes = [
    Route("/saml/metadata/{account_id}", sp_metadata, methods=["GET"]),
    Route("/saml/login", login, methods=["GET"]),
    Route("/saml/acs/{account_id}", acs, methods=["POST"]),
    Route("/settings/sso", settings_page, methods=["GET"]),
]

"""What every console page shares: the request wrapper (session, CSRF, security headers), calling an action
exactly as the API does (same parsing, authorization and audit event, as a `ConsoleOperation`), and
rendering Jinja2 templates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from openims import clock, ids
from openims.actions import registry
from openims.api import dispatch, protocol
from openims.api.protocol import RpcRequest
from openims.console import csrf, sessions
from openims.console.sessions import Session
from openims.errors import ApiError
from openims.runtime import Runtime

PREFIX = "/console"
HERE = Path(__file__).parent
ALL_STAGES = (sessions.ACTIVE, sessions.MFA, sessions.BIND_MFA, sessions.CHANGE_PASSWORD)
# Pages hold account data and one-time secrets: never cached, never framed, no foreign script or style.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# The main menu: (section, label, path, the action that lists it, its API version).
NAV = (
    ("home", "Overview", "/", None, ""),
    ("users", "Users", "/users", "ListUsers", registry.IMS.version),
    ("groups", "Groups", "/groups", "ListGroups", registry.IMS.version),
    ("keys", "AccessKeys", "/access-keys", "ListAccessKeys", registry.IMS.version),
    ("applications", "Applications", "/applications", "ListApplications", registry.IMS.version),
    ("events", "Event history", "/events", "LookupEvents", registry.ACTIONTRAIL.version),
    ("insights", "Insights", "/insights", "LookupInsightEvents", registry.ACTIONTRAIL.version),
    ("integrity", "Integrity", "/integrity", "LookupEvents", registry.ACTIONTRAIL.version),
    ("alerts", "Alerts", "/alerts", "ListAlertRules", registry.ACTIONTRAIL.version),
    ("query", "SQL query", "/query", "GetAdvancedQueryResult", registry.ACTIONTRAIL.version),
    ("settings", "Settings", "/settings/security", "GetSecurityPreference", registry.IMS.version),
)
# Where a session that may not do everything yet is sent.
STAGE_PAGES = {
    sessions.MFA: "/signin/mfa",
    sessions.BIND_MFA: "/signin/bind-mfa",
    sessions.CHANGE_PASSWORD: "/signin/change-password",
}


def url(path: str, **query: Any) -> str:
    """A console URL: the prefix, the path, and the query without empty values."""
    params = {k: v for k, v in query.items() if v not in (None, "")}
    return PREFIX + path + ("?" + urlencode(params) if params else "")


def _fmt_time(value: str | int | None) -> str:
    """`2026-11-24T08:00:00Z` -> `2026-11-24 08:00:00 UTC`."""
    if value in (None, ""):
        return ""
    text = clock.iso(value) if isinstance(value, int) else str(value)
    if "." in text:  # a range's exact end: shown to the second
        text = text.split(".", 1)[0] + "Z"
    return text.replace("T", " ").replace("Z", " UTC")


templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals.update(url=url, quote=lambda s: quote(str(s), safe=""))
templates.filters["when"] = _fmt_time


def _change_value(value: Any) -> str:
    """An attribute's value in a resource's history: lists as comma-separated items, absence as a dash."""
    if value is None:
        return "–"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value) if value != "" else "(empty)"


templates.filters["change_value"] = _change_value


class Refused(Exception):
    """A request the console refuses outright (403), such as a form without its CSRF token."""


@dataclass
class Page:
    """One console request, as its handler sees it (the handler runs in a worker thread)."""

    request: Request
    rt: Runtime
    form: dict[str, str]
    session: Session | None
    # (name, value, Max-Age in seconds or None for a browser-session cookie), sent with the response.
    set_cookies: list[tuple[str, str, int | None]] = field(default_factory=list)
    clear_cookies: list[str] = field(default_factory=list)
    # What `may` found, by (action, resource parameters).
    _may: dict[tuple[str, tuple[tuple[str, Any], ...]], bool] = field(default_factory=dict)

    def set_cookie(self, name: str, value: str, max_age: int | None = None) -> None:
        self.set_cookies.append((name, value, max_age))

    @property
    def source_ip(self) -> str:
        return protocol.client_ip(self.request.scope)

    @property
    def user_agent(self) -> str:
        return self.request.headers.get("user-agent", "")[:512]

    @property
    def scheme(self) -> str:
        # A trusted proxy's X-Forwarded-Proto is already in the scope (server.serve); no one else's counts.
        return "https" if self.request.url.scheme == "https" else "http"

    def q(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default).strip()

    def f(self, name: str, default: str = "") -> str:
        return self.form.get(name, default).strip()

    def _request(
        self, name: str, params: dict[str, Any] | None, version: str, extra: dict[str, str] | None = None
    ) -> RpcRequest:
        raw = {k: _wire(v) for k, v in (params or {}).items() if v is not None}
        return RpcRequest(
            method="POST",
            path=self.request.url.path,
            raw_query="",
            body=b"",
            headers={"user-agent": self.user_agent},
            params={**raw, **(extra or {})},
            action=name,
            version=version,
            source_ip=self.source_ip,
            user_agent=self.user_agent,
            host=self.request.headers.get("host", ""),
            request_id=ids.request_id(),
            scheme=self.scheme,
        )

    def call(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        version: str = registry.IMS.version,
        extra: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Run an action as the signed-in principal, exactly like a signed API request: the same parameter
        validation, authorization and event (eventType ConsoleOperation); failures are recorded too.
        `extra` adds request parameters that the event records but the action ignores."""
        assert self.session is not None
        return dispatch.execute(self.rt, self._request(name, params, version, extra), self.session.principal())

    def _nav(self) -> list[tuple[str, str, str]]:
        """The main menu: the sections whose list the signed-in principal may read."""
        if self.session is None or self.session.stage != sessions.ACTIVE:
            return []
        return [
            (key, label, path)
            for key, label, path, action, version in NAV
            if action is None or self.may(action, _version=version)
        ]

    def may(self, name: str, _version: str = registry.IMS.version, **params: Any) -> bool:
        """Whether the signed-in principal may call `name` on these resources: a page offers only the
        changes its viewer may make (the change is authorized again, and audited, when made)."""
        assert self.session is not None
        key = (name, tuple(sorted(params.items())))
        if key not in self._may:
            self._may[key] = self.session.is_root or dispatch.allowed(
                self.rt, self._request(name, params, _version), self.session.principal()
            )
        return self._may[key]

    def attempt(
        self, name: str, params: dict[str, Any] | None = None, version: str = registry.IMS.version
    ) -> tuple[dict[str, Any] | None, ApiError | None]:
        """`call`, returning the error instead of raising it (for the parts of a page that may be denied)."""
        try:
            return self.call(name, params, version), None
        except ApiError as err:
            return None, err

    def change(self, back: str, action: str, params: dict[str, Any], done: str, done_to: str | None = None) -> Response:
        """Run one change, then go to `done_to` (by default back to `back`) saying what happened, or back
        saying why it did not."""
        try:
            self.call(action, params)
        except ApiError as err:
            return self.failed(back, action, err)
        return self.redirect(done_to or back, done)

    def failed(self, back: str, action: str, err: ApiError) -> Response:
        """A refused change: a denial is the "Not authorized" page (403, naming the RAM action), any other
        error goes back to the form's page with the reason."""
        if err.code.startswith("NoPermission"):
            return error_page(self, err)
        return self.redirect(back, f"{action} failed: {err.message} ({err.code})")

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        flash = None
        if self.session is not None and self.session.flash:
            flash = sessions.take_flash(self.rt, self.session)
        body = templates.get_template(template).render(
            session=self.session,
            csrf_token=self.session.csrf_token if self.session else "",
            flash=flash,
            request_path=self.request.url.path,
            may=self.may,
            nav=self._nav(),
            **context,
        )
        return HTMLResponse(body, status_code=status)

    def redirect(self, path: str, flash: str | None = None) -> RedirectResponse:
        """Post/redirect/get: 303 to a console path, with an optional message for the next page."""
        if flash and self.session is not None:
            sessions.set_flash(self.rt, self.session, flash)
        return RedirectResponse(path if path.startswith(PREFIX) else PREFIX + path, status_code=303)


def _wire(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def error_page(page: Page, err: ApiError) -> HTMLResponse:
    """An action's refusal as a page: NoPermission says plainly what is missing."""
    title = "Not authorized" if err.code.startswith("NoPermission") else "The request failed"
    return page.render("error.html", status=err.status, title=title, error=err)


Handler = Callable[[Page], Response]


Endpoint = Callable[[Request], Awaitable[Response]]


def endpoint(
    stages: tuple[str, ...] | None = (sessions.ACTIVE,), *, foreign_post: bool = False
) -> Callable[[Handler], Endpoint]:
    """Wrap a page handler: load the session (sending visitors without one to sign-in, and unfinished
    sign-ins to their next step), refuse POSTs without the right CSRF token, add the security headers.
    `stages=None` marks the sign-in form itself, protected by the pre-session token instead.
    `foreign_post` marks the one page another site posts to by design, the SAML ACS: what it accepts is
    signed by the identity provider, which stands in for the CSRF token."""

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint_(request: Request) -> Response:
            form: dict[str, str] = {}
            if request.method == "POST":
                data = await request.form()
                form = {k: v for k, v in data.items() if isinstance(v, str)}
            response = await run_in_threadpool(_run, handler, request, form, stages, foreign_post)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        endpoint_.__name__ = handler.__name__
        endpoint_.__doc__ = handler.__doc__
        return endpoint_

    return wrap


def _run(
    handler: Handler, request: Request, form: dict[str, str], stages: tuple[str, ...] | None, foreign_post: bool
) -> Response:
    rt: Runtime = request.app.state.runtime
    session = sessions.load(rt, request.cookies.get(sessions.COOKIE))
    page = Page(request, rt, form, session)
    if stages is not None:
        if session is None:
            # After sign-in, back to the page asked for, or for a form to the page it was on (the POST itself
            # is not replayed: the form is sent again by hand, once the person has seen it).
            back = (
                _referring_path(request)
                if request.method == "POST"
                else str(request.url.path) + ("?" + request.url.query if request.url.query else "")
            )
            return RedirectResponse(
                url("/signin", next=local_path(back), ended="1" if request.method == "POST" else None), status_code=303
            )
        if session.stage not in stages:
            return RedirectResponse(PREFIX + STAGE_PAGES.get(session.stage, "/"), status_code=303)
    if request.method == "POST" and not foreign_post:
        try:
            _same_origin(request)
            if stages is None:
                csrf.check_presession(rt, form.get(csrf.FIELD), request.cookies.get(csrf.PRE_COOKIE))
            else:
                assert session is not None
                csrf.check(form.get(csrf.FIELD), session.csrf_token)
        except Refused as foreign:
            return _refused(page, _foreign_origin_message(request, str(foreign)))
        except csrf.CsrfError:
            return _refused(
                page,
                "The form's security token is missing or wrong, so the request was refused. "
                "Reload the page and try again.",
            )
    try:
        response = handler(page)
    except ApiError as err:
        response = error_page(page, err)
    except sessions.AccessEnded:
        response = RedirectResponse(url("/signin"), status_code=303)
    secure = page.scheme == "https"
    for name, value, max_age in page.set_cookies:
        response.set_cookie(name, value, max_age=max_age, **sessions.cookie_options(secure))
    for name in page.clear_cookies:
        response.delete_cookie(name, path=sessions.PATH, httponly=True, samesite="lax", secure=secure)
    return response


def _origin(request: Request) -> str:
    """This console's origin as a browser names it (the scheme as a trusted proxy reports it)."""
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def _same_origin(request: Request) -> None:
    """A browser names the page a POST came from; one from another site, or from this host over another
    scheme, is refused even with a token."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin != _origin(request):
        raise Refused(origin[:200])


def _foreign_origin_message(request: Request, origin: str) -> str:
    message = f"The form was sent from another site ({origin}), so the request was refused."
    if origin.split("://", 1)[-1] == request.headers.get("host", ""):
        # The usual cause: a TLS proxy in front whose X-Forwarded-Proto is not believed.
        message += (
            f" This console was reached over {request.url.scheme}: if a TLS proxy serves it, list the proxy "
            "in OPENIMS_TRUSTED_PROXIES."
        )
    return message


def _referring_path(request: Request) -> str:
    """The console page a form was sent from, when the browser says so and it is this console's."""
    referer = request.headers.get("referer", "")
    if referer.startswith(_origin(request) + PREFIX + "/"):
        return referer[len(_origin(request)) :]
    return PREFIX + "/"


def _refused(page: Page, message: str) -> HTMLResponse:
    response = page.render("error.html", status=403, title="Request refused", message=message)
    return response


def local_path(path: str) -> str:
    """Only a console path may be a redirect target (no open redirect)."""
    if path.startswith(PREFIX + "/") and not path.startswith("//") and "\\" not in path:
        return path
    return PREFIX + "/"

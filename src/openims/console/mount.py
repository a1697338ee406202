"""The console as an ASGI app, and its place under /console of the server's app."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Match, Route
from starlette.staticfiles import StaticFiles

from openims.console import (
    routes_account,
    routes_alerts,
    routes_applications,
    routes_events,
    routes_groups,
    routes_history,
    routes_insights,
    routes_integrity,
    routes_oauth,
    routes_query,
    routes_saml,
    routes_settings,
    routes_signin,
    routes_users,
)
from openims.console.web import HERE, SECURITY_HEADERS, templates
from openims.runtime import Runtime


def build(rt: Runtime) -> Starlette:
    """The console as its own ASGI app (mounted at /console)."""

    routes = [
        *routes_signin.routes,
        *routes_account.routes,
        *routes_events.routes,
        *routes_insights.routes,
        *routes_integrity.routes,
        *routes_alerts.routes,
        *routes_query.routes,
        *routes_users.routes,
        *routes_groups.routes,
        *routes_history.routes,
        *routes_settings.routes,
        *routes_saml.routes,
        *routes_oauth.routes,
        *routes_applications.routes,
    ]
    app = Starlette(routes=routes, exception_handlers={404: _no_such_page, 405: _no_such_page})
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.state.runtime = rt
    return app


async def _no_such_page(request: Request, exc: Exception) -> Response:
    """An unknown console address or method: a console page with the console's headers, not bare text."""

    status = exc.status_code if isinstance(exc, HTTPException) else 404
    message = (
        "There is no such page in the console."
        if status == 404
        else f"This console page does not accept {request.method} requests."
    )
    body = templates.get_template("error.html").render(
        session=None,
        csrf_token="",
        flash=None,
        request_path=request.url.path,
        title="Page not found" if status == 404 else "Method not allowed",
        message=message,
    )
    headers = dict(SECURITY_HEADERS)
    if status == 405:  # every method some route of this path takes (Starlette names only the first route's)
        headers["Allow"] = ", ".join(
            sorted(
                {
                    method
                    for route in request.app.routes
                    if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE
                    for method in route.methods or ()
                }
            )
        )
    return HTMLResponse(body, status_code=status, headers=headers)


def mount(app: Starlette, rt: Runtime) -> None:
    """Serve the console under /console of the API app (and send /console to /console/)."""

    async def to_console(_request: Request) -> Response:
        return RedirectResponse("/console/", status_code=308)

    app.router.routes.append(Route("/console", to_console, methods=["GET"]))
    app.mount("/console", build(rt))

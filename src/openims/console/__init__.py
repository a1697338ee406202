"""The web console, served under /console: sign-in (password, MFA), the event history, RAM users, groups,
AccessKeys and account settings. Server-rendered pages; every change is the API action itself, run through
dispatch as the signed-in principal and audited as a `ConsoleOperation` event."""
from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from openims.runtime import Runtime

__all__ = ["build", "mount"]


def build(rt: Runtime) -> Starlette:
    """The console as its own ASGI app (mounted at /console)."""
    from openims.console import (
        routes_account,
        routes_events,
        routes_groups,
        routes_saml,
        routes_settings,
        routes_signin,
        routes_users,
    )
    from openims.console.web import HERE

    routes = [
        *routes_signin.routes, *routes_account.routes, *routes_events.routes, *routes_users.routes,
        *routes_groups.routes, *routes_settings.routes, *routes_saml.routes,
    ]
    app = Starlette(routes=routes)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.state.runtime = rt
    return app


def mount(app: Starlette, rt: Runtime) -> None:
    """Serve the console under /console of the API app (and send /console to /console/)."""

    async def to_console(_request: Request) -> Response:
        return RedirectResponse("/console/", status_code=308)

    app.router.routes.append(Route("/console", to_console, methods=["GET"]))
    app.mount("/console", build(rt))

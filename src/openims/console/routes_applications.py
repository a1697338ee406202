"""OAuth applications: each one's type, scopes, redirect URIs and secrets (a new secret is shown once, on the
page that follows its creation), and its recent sign-ins (its `OAuthAuthorize` events). Every read and change is
the IMS action itself, as the signed-in principal, so it is authorized and audited as the API is."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.responses import Response
from starlette.routing import Route

from openims.actions.registry import ACTIONTRAIL
from openims.console import sessions
from openims.console.web import Page, endpoint, error_page
from openims.errors import ApiError
from openims.oauth.events import AUTHORIZE
from openims.oauth.routes import AUTHORIZE_PATH
from openims.oauth.server import issuer

RECENT_SIGNINS = 20


def app_url(app_id: str, suffix: str = "") -> str:
    return f"/applications/{quote(app_id, safe='')}{suffix}"


@endpoint()
def applications_page(page: Page) -> Response:
    found = page.call("ListApplications")["Applications"]["Application"]
    return page.render("applications.html", section="applications", title="Applications", applications=found)


def _signins(page: Page, app_id: str) -> tuple[list[dict[str, Any]], ApiError | None]:
    found, err = page.attempt(
        "LookupEvents",
        {
            "LookupAttribute.1.Key": "ResourceName",
            "LookupAttribute.1.Value": app_id,
            "LookupAttribute.2.Key": "EventName",
            "LookupAttribute.2.Value": AUTHORIZE,
            "MaxResults": RECENT_SIGNINS,
        },
        version=ACTIONTRAIL.version,
    )
    return (found or {}).get("Events", []), err


@endpoint()
def application_page(page: Page) -> Response:
    assert page.session is not None
    app_id = page.request.path_params["app_id"]
    try:
        app = page.call("GetApplication", {"AppId": app_id})["Application"]
    except ApiError as err:
        return error_page(page, err)
    secrets, secrets_error = page.attempt("ListAppSecretIds", {"AppId": app_id})
    signins, signins_error = _signins(page, app_id)
    base = issuer(page.rt)
    return page.render(
        "application.html",
        section="applications",
        title=app["DisplayName"],
        app=app,
        base=app_url(app_id),
        secrets=(secrets or {}).get("AppSecrets", {}).get("AppSecret", []),
        secrets_error=secrets_error,
        new_secret=sessions.take_reveal(page.rt, page.session, f"app-secret:{app_id}"),
        signins=signins,
        signins_error=signins_error,
        discovery=base + "/.well-known/openid-configuration",
        authorize=base + AUTHORIZE_PATH,
    )


@endpoint()
def create_secret(page: Page) -> Response:
    """Create a secret, then show it on the application's page, once (a reload finds it gone)."""
    assert page.session is not None
    app_id = page.request.path_params["app_id"]
    try:
        made = page.call("CreateAppSecret", {"AppId": app_id})["AppSecret"]
    except ApiError as err:
        return page.failed(app_url(app_id), "CreateAppSecret", err)
    sessions.hold_reveal(page.rt, page.session, f"app-secret:{app_id}", made)
    return page.redirect(app_url(app_id))


@endpoint()
def delete_secret(page: Page) -> Response:
    app_id = page.request.path_params["app_id"]
    secret_id = page.f("AppSecretId")
    return page.change(
        app_url(app_id),
        "DeleteAppSecret",
        {"AppId": app_id, "AppSecretId": secret_id},
        "Secret deleted: tokens issued to clients that used it no longer work.",
    )


routes = [
    Route("/applications", applications_page, methods=["GET"]),
    Route("/applications/{app_id}", application_page, methods=["GET"]),
    Route("/applications/{app_id}/secrets", create_secret, methods=["POST"]),
    Route("/applications/{app_id}/secrets/delete", delete_secret, methods=["POST"]),
]

"""OAuth applications (WebApp, NativeApp, ServerApp) and their secrets, sealed at rest and shown once."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update

from openims import clock, ids
from openims.actions.context import CallContext
from openims.actions.registry import WRITE, Created, action
from openims.errors import ApiError, already_exists, invalid, not_found
from openims.params import Bool, Int, Str
from openims.store.tables.apps_domains import app_secrets, applications

APPLICATION = "ACS::RAM::Application"
ARN = "application/{AppId}"
MAX_APPLICATIONS = 50
MAX_SECRETS = 2
MAX_REDIRECT_URIS = 10
APP_TYPES = ("WebApp", "NativeApp", "ServerApp")
# The scopes each application type may request: name -> (description, app types).
SCOPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "openid": (
        "Obtains the OpenID of the user, the identifier of the user in the application.",
        ("WebApp", "NativeApp"),
    ),
    "aliuid": ("Obtains the ID of the account (UID) that the user belongs to.", ("WebApp", "NativeApp")),
    "profile": (
        "Obtains the user's profile: the logon name, the display name and the account ID.",
        ("WebApp", "NativeApp"),
    ),
    "/acs/ccc": ("Calls Cloud Call Center APIs on behalf of the user.", ("WebApp", "NativeApp")),
    "/acs/alidns": ("Calls Alibaba Cloud DNS APIs on behalf of the user.", ("WebApp", "NativeApp")),
    "/internal/ram/usersync": ("Synchronizes users and groups into the account over SCIM.", ("ServerApp",)),
}
# SDK defaults: refresh tokens live 90 days for WebApp, 30 for the others; only WebApp is single-tenant by default.
REFRESH_DEFAULT = {"WebApp": 7_776_000, "NativeApp": 2_592_000, "ServerApp": 2_592_000}

APP_ID = Str("AppId", required=True, max_len=64)
APP_SECRET_ID = Str("AppSecretId", required=True, max_len=64)
ACCESS_VALIDITY = {"min": 900, "max": 10800}
REFRESH_VALIDITY = {"min": 7200, "max": 31_536_000}
URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s#]+")

CREATE_PARAMS = (
    Str(
        "AppName",
        max_len=64,
        pattern=r"[A-Za-z0-9._-]+",
        pattern_doc="can contain letters, digits, periods (.), underscores (_) and hyphens (-)",
    ),
    Str("AppType", required=True, choices=APP_TYPES),
    Str("DisplayName", required=True, min_len=1, max_len=24),
    Int("AccessTokenValidity", default=3600, **ACCESS_VALIDITY),  # type: ignore[arg-type]
    Int("RefreshTokenValidity", **REFRESH_VALIDITY),  # type: ignore[arg-type]
    Bool("IsMultiTenant"),
    Bool("SecretRequired"),
    Str("ProtocolVersion", choices=("2.0", "2.1"), default="2.0"),
    Str("RedirectUris", max_len=10240),
    Str("PredefinedScopes", max_len=4096),
    Str("RequiredScopes", max_len=4096),
)
UPDATE_PARAMS = (
    APP_ID,
    Str("NewDisplayName", min_len=1, max_len=24),
    Int("NewAccessTokenValidity", **ACCESS_VALIDITY),  # type: ignore[arg-type]
    Int("NewRefreshTokenValidity", **REFRESH_VALIDITY),  # type: ignore[arg-type]
    Bool("NewIsMultiTenant"),
    Bool("NewSecretRequired"),
    Str("NewRedirectUris", max_len=10240),
    Str("NewPredefinedScopes", max_len=4096),
    Str("NewRequiredScopes", max_len=4096),
)


def _split(value: str | None) -> list[str]:
    """A semicolon-separated list, trimmed and without duplicates."""
    return list(dict.fromkeys(v.strip() for v in (value or "").split(";") if v.strip()))


def _redirect_uris(param: str, value: str | None) -> list[str]:
    uris = _split(value)
    if len(uris) > MAX_REDIRECT_URIS:
        raise invalid(
            param,
            "Length",
            f'The parameter - "{param}" holds {len(uris)} URIs; at most {MAX_REDIRECT_URIS} are allowed.',
        )
    for uri in uris:
        if len(uri) > 1024 or not URI.fullmatch(uri):
            raise invalid(
                param,
                "Format",
                f'The parameter - "{param}" must hold absolute URIs (scheme://...) without a fragment, '
                f"each up to 1024 characters, separated by semicolons: {uri[:64]!r} is not one.",
            )
    return uris


def _scopes(param: str, value: str | None, app_type: str) -> list[str]:
    scopes = _split(value)
    allowed = [name for name, (_, types) in SCOPES.items() if app_type in types]
    for scope in scopes:
        if scope not in allowed:
            raise invalid(
                param,
                "Unsupported",
                f'The parameter - "{param}" names {scope!r}, which is not a scope of {app_type} '
                f"applications ({', '.join(allowed)}); see ListPredefinedScopes.",
            )
    return scopes


def find_application(ctx: CallContext, app_id: str) -> Row[Any]:
    row = ctx.conn.execute(
        select(applications).where(applications.c.account_id == ctx.account_id, applications.c.id == app_id)
    ).first()
    if row is None:
        raise not_found("Application", app_id)
    return row


def application_view(row: Row[Any]) -> dict[str, Any]:
    required = set(json.loads(row.required_scopes))
    scopes = [
        {"Name": s, "Description": SCOPES.get(s, ("", ()))[0], "Required": s in required}
        for s in json.loads(row.predefined_scopes)
    ]
    return {
        "AppId": row.id,
        "AppName": row.name,
        "DisplayName": row.display_name,
        "AccountId": row.account_id,
        "AppType": row.app_type,
        "ProtocolVersion": row.protocol_version,
        "AccessTokenValidity": row.access_token_validity,
        "RefreshTokenValidity": row.refresh_token_validity,
        "IsMultiTenant": bool(row.is_multi_tenant),
        "SecretRequired": bool(row.secret_required),
        "RedirectUris": {"RedirectUri": json.loads(row.redirect_uris)},
        "DelegatedScope": {"PredefinedScopes": {"PredefinedScope": scopes}},
        "CreateDate": clock.iso(row.created_ms),
        "UpdateDate": clock.iso(row.updated_ms),
    }


def _name_taken(ctx: CallContext, name: str) -> bool:
    return (
        ctx.conn.execute(
            select(applications.c.id).where(
                applications.c.account_id == ctx.account_id, func.lower(applications.c.name) == name.lower()
            )
        ).first()
        is not None
    )


@action(
    "CreateApplication",
    rw=WRITE,
    params=CREATE_PARAMS,
    resource=(APPLICATION, None),
    arn="application/*",
    resources=((APPLICATION, Created("Application.AppId")),),
)
def create_application(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create an OAuth application. WebApp and ServerApp applications always require a secret; NativeApp ones
    only when SecretRequired is true."""
    app_type = p["AppType"]
    app_id = ids.user_id()
    name = p["AppName"] or app_id
    if _name_taken(ctx, name):
        raise already_exists("Application", name)
    count = ctx.conn.execute(
        select(func.count()).select_from(applications).where(applications.c.account_id == ctx.account_id)
    ).scalar_one()
    if count >= MAX_APPLICATIONS:
        raise ApiError("LimitExceeded.Application", f"An account can have at most {MAX_APPLICATIONS} applications.")
    predefined = _scopes("PredefinedScopes", p["PredefinedScopes"], app_type)
    # The SDK: a required scope outside PredefinedScopes is not set as required.
    required = [s for s in _split(p["RequiredScopes"]) if s in predefined]
    ctx.conn.execute(
        insert(applications).values(
            id=app_id,
            account_id=ctx.account_id,
            name=name,
            display_name=p["DisplayName"],
            app_type=app_type,
            protocol_version=p["ProtocolVersion"],
            redirect_uris=json.dumps(_redirect_uris("RedirectUris", p["RedirectUris"])),
            predefined_scopes=json.dumps(predefined),
            required_scopes=json.dumps(required),
            access_token_validity=p["AccessTokenValidity"],
            refresh_token_validity=p["RefreshTokenValidity"] or REFRESH_DEFAULT[app_type],
            is_multi_tenant=p["IsMultiTenant"] if p["IsMultiTenant"] is not None else app_type != "WebApp",
            secret_required=True if app_type != "NativeApp" else bool(p["SecretRequired"]),
            created_ms=ctx.now_ms,
            updated_ms=ctx.now_ms,
        )
    )
    ctx.reference(APPLICATION, app_id)
    return {"Application": application_view(find_application(ctx, app_id))}


@action("GetApplication", params=(APP_ID,), resource=(APPLICATION, "AppId"), arn=ARN)
def get_application(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query an application's configuration."""
    return {"Application": application_view(find_application(ctx, p["AppId"]))}


@action("UpdateApplication", rw=WRITE, params=UPDATE_PARAMS, resource=(APPLICATION, "AppId"), arn=ARN)
def update_application(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Change an application's display name, token validity, tenancy, secret requirement, redirect URIs or scopes.
    New scope and URI lists replace the old ones."""
    row = find_application(ctx, p["AppId"])
    changes: dict[str, Any] = {}
    for param, column in (
        ("NewDisplayName", "display_name"),
        ("NewAccessTokenValidity", "access_token_validity"),
        ("NewRefreshTokenValidity", "refresh_token_validity"),
        ("NewIsMultiTenant", "is_multi_tenant"),
    ):
        if p[param] is not None:
            changes[column] = p[param]
    # WebApp and ServerApp keep SecretRequired=true whatever is asked (the SDK: "forcibly set to true").
    if p["NewSecretRequired"] is not None and row.app_type == "NativeApp":
        changes["secret_required"] = p["NewSecretRequired"]
    if p["NewRedirectUris"] is not None:
        changes["redirect_uris"] = json.dumps(_redirect_uris("NewRedirectUris", p["NewRedirectUris"]))
    predefined = json.loads(row.predefined_scopes)
    if p["NewPredefinedScopes"] is not None:
        predefined = _scopes("NewPredefinedScopes", p["NewPredefinedScopes"], row.app_type)
        changes["predefined_scopes"] = json.dumps(predefined)
    required = _split(p["NewRequiredScopes"]) if p["NewRequiredScopes"] is not None else json.loads(row.required_scopes)
    if p["NewPredefinedScopes"] is not None or p["NewRequiredScopes"] is not None:
        changes["required_scopes"] = json.dumps([s for s in required if s in predefined])
    if changes:
        ctx.conn.execute(
            update(applications).where(applications.c.id == row.id).values(updated_ms=ctx.now_ms, **changes)
        )
    return {"Application": application_view(find_application(ctx, row.id))}


@action("DeleteApplication", rw=WRITE, params=(APP_ID,), resource=(APPLICATION, "AppId"), arn=ARN)
def delete_application(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete an application and its secrets."""
    row = find_application(ctx, p["AppId"])
    ctx.conn.execute(delete(app_secrets).where(app_secrets.c.app_id == row.id))
    ctx.conn.execute(delete(applications).where(applications.c.id == row.id))
    return {}


@action("ListApplications")
def list_applications(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the account's applications."""
    rows = ctx.conn.execute(
        select(applications)
        .where(applications.c.account_id == ctx.account_id)
        .order_by(applications.c.created_ms, applications.c.id)
    ).all()
    return {"Applications": {"Application": [application_view(r) for r in rows]}}


def _secret_view(row: Row[Any]) -> dict[str, Any]:
    return {"AppId": row.app_id, "AppSecretId": row.id, "CreateDate": clock.iso(row.created_ms)}


def _find_secret(ctx: CallContext, app_id: str, secret_id: str) -> Row[Any]:
    app = find_application(ctx, app_id)
    row = ctx.conn.execute(
        select(app_secrets).where(app_secrets.c.app_id == app.id, app_secrets.c.id == secret_id)
    ).first()
    if row is None:
        raise not_found("AppSecret", secret_id)
    return row


@action(
    "CreateAppSecret",
    rw=WRITE,
    params=(APP_ID,),
    resource=(APPLICATION, "AppId"),
    secrets=("AppSecretValue",),
    arn=ARN,
    sensitive=True,
)
def create_app_secret(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create a secret for an application (at most 2 each). Its value is returned only here; store it safely."""
    app = find_application(ctx, p["AppId"])
    count = ctx.conn.execute(
        select(func.count()).select_from(app_secrets).where(app_secrets.c.app_id == app.id)
    ).scalar_one()
    if count >= MAX_SECRETS:
        raise ApiError(
            "LimitExceeded.AppSecret", f"An application can have at most {MAX_SECRETS} secrets; delete one first."
        )
    secret_id, value = ids.app_secret_id(), ids.app_secret()
    ctx.conn.execute(
        insert(app_secrets).values(
            id=secret_id,
            app_id=app.id,
            account_id=ctx.account_id,
            created_ms=ctx.now_ms,
            secret_sealed=ctx.runtime.master_key.seal(value, context=secret_id),
        )
    )
    return {
        "AppSecret": {
            "AppId": app.id,
            "AppSecretId": secret_id,
            "AppSecretValue": value,
            "CreateDate": clock.iso(ctx.now_ms),
        }
    }


@action(
    "GetAppSecret",
    params=(APP_ID, APP_SECRET_ID),
    resource=(APPLICATION, "AppId"),
    secrets=("AppSecretValue",),
    arn=ARN,
)
def get_app_secret(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query an application secret's ID and creation time; its value is never shown again after creation."""
    return {"AppSecret": _secret_view(_find_secret(ctx, p["AppId"], p["AppSecretId"]))}


@action(
    "DeleteAppSecret",
    rw=WRITE,
    params=(APP_ID, APP_SECRET_ID),
    resource=(APPLICATION, "AppId"),
    arn=ARN,
    sensitive=True,
)
def delete_app_secret(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete an application secret; clients using it can no longer authenticate."""
    row = _find_secret(ctx, p["AppId"], p["AppSecretId"])
    ctx.conn.execute(delete(app_secrets).where(app_secrets.c.id == row.id))
    return {}


@action("ListAppSecretIds", params=(APP_ID,), resource=(APPLICATION, "AppId"), arn=ARN)
def list_app_secret_ids(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the IDs of an application's secrets."""
    app = find_application(ctx, p["AppId"])
    rows = ctx.conn.execute(
        select(app_secrets).where(app_secrets.c.app_id == app.id).order_by(app_secrets.c.created_ms, app_secrets.c.id)
    ).all()
    return {"AppSecrets": {"AppSecret": [_secret_view(r) for r in rows]}}


@action("ListPredefinedScopes", params=(Str("AppType", choices=APP_TYPES),))
def list_predefined_scopes(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The scopes applications may request, for one application type or all of them."""
    wanted = p["AppType"]
    items = [
        {"Name": name, "Description": desc}
        for name, (desc, types) in SCOPES.items()
        if wanted is None or wanted in types
    ]
    return {"PredefinedScopes": {"PredefinedScope": items}}

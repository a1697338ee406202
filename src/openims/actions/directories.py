"""The account's user directory (one per account: its RAM users, groups and domains) and resource checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, func, select

from openims import accounts, clock
from openims.actions import registry
from openims.actions.applications import APPLICATION, find_application, get_application
from openims.actions.context import CallContext
from openims.actions.domains import list_domains
from openims.actions.groups import GROUP, find_group, get_group
from openims.actions.registry import action
from openims.actions.users import USER, find_user, get_user
from openims.authz import rules
from openims.errors import ApiError, missing, not_found
from openims.params import Str
from openims.store.schema import accounts as accounts_table
from openims.store.schema import groups, users
from openims.store.tables.apps_domains import domains

DIRECTORY = "ACS::RAM::Directory"
DIRECTORY_ID = Str("DirectoryId", max_len=64)


def directory_id(account_id: str) -> str:
    return f"d-{account_id}"


def _directory(ctx: CallContext, wanted: str | None) -> dict[str, Any]:
    own = directory_id(ctx.account_id)
    if wanted and wanted != own:
        raise not_found("Directory", wanted)
    ctx.reference(DIRECTORY, own)
    account = ctx.conn.execute(select(accounts_table).where(accounts_table.c.id == ctx.account_id)).one()
    user_domains = accounts.user_domains(ctx.conn, ctx.account_id)

    def count(table: Table) -> int:
        live = [table.c.deleted_ms.is_(None)] if "deleted_ms" in table.c else []
        where = (table.c.account_id == ctx.account_id, *live)
        return int(ctx.conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())

    return {
        "DirectoryId": own,
        "DirectoryName": account.alias,
        "DirectoryType": "RAM",
        "Status": "Enabled",
        "AccountId": ctx.account_id,
        "DefaultDomainName": user_domains[0],
        "DomainNames": {"DomainName": user_domains},
        "UserCount": count(users),
        "GroupCount": count(groups),
        "CreateDate": clock.iso(account.created_ms),
    }


@action("ListDirectories", resource=(DIRECTORY, None), extension=True)
def list_directories(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The account's user directories: OpenIMS keeps exactly one per account, holding its RAM users and groups."""
    return {"Directories": {"Directory": [_directory(ctx, None)]}}


@action("GetDirectory", params=(DIRECTORY_ID,), resource=(DIRECTORY, "DirectoryId"), extension=True)
def get_directory(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """One user directory (the account's own when DirectoryId is omitted)."""
    return {"Directory": _directory(ctx, p["DirectoryId"])}


@action("CheckDirectoryEnabled", params=(DIRECTORY_ID,), resource=(DIRECTORY, "DirectoryId"), extension=True)
def check_directory_enabled(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Whether a user directory is enabled (the account's own always is); there is no multi-account
    resource directory."""
    found = _directory(ctx, p["DirectoryId"])
    return {"DirectoryId": found["DirectoryId"], "Enabled": found["Status"] == "Enabled"}


# ResourceType -> (event resource type, read action deciding "Accessible", finder(ctx, id, name) -> (id, name, params)).
Finder = Callable[[CallContext, "str | None", "str | None"], tuple[str, str, dict[str, str]]]


def _user(ctx: CallContext, rid: str | None, name: str | None) -> tuple[str, str, dict[str, str]]:
    row = find_user(ctx, upn=name, user_id=None if name else rid)
    return row.id, row.upn, {"UserPrincipalName": row.upn}


def _group(ctx: CallContext, rid: str | None, name: str | None) -> tuple[str, str, dict[str, str]]:
    if not name:
        name = ctx.conn.execute(
            select(groups.c.name).where(groups.c.account_id == ctx.account_id, groups.c.id == rid)
        ).scalar()
        if name is None:
            raise not_found("Group", rid or "")
    row = find_group(ctx, name)
    return row.id, row.name, {"GroupName": row.name}


def _application(ctx: CallContext, rid: str | None, name: str | None) -> tuple[str, str, dict[str, str]]:
    from openims.store.tables.apps_domains import applications

    if not rid:
        rid = ctx.conn.execute(
            select(applications.c.id).where(
                applications.c.account_id == ctx.account_id, func.lower(applications.c.name) == (name or "").lower()
            )
        ).scalar()
    row = find_application(ctx, rid or "")
    return row.id, row.name, {"AppId": row.id}


def _domain(ctx: CallContext, rid: str | None, name: str | None) -> tuple[str, str, dict[str, str]]:
    wanted = (name or rid or "").rstrip(".").lower()
    known = (
        wanted in accounts.user_domains(ctx.conn, ctx.account_id)
        or ctx.conn.execute(
            select(domains.c.name).where(domains.c.account_id == ctx.account_id, domains.c.name == wanted)
        ).first()
        is not None
    )
    if not known:
        raise not_found("Domain", wanted)
    return wanted, wanted, {}


# The resource types CheckResource knows: event type, the read action whose permission makes one accessible, finder.
RESOURCE_CHECKS: dict[str, tuple[str, registry.Handler, Finder]] = {
    "user": (USER, get_user, _user),
    "group": (GROUP, get_group, _group),
    "application": (APPLICATION, get_application, _application),
    "domain": ("ACS::RAM::Domain", list_domains, _domain),
}


@action(
    "CheckResource",
    resource=(DIRECTORY, None),
    extension=True,
    params=(
        Str("ResourceType", required=True, choices=tuple(RESOURCE_CHECKS)),
        Str("ResourceId", max_len=128),
        Str("ResourceName", max_len=255),
    ),
)
def check_resource(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Whether a resource exists in the account's directory and whether the caller may read it (its policies
    allow the type's read action: GetUser, GetGroup, GetApplication or ListDomains). Absence is an answer, not an error.
    Name the resource by ResourceId or by ResourceName, not both."""
    if not (p["ResourceId"] or p["ResourceName"]):
        raise missing("ResourceId")
    if p["ResourceId"] and p["ResourceName"]:
        raise ApiError("InvalidParameter.ResourceId", "Specify either ResourceId or ResourceName, not both.")
    ctx.reference(DIRECTORY, directory_id(ctx.account_id))
    event_type, read_handler, finder = RESOURCE_CHECKS[p["ResourceType"]]
    answer = {
        "ResourceType": p["ResourceType"],
        "ResourceId": p["ResourceId"] or "",
        "ResourceName": p["ResourceName"] or "",
        "Exists": False,
        "Accessible": False,
    }
    try:
        rid, name, params = finder(ctx, p["ResourceId"], p["ResourceName"])
    except ApiError as err:
        if err.code.startswith("EntityNotExist") or err.code.startswith("InvalidParameter"):
            return answer
        raise
    ctx.reference(event_type, name)
    answer.update(ResourceId=rid, ResourceName=name, Exists=True)
    try:
        rules.authorize(ctx, registry.declaration(read_handler), params)
        answer["Accessible"] = True
    except ApiError as err:
        if err.code != "NoPermission":
            raise
    return answer

"""The "History" tab of the user, group and policy pages: every recorded change to the resource, oldest first,
with who made it and each attribute's old and new value. Each view is a DescribeResourceLifeCycleEvents call
through dispatch as the signed-in principal, so it needs ActionTrail read permission and is itself audited."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.responses import Response
from starlette.routing import Route

from openims.actions.registry import ACTIONTRAIL
from openims.console.web import Page, endpoint, error_page
from openims.errors import ApiError

# Path segment -> (resource type, label of its list page, that page's path or "" when the console has none).
KINDS = {
    "users": ("ACS::RAM::User", "Users", "/users"),
    "groups": ("ACS::RAM::Group", "Groups", "/groups"),
    "policies": ("ACS::RAM::Policy", "Policies", ""),
}


def history_page(kind: str) -> Callable[..., Any]:
    rtype, label, listing = KINDS[kind]

    @endpoint()
    def show(page: Page) -> Response:
        name = page.request.path_params["name"]
        try:
            found = page.call(
                "DescribeResourceLifeCycleEvents",
                {"ResourceType": rtype, "ResourceName": name},
                version=ACTIONTRAIL.version,
            )
        except ApiError as err:
            return error_page(page, err)
        return page.render(
            "resource_history.html",
            section=kind if listing else "events",
            title=f"{name}: history",
            name=name,
            label=label,
            listing=listing,
            details=f"{listing}/{quote(name, safe='@')}" if listing else "",
            changes=json.loads(found["Data"]),
        )

    return show


routes = [Route(f"/{kind}/{{name}}/history", history_page(kind), methods=["GET"]) for kind in KINDS]

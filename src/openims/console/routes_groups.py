"""RAM user groups and their membership."""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import Response
from starlette.routing import Route

from openims.console.web import Page, endpoint, error_page, url
from openims.errors import ApiError


def group_url(name: str, suffix: str = "") -> str:
    return f"/groups/{quote(name, safe='')}{suffix}"


@endpoint()
def groups_page(page: Page) -> Response:
    found = page.call("ListGroups", {"MaxItems": 100, "Marker": page.q("marker") or None})
    next_url = url("/groups", marker=found["Marker"]) if found.get("IsTruncated") else None
    return page.render(
        "groups.html", section="groups", title="Groups", groups=found["Groups"]["Group"], next_url=next_url
    )


@endpoint()
def create_group(page: Page) -> Response:
    name = page.f("GroupName")
    return page.change(
        "/groups",
        "CreateGroup",
        {"GroupName": name, "DisplayName": page.f("DisplayName") or None, "Comments": page.f("Comments") or None},
        f"Group {name} created.",
        done_to=group_url(name),
    )


@endpoint()
def group_page(page: Page) -> Response:
    name = page.request.path_params["name"]
    try:
        group = page.call("GetGroup", {"GroupName": name})["Group"]
    except ApiError as err:
        return error_page(page, err)
    members, members_error = page.attempt("ListUsersForGroup", {"GroupName": name, "MaxItems": 100})
    return page.render(
        "group.html",
        section="groups",
        title=group["GroupName"],
        group=group,
        members=(members or {}).get("Users", {}).get("User", []),
        members_error=members_error,
        base=group_url(group["GroupName"]),
    )


@endpoint()
def add_member(page: Page) -> Response:
    name = page.request.path_params["name"]
    upn = page.f("UserPrincipalName")
    return page.change(
        group_url(name), "AddUserToGroup", {"GroupName": name, "UserPrincipalName": upn}, f"{upn} added to the group."
    )


@endpoint()
def remove_member(page: Page) -> Response:
    name = page.request.path_params["name"]
    upn = page.f("UserPrincipalName")
    return page.change(
        group_url(name),
        "RemoveUserFromGroup",
        {"GroupName": name, "UserPrincipalName": upn},
        f"{upn} removed from the group.",
    )


@endpoint()
def delete_group(page: Page) -> Response:
    name = page.request.path_params["name"]
    return page.change(group_url(name), "DeleteGroup", {"GroupName": name}, f"Group {name} deleted.", done_to="/groups")


routes = [
    Route("/groups", groups_page, methods=["GET"]),
    Route("/groups", create_group, methods=["POST"]),
    Route("/groups/{name}", group_page, methods=["GET"]),
    Route("/groups/{name}/members", add_member, methods=["POST"]),
    Route("/groups/{name}/members/remove", remove_member, methods=["POST"]),
    Route("/groups/{name}/delete", delete_group, methods=["POST"]),
]

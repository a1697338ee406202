"""RAM users: search, create (with console access), view with keys, groups, MFA and login profile, delete to
the recycle bin and restore. Every read and change is the API action itself, run as the signed-in principal."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.responses import Response
from starlette.routing import Route

from openims import accounts
from openims.console import sessions
from openims.console.web import Page, endpoint, error_page, url
from openims.errors import ApiError

SEARCH_LIMIT = 1000
PAGE_ITEMS = 100


def user_url(upn: str, suffix: str = "") -> str:
    return f"/users/{quote(upn, safe='@')}{suffix}"


def _upn(page: Page) -> str:
    return str(page.request.path_params["upn"])


@endpoint()
def users_page(page: Page) -> Response:
    """One page of users, or with a search term every user whose name, display name or email contains it."""
    term = page.q("q").lower()
    params: dict[str, Any] = {
        "MaxItems": SEARCH_LIMIT if term else PAGE_ITEMS,
        "Marker": None if term else page.q("marker") or None,
    }
    found = page.call("ListUsers", params)
    users = found["Users"]["User"]
    if term:
        users = [u for u in users if any(term in text.lower() for text in _searched(u, whole_upn="@" in term))]
    next_url = url("/users", marker=found["Marker"]) if found.get("IsTruncated") and not term else None
    return page.render("users.html", section="users", title="Users", users=users, term=page.q("q"), next_url=next_url)


def _searched(user: dict[str, Any], whole_upn: bool) -> tuple[str, ...]:
    """What a search looks in. The UPN's domain only when the term has an `@`: every user shares it, so
    otherwise "ali" would match everyone at onaliyun.com."""
    upn = user.get("UserPrincipalName") or ""
    return (upn if whole_upn else upn.split("@")[0], user.get("DisplayName") or "", user.get("Email") or "")


def _domain(page: Page) -> str:
    assert page.session is not None
    with page.rt.db.read() as conn:
        return accounts.user_domains(conn, page.session.account_id)[0]


@endpoint()
def new_user_page(page: Page) -> Response:
    return page.render("user_new.html", section="users", title="Create user", domain=_domain(page), form={})


@endpoint()
def create_user(page: Page) -> Response:
    """CreateUser, then CreateLoginProfile when console access was asked for. If the second fails, the user
    stays created and its page says why console access is missing."""
    domain = _domain(page)
    upn = f"{page.f('name')}@{domain}" if page.f("name") else ""
    try:
        page.call(
            "CreateUser",
            {
                "UserPrincipalName": upn,
                "DisplayName": page.f("DisplayName") or page.f("name"),
                "Email": page.f("Email") or None,
                "Comments": page.f("Comments") or None,
            },
        )
    except ApiError as err:
        return page.render(
            "user_new.html",
            status=err.status,
            section="users",
            title="Create user",
            domain=domain,
            form=page.form,
            error=err,
        )
    message = f"User {upn} created."
    if page.form.get("console") == "on":
        try:
            page.call(
                "CreateLoginProfile",
                {
                    "UserPrincipalName": upn,
                    "Password": page.form.get("password", ""),
                    "PasswordResetRequired": page.form.get("PasswordResetRequired") == "on",
                    "MFABindRequired": page.form.get("MFABindRequired") == "on",
                    "Status": "Active",
                },
            )
            message += " It can sign in to the console."
        except ApiError as err:
            message += f" Console access was not enabled: {err.message}"
    return page.redirect(user_url(upn), message)


@endpoint()
def user_page(page: Page) -> Response:
    upn = _upn(page)
    try:
        user = page.call("GetUser", {"UserPrincipalName": upn})["User"]
    except ApiError as err:
        return error_page(page, err)
    keys, keys_error = page.attempt("ListAccessKeys", {"UserPrincipalName": upn})
    groups, groups_error = page.attempt("ListGroupsForUser", {"UserPrincipalName": upn})
    mfa, mfa_error = page.attempt("GetUserMFAInfo", {"UserPrincipalName": upn})
    profile, profile_error = page.attempt("GetLoginProfile", {"UserPrincipalName": upn})
    if profile_error is not None and profile_error.code.startswith("EntityNotExist"):
        profile_error = None
    all_groups, all_groups_error = page.attempt("ListGroups", {"MaxItems": 100})
    member_of = {g["GroupName"] for g in (groups or {}).get("Groups", {}).get("Group", [])}
    choices = [
        g["GroupName"]
        for g in (all_groups or {}).get("Groups", {}).get("Group", [])
        if g["GroupName"] not in member_of
        and page.may("AddUserToGroup", UserPrincipalName=upn, GroupName=g["GroupName"])
    ]
    return page.render(
        "user.html",
        section="users",
        title=user["UserPrincipalName"],
        user=user,
        keys=(keys or {}).get("AccessKeys", {}).get("AccessKey", []),
        keys_error=keys_error,
        groups=(groups or {}).get("Groups", {}).get("Group", []),
        groups_error=groups_error,
        mfa=mfa,
        mfa_error=mfa_error,
        profile=(profile or {}).get("LoginProfile"),
        profile_error=profile_error,
        group_choices=choices,
        all_groups_error=all_groups_error,
        base=user_url(user["UserPrincipalName"]),
        history_url=url("/events", range="90d", User=user["UserPrincipalName"]),
    )


@endpoint()
def delete_user(page: Page) -> Response:
    upn = _upn(page)
    return page.change(
        user_url(upn),
        "DeleteUser",
        {"UserPrincipalName": upn},
        f"User {upn} moved to the recycle bin; restore it from there.",
        done_to="/users",
    )


@endpoint()
def update_user(page: Page) -> Response:
    upn = _upn(page)
    return page.change(
        user_url(upn),
        "UpdateUser",
        {
            # The form shows the current values: a field the user emptied is cleared (a display name cannot be).
            "UserPrincipalName": upn,
            "NewDisplayName": page.f("DisplayName"),
            "NewEmail": page.f("Email"),
            "NewComments": page.f("Comments"),
        },
        "User updated.",
    )


@endpoint()
def create_user_key(page: Page) -> Response:
    upn = _upn(page)
    return created_key(page, {"UserPrincipalName": upn}, user_url(upn))


def created_key(page: Page, params: dict[str, Any], back: str) -> Response:
    """CreateAccessKey, then the one page that shows its secret (post/redirect/get: a reload cannot create
    another key)."""
    assert page.session is not None
    try:
        key = page.call("CreateAccessKey", params)["AccessKey"]
    except ApiError as err:
        return page.failed(back, "CreateAccessKey", err)
    owner = params.get("UserPrincipalName") or page.session.user_name
    sessions.hold_reveal(page.rt, page.session, "access-key", {"key": key, "owner": owner, "back": url(back)})
    return page.redirect("/access-keys/created")


@endpoint()
def key_created_page(page: Page) -> Response:
    """The new AccessKey's secret, shown once: a reload finds it gone."""
    assert page.session is not None
    held = sessions.take_reveal(page.rt, page.session, "access-key")
    if held is None:
        return page.render("key_created.html", section="keys", title="AccessKey secret already shown", key=None)
    return page.render("key_created.html", section="keys", title="AccessKey created", **held)


@endpoint()
def key_status(page: Page) -> Response:
    upn, key = _upn(page), page.request.path_params["key"]
    status = "Active" if page.f("Status") == "Active" else "Inactive"
    return page.change(
        user_url(upn),
        "UpdateAccessKey",
        {"UserPrincipalName": upn, "UserAccessKeyId": key, "Status": status},
        f"AccessKey {key} is now {status}.",
    )


@endpoint()
def key_delete(page: Page) -> Response:
    upn, key = _upn(page), page.request.path_params["key"]
    return page.change(
        user_url(upn),
        "DeleteAccessKey",
        {"UserPrincipalName": upn, "UserAccessKeyId": key},
        f"AccessKey {key} deleted.",
    )


@endpoint()
def add_to_group(page: Page) -> Response:
    upn = _upn(page)
    return page.change(
        user_url(upn),
        "AddUserToGroup",
        {"UserPrincipalName": upn, "GroupName": page.f("GroupName")},
        f"Added to group {page.f('GroupName')}.",
    )


@endpoint()
def remove_from_group(page: Page) -> Response:
    upn, group = _upn(page), page.request.path_params["group"]
    return page.change(
        user_url(upn),
        "RemoveUserFromGroup",
        {"UserPrincipalName": upn, "GroupName": group},
        f"Removed from group {group}.",
    )


@endpoint()
def save_login_profile(page: Page) -> Response:
    """Create the login profile, or update it (a blank password keeps the current one)."""
    upn = _upn(page)
    exists = page.f("exists") == "1"
    params = {
        "UserPrincipalName": upn,
        "Password": page.form.get("password") or None,
        "PasswordResetRequired": page.form.get("PasswordResetRequired") == "on",
        "MFABindRequired": page.form.get("MFABindRequired") == "on",
        "Status": "Active" if page.form.get("Status", "Active") == "Active" else "Inactive",
    }
    action = "UpdateLoginProfile" if exists else "CreateLoginProfile"
    return page.change(user_url(upn), action, params, "Console access saved.")


@endpoint()
def delete_login_profile(page: Page) -> Response:
    upn = _upn(page)
    return page.change(user_url(upn), "DeleteLoginProfile", {"UserPrincipalName": upn}, "Console access removed.")


@endpoint()
def disable_mfa(page: Page) -> Response:
    upn = _upn(page)
    return page.change(
        user_url(upn), "DisableVirtualMFA", {"UserPrincipalName": upn}, "The MFA device was unbound and deleted."
    )


@endpoint()
def recycle_bin_page(page: Page) -> Response:
    found = page.call("ListUsersInRecycleBin", {"MaxItems": 100, "Marker": page.q("marker") or None})
    next_url = url("/recycle-bin", marker=found["Marker"]) if found.get("IsTruncated") else None
    return page.render(
        "recycle_bin.html", section="users", title="Recycle bin", users=found["Users"]["User"], next_url=next_url
    )


@endpoint()
def restore_user(page: Page) -> Response:
    user_id = page.request.path_params["user_id"]
    return page.change("/recycle-bin", "RestoreUserFromRecycleBin", {"UserId": user_id}, "User restored.")


@endpoint()
def purge_user(page: Page) -> Response:
    user_id = page.request.path_params["user_id"]
    return page.change("/recycle-bin", "DeleteUserInRecycleBin", {"UserId": user_id}, "User deleted for good.")


routes = [
    Route("/users", users_page, methods=["GET"]),
    Route("/users", create_user, methods=["POST"]),
    Route("/users/new", new_user_page, methods=["GET"]),
    Route("/users/{upn}", user_page, methods=["GET"]),
    Route("/users/{upn}/update", update_user, methods=["POST"]),
    Route("/users/{upn}/delete", delete_user, methods=["POST"]),
    Route("/users/{upn}/keys", create_user_key, methods=["POST"]),
    Route("/users/{upn}/keys/{key}/status", key_status, methods=["POST"]),
    Route("/users/{upn}/keys/{key}/delete", key_delete, methods=["POST"]),
    Route("/users/{upn}/groups", add_to_group, methods=["POST"]),
    Route("/users/{upn}/groups/{group}/remove", remove_from_group, methods=["POST"]),
    Route("/users/{upn}/login-profile", save_login_profile, methods=["POST"]),
    Route("/users/{upn}/login-profile/delete", delete_login_profile, methods=["POST"]),
    Route("/users/{upn}/mfa/disable", disable_mfa, methods=["POST"]),
    Route("/recycle-bin", recycle_bin_page, methods=["GET"]),
    Route("/recycle-bin/{user_id}/restore", restore_user, methods=["POST"]),
    Route("/recycle-bin/{user_id}/delete", purge_user, methods=["POST"]),
]

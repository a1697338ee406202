"""The overview, the signed-in identity's own page (password, MFA) and its own AccessKeys."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from starlette.responses import Response
from starlette.routing import Route

from openims import clock
from openims.actions.registry import ACTIONTRAIL
from openims.console import history, routes_insights, routes_signin
from openims.console.routes_users import created_key, key_created_page
from openims.console.web import Page, endpoint, url

ACTIVITY_DAYS = 30


def _activity(page: Page) -> Markup | None:
    """Events per day of the last 30 days (today included), from DescribeUserLogCount; each bar opens that
    day's events. None for a viewer who may not call it (asked first, so no denial is logged per visit)."""
    if not page.may("DescribeUserLogCount", ACTIONTRAIL.version):
        return None
    today = clock.iso(clock.now_ms())[:10]
    first = clock.iso(clock.now_ms() - (ACTIVITY_DAYS - 1) * history.DAY_MS)[:10]
    found, _ = page.attempt("DescribeUserLogCount", {"StartDate": first, "EndDate": today}, ACTIONTRAIL.version)
    if found is None:
        return None
    data = found["Data"]
    series = [(clock.parse_iso(d + "T00:00:00Z"), n) for d, n in zip(data["Dates"], data["Counts"], strict=True)]
    return history.chart_svg(
        history.Chart(history.DAY_MS, series),
        lambda lo, hi: url("/events", range="custom", start=clock.iso(lo), end=clock.iso(hi)),
    )


@endpoint()
def home(page: Page) -> Response:
    assert page.session is not None
    # Asked only of a viewer who may read it: the landing page must not log a denial at every sign-in.
    summary, summary_error = page.attempt("GetAccountSummary") if page.may("GetAccountSummary") else (None, None)
    insights, insights_error = routes_insights.open_insights(page)
    return page.render(
        "home.html",
        alerts=_todays_alerts(page),
        section="home",
        title="Overview",
        summary=(summary or {}).get("SummaryMap"),
        summary_error=summary_error,
        expires=clock.iso(page.session.expires_ms),
        signed_in=clock.iso(page.session.created_ms),
        my_history=url("/events", range="24h", User=page.session.user_name),
        activity=_activity(page),
        activity_days=ACTIVITY_DAYS,
        insights=insights,
        insights_error=insights_error,
    )


def _todays_alerts(page: Page) -> dict[str, Any] | None:
    """Today's alert count (UTC) and latest alerts, for a viewer who may read them (else None)."""
    version = ACTIONTRAIL.version
    if not (page.may("ListAlerts", _version=version) and page.may("DescribeUserAlertCount", _version=version)):
        return None
    today = clock.iso(clock.now_ms())[:10]
    counted, _ = page.attempt("DescribeUserAlertCount", {"StartDate": today, "EndDate": today}, version)
    latest, _ = page.attempt("ListAlerts", {"MaxResults": 5}, version)
    return {
        "count": sum((counted or {}).get("Data", {}).get("Counts", [])),
        "latest": [a for a in (latest or {}).get("Alerts", []) if a["AlertTime"].startswith(today) and not a["Test"]],
    }


@endpoint()
def me_page(page: Page) -> Response:
    assert page.session is not None
    mfa = None
    if not page.session.is_root:
        mfa, _ = page.attempt("GetUserMFAInfo", {"UserPrincipalName": page.session.user_name})
    return page.render("me.html", section="me", title="My account", mfa=mfa)


ROOT_PASSWORD_NOTE = "The root account's console password is set on the server: openims account set-password."


@endpoint()
def password_page(page: Page) -> Response:
    assert page.session is not None
    if page.session.is_root:  # ChangePassword is a RAM user's own action
        return page.redirect("/me", ROOT_PASSWORD_NOTE)
    return page.render("change_password.html", section="me", title="Change password", forced=False)


@endpoint()
def password_submit(page: Page) -> Response:
    assert page.session is not None
    if page.session.is_root:
        return page.redirect("/me", ROOT_PASSWORD_NOTE)
    error = routes_signin.change_password(page)
    if error is not None:
        return page.render(
            "change_password.html",
            status=error.status,
            section="me",
            title="Change password",
            forced=False,
            error=error.message,
        )
    return page.redirect("/me", "Your password has been changed.")


@endpoint()
def keys_page(page: Page) -> Response:
    """The signed-in identity's own AccessKeys (the root account's keys for root)."""
    found = page.call("ListAccessKeys")
    return page.render("keys.html", section="keys", title="My AccessKeys", keys=found["AccessKeys"]["AccessKey"])


@endpoint()
def create_key(page: Page) -> Response:
    return created_key(page, {}, "/access-keys")


@endpoint()
def key_status(page: Page) -> Response:
    key = page.request.path_params["key"]
    status = "Active" if page.f("Status") == "Active" else "Inactive"
    return page.change(
        "/access-keys",
        "UpdateAccessKey",
        {"UserAccessKeyId": key, "Status": status},
        f"AccessKey {key} is now {status}.",
    )


@endpoint()
def key_delete(page: Page) -> Response:
    key = page.request.path_params["key"]
    return page.change("/access-keys", "DeleteAccessKey", {"UserAccessKeyId": key}, f"AccessKey {key} deleted.")


routes = [
    Route("/", home, methods=["GET"]),
    Route("/me", me_page, methods=["GET"]),
    Route("/me/password", password_page, methods=["GET"]),
    Route("/me/password", password_submit, methods=["POST"]),
    Route("/access-keys", keys_page, methods=["GET"]),
    Route("/access-keys", create_key, methods=["POST"]),
    Route("/access-keys/created", key_created_page, methods=["GET"]),
    Route("/access-keys/{key}/status", key_status, methods=["POST"]),
    Route("/access-keys/{key}/delete", key_delete, methods=["POST"]),
]

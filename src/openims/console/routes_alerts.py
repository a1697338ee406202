"""The Alerts page: the account's alert rules (create from a preset or from conditions, switch on and off,
test, delete) and the latest alerts with their delivery status. Every change runs the same actions as the API
and `openims alerts` (CreateAlertRule, ...), so it is authorized and audited like them."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from openims.actions.registry import ACTIONTRAIL
from openims.console.web import Page, endpoint
from openims.errors import ApiError

V = ACTIONTRAIL.version


def _attributes(text: str) -> dict[str, str]:
    """`KEY=VALUE` lines as LookupAttribute parameters (a line without `=` is left for the action to refuse)."""
    params: dict[str, str] = {}
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for n, line in enumerate(lines, start=1):
        key, _, value = line.partition("=")
        params[f"LookupAttribute.{n}.Key"], params[f"LookupAttribute.{n}.Value"] = key.strip(), value.strip()
    return params


def _create_params(page: Page) -> dict[str, Any]:
    params: dict[str, Any] = {
        "RuleName": page.f("RuleName"),
        "Description": page.f("Description") or None,
        "Preset": page.f("Preset") or None,
        "Threshold": page.f("Threshold") or None,
        "WindowSeconds": page.f("WindowSeconds") or None,
        "GroupBy": page.f("GroupBy") or None,
        "Severity": page.f("Severity") or None,
        "WebhookUrl": page.f("WebhookUrl") or None,
        "WebhookSecret": page.f("WebhookSecret") or None,
        "SyslogAddress": page.f("SyslogAddress") or None,
        "SyslogTls": True if page.form.get("SyslogTls") == "on" else None,
        "SyslogFormat": page.f("SyslogFormat") or None,
        "EmailTo": page.f("EmailTo") or None,
    }
    if not params["Preset"]:
        params.update(_attributes(page.form.get("Conditions", "")))
    return params


def _render(
    page: Page, status: int = 200, error: ApiError | None = None, form: dict[str, str] | None = None
) -> Response:
    rules, rules_error = page.attempt("ListAlertRules", version=V)
    found, alerts_error = page.attempt("ListAlerts", {"MaxResults": 20}, version=V)
    presets = page.call("ListAlertPresets", version=V)["Presets"] if page.may("ListAlertPresets", _version=V) else []
    return page.render(
        "alerts.html",
        status=status,
        section="alerts",
        title="Alerts",
        rules=(rules or {}).get("AlertRules", []),
        rules_error=rules_error,
        alerts=(found or {}).get("Alerts", []),
        alerts_error=alerts_error,
        presets=presets,
        error=error,
        form=form or {},
        V=V,
    )


@endpoint()
def alerts_page(page: Page) -> Response:
    return _render(page)


@endpoint()
def create_rule(page: Page) -> Response:
    try:
        page.call("CreateAlertRule", _create_params(page), version=V)
    except ApiError as err:
        if err.code.startswith("NoPermission"):
            return page.failed("/alerts", "CreateAlertRule", err)
        # The form comes back as it was filled in, but for the secret.
        kept = {k: v for k, v in page.form.items() if k not in ("WebhookSecret", "csrf_token")}
        return _render(page, status=err.status, error=err, form=kept)
    return page.redirect("/alerts", f"Alert rule {page.f('RuleName')} created.")


def _rule_change(page: Page, action: str, params: dict[str, Any], done: str) -> Response:
    try:
        page.call(action, {"RuleName": page.request.path_params["name"], **params}, version=V)
    except ApiError as err:
        return page.failed("/alerts", action, err)
    return page.redirect("/alerts", done)


@endpoint()
def toggle_rule(page: Page) -> Response:
    enable = page.f("Enabled") == "true"
    name = page.request.path_params["name"]
    return _rule_change(
        page,
        "UpdateAlertRule",
        {"Enabled": enable},
        f"Alert rule {name} {'switched on' if enable else 'switched off'}.",
    )


@endpoint()
def test_rule(page: Page) -> Response:
    name = page.request.path_params["name"]
    return _rule_change(page, "TestAlertRule", {}, f"A test alert of {name} is on its way; its status shows below.")


@endpoint()
def delete_rule(page: Page) -> Response:
    name = page.request.path_params["name"]
    return _rule_change(page, "DeleteAlertRule", {}, f"Alert rule {name} deleted.")


routes = [
    Route("/alerts", alerts_page, methods=["GET"]),
    Route("/alerts", create_rule, methods=["POST"]),
    Route("/alerts/{name}/enabled", toggle_rule, methods=["POST"]),
    Route("/alerts/{name}/test", test_rule, methods=["POST"]),
    Route("/alerts/{name}/delete", delete_rule, methods=["POST"]),
]

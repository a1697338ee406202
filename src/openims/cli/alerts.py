"""`openims alerts create|update|list|delete|test|presets|history`: alert rules managed on the server by the
operator. Each command runs the same action as the API and the console (CreateAlertRule, ...), as the
account's root identity, so every change is audited like an API call (userAgent `openims-cli`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from openims.cli.tables import print_table
from openims.cli.trails import _account_args, _print, _run
from openims.config import ConfigError, Settings

TEST_WAIT_S = 30.0


def add_commands(sub: Any) -> None:
    """Add `alerts ...` to the `openims` subparsers."""
    alerts = sub.add_parser("alerts", help="manage alert rules (webhook, syslog and email alerts on events)")
    asub = alerts.add_subparsers(dest="alerts_command", required=True)

    create = asub.add_parser("create", help="create an alert rule (from a preset, or from conditions)")
    _rule_args(create, creating=True)
    create.set_defaults(func=cmd_create)

    upd = asub.add_parser("update", help="change an alert rule")
    _rule_args(upd, creating=False)
    upd.add_argument("--enable", dest="enabled", action="store_const", const="true", help="let the rule fire")
    upd.add_argument("--disable", dest="enabled", action="store_const", const="false", help="stop the rule firing")
    upd.add_argument(
        "--remove",
        action="append",
        default=[],
        choices=("webhook", "syslog", "email"),
        help="remove a destination (repeatable)",
    )
    upd.set_defaults(func=cmd_update)

    listing = asub.add_parser("list", help="list the account's alert rules and their latest alert")
    _account_args(listing)
    listing.set_defaults(func=cmd_list)

    presets = asub.add_parser("presets", help="list the presets")
    _account_args(presets)
    presets.set_defaults(func=cmd_presets)

    history = asub.add_parser("history", help="recent alerts with their delivery status")
    _account_args(history)
    history.add_argument("--rule", help="only this rule's alerts")
    history.add_argument("--max", type=int, default=20, help="alerts to show (1 to 100, default 20)")
    history.set_defaults(func=cmd_history)

    for name, helptext, func in (
        ("delete", "delete an alert rule", cmd_delete),
        ("test", "send a test alert to the rule's destinations and wait for the outcome", cmd_test),
    ):
        p = asub.add_parser(name, help=helptext)
        p.add_argument("name")
        _account_args(p)
        p.set_defaults(func=func)


def _rule_args(p: argparse.ArgumentParser, creating: bool) -> None:
    p.add_argument("name", help="rule name: up to 64 letters, digits, '.', '-' and '_'")
    _account_args(p)
    if creating:
        p.add_argument("--preset", help="a preset's condition (see `openims alerts presets`)")
        p.add_argument("--disabled", action="store_true", help="create it switched off")
    p.add_argument("--description")
    p.add_argument(
        "--attr",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a LookupAttribute condition, as in `events lookup` (repeatable; a key repeated matches any value)",
    )
    p.add_argument("--check", choices=("ForRootIdentity", "Weakened"), help="a named check")
    p.add_argument("--insight-type", help="fire on insight events of this type (or *)")
    p.add_argument("--insight-state", choices=("Start", "End", "All"), help="which insight events (default Start)")
    p.add_argument("--threshold", type=int, help="fire when this many matching events fall within --window")
    p.add_argument("--window", type=int, metavar="SECONDS", help="the threshold's window (60 to 86400)")
    p.add_argument("--group-by", choices=("SourceIpAddress", "User", "EventAccessKeyId", "EventName"))
    p.add_argument("--severity", choices=("low", "medium", "high"))
    p.add_argument("--webhook", metavar="URL", help="HTTPS URL receiving the signed alert JSON")
    p.add_argument("--webhook-secret-file", type=Path, metavar="FILE", help="file holding the webhook's HMAC secret")
    p.add_argument("--syslog", metavar="HOST:PORT", help="RFC 5424 syslog over TCP")
    p.add_argument("--syslog-tls", action="store_true", default=None, help="syslog over TLS (RFC 5425)")
    p.add_argument("--syslog-format", choices=("json", "cef"), help="the message body (default json)")
    p.add_argument("--email", action="append", default=[], metavar="ADDRESS", help="a recipient (repeatable)")


def _rule_params(args: argparse.Namespace) -> dict[str, str]:
    params: dict[str, str | None] = {
        "RuleName": args.name,
        "Preset": getattr(args, "preset", None),
        "Description": args.description,
        "Check": args.check,
        "InsightType": args.insight_type,
        "InsightState": args.insight_state,
        "Threshold": str(args.threshold) if args.threshold is not None else None,
        "WindowSeconds": str(args.window) if args.window is not None else None,
        "GroupBy": args.group_by,
        "Severity": args.severity,
        "WebhookUrl": args.webhook,
        "SyslogAddress": args.syslog,
        "SyslogTls": "true" if args.syslog_tls else None,
        "SyslogFormat": args.syslog_format,
        "EmailTo": ",".join(args.email) if args.email else None,
    }
    if getattr(args, "disabled", False):
        params["Enabled"] = "false"
    for n, pair in enumerate(args.attr, start=1):
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--attr must be KEY=VALUE, got {pair!r}")
        params[f"LookupAttribute.{n}.Key"], params[f"LookupAttribute.{n}.Value"] = key, value
    if args.webhook_secret_file:
        try:
            params["WebhookSecret"] = args.webhook_secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the webhook secret file: {exc.strerror}") from None
    return {k: v for k, v in params.items() if v is not None}


def _describe(rule: dict[str, Any]) -> str:
    if rule["Preset"]:
        return f"preset {rule['Preset']}"
    if rule["InsightType"]:
        return f"insight {rule['InsightType']} ({rule['InsightState']})"
    text = " ".join(f"{a['Key']}={a['Value']}" for a in rule["LookupAttributes"])
    if rule["Check"]:
        text += f" check {rule['Check']}"
    if rule["Threshold"] > 1:
        per = f" per {rule['GroupBy']}" if rule["GroupBy"] else ""
        text += f" >= {rule['Threshold']} in {rule['WindowSeconds']}s{per}"
    return text


def cmd_create(settings: Settings, args: argparse.Namespace) -> int:
    body = _run(settings, args, "CreateAlertRule", _rule_params(args))
    rule = body["AlertRule"]
    _print(
        args, body, f"Created alert rule {rule['RuleName']} ({_describe(rule)}) -> {', '.join(rule['Destinations'])}"
    )
    return 0


def cmd_update(settings: Settings, args: argparse.Namespace) -> int:
    params = _rule_params(args)
    if args.enabled:
        params["Enabled"] = args.enabled
    if args.remove:
        params["RemoveDestinations"] = ",".join(r.capitalize() for r in args.remove)
    body = _run(settings, args, "UpdateAlertRule", params)
    _print(args, body, f"Updated alert rule {body['AlertRule']['RuleName']}")
    return 0


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    body = _run(settings, args, "ListAlertRules", {})
    if args.json:
        _print(args, body, "")
        return 0
    rows = [
        {
            "Name": r["RuleName"],
            "On": "yes" if r["Enabled"] else "no",
            "Severity": r["Severity"],
            "Condition": _describe(r),
            "Destinations": ",".join(r["Destinations"]),
            "Last alert": f"{r['LastAlert']['AlertTime']} {r['LastAlert']['Status']}" if r["LastAlert"] else "-",
        }
        for r in body["AlertRules"]
    ]
    print_table(rows, ["Name", "On", "Severity", "Condition", "Destinations", "Last alert"])
    return 0


def cmd_presets(settings: Settings, args: argparse.Namespace) -> int:
    body = _run(settings, args, "ListAlertPresets", {})
    if args.json:
        _print(args, body, "")
        return 0
    print_table(body["Presets"], ["Preset", "Severity", "Description"])
    return 0


def _alert_rows(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "Time": a["AlertTime"],
            "Rule": a["RuleName"],
            "Status": a["Status"],
            "Attempts": a["Attempts"],
            "Summary": a["Summary"],
            "Error": a["LastError"],
            "AlertId": a["AlertId"],
        }
        for a in found
    ]


def cmd_history(settings: Settings, args: argparse.Namespace) -> int:
    params = {"MaxResults": str(args.max)} | ({"RuleName": args.rule} if args.rule else {})
    body = _run(settings, args, "ListAlerts", params)
    if args.json:
        _print(args, body, "")
        return 0
    print_table(_alert_rows(body["Alerts"]), ["Time", "Rule", "Status", "Attempts", "Summary", "Error", "AlertId"])
    return 0


def cmd_delete(settings: Settings, args: argparse.Namespace) -> int:
    body = _run(settings, args, "DeleteAlertRule", {"RuleName": args.name})
    _print(args, body, f"Deleted alert rule {args.name}")
    return 0


def cmd_test(settings: Settings, args: argparse.Namespace) -> int:
    """Queue a test alert, then follow it until a server's deliverer has tried every destination once."""
    alert_id = _run(settings, args, "TestAlertRule", {"RuleName": args.name})["AlertId"]
    deadline = time.monotonic() + TEST_WAIT_S
    while True:
        found = _run(settings, args, "ListAlerts", {"AlertId": alert_id})["Alerts"][0]
        if found["Status"] != "Pending" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if args.json:
        _print(args, found, "")
    elif found["Status"] == "Pending":
        print(
            f"Test alert {alert_id} is queued, but no deliverer took it within {TEST_WAIT_S:.0f} s: "
            "is `openims serve` (or `openims deliver`) running?"
        )
    elif found["Status"] == "Delivered":
        print(f"Test alert {alert_id} delivered to {', '.join(found['DeliveredTo'])}")
    else:
        print(f"Test alert {alert_id}: {found['Status']}; {found['LastError']}")
    return 0 if found["Status"] == "Delivered" else 1

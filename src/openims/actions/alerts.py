"""Alert rules (OpenIMS extensions of the ActionTrail API 2020-07-06) and DescribeUserAlertCount.

A rule's condition is LookupEvents' own LookupAttributes (or a preset, or an insight type), optionally a named
check and a threshold over a window; its destinations are a signed webhook, syslog and email. Evaluation and
delivery live in `openims.alerts`; these handlers store rules, bump the account's rule generation so every
process's cache sees the change, and report alerts with their delivery status. docs/alerts.md describes them.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, delete, func, insert, or_, select, update

from openims import clock, ids
from openims.actions.context import CallContext
from openims.actions.lookup import ATTRIBUTE
from openims.actions.registry import ACTIONTRAIL, WRITE, action
from openims.actions.trails import SYSLOG_ADDRESS, SYSLOG_TLS, WEBHOOK_SECRET, WEBHOOK_URL, check_push_targets
from openims.alerts import mail, payload
from openims.alerts.checks import CHECKS
from openims.alerts.presets import PRESETS
from openims.alerts.rules import GROUP_BY, compile_attributes, new_generation
from openims.alerts.send import KINDS, kinds_of
from openims.config import ConfigError
from openims.errors import ApiError, invalid, not_found
from openims.params import Bool, Int, Str, StrList
from openims.store.tables.alerts import alert_rules, alerts

RULE = "ACS::ActionTrail::AlertRule"
ARN = "alertrule/{RuleName}"
MAX_RULES = 50
SEVERITIES = ("low", "medium", "high")
MAX_COUNT_DAYS = 90

RULE_NAME = Str(
    "RuleName",
    required=True,
    max_len=64,
    pattern=r"[A-Za-z0-9][A-Za-z0-9._-]*",
    pattern_doc="must start with a letter or a digit and contain only letters, digits, periods (.), hyphens (-) "
    "and underscores (_)",
)
EMAIL = Str("EmailTo", max_len=254, pattern=r"[^@\s,]+@[^@\s,]+\.[^@\s,]+", pattern_doc="must be an email address")
REMOVE_CHOICES = {"Webhook": "webhook", "Syslog": "syslog", "Email": "email"}

RULE_PARAMS = (
    Str("Description", max_len=256, keep_empty=True),
    ATTRIBUTE,
    Str("Check", choices=CHECKS),
    Str("InsightType", max_len=64, pattern=r"\*|[A-Za-z][A-Za-z0-9]*", pattern_doc="must be an insight type or *"),
    Str("InsightState", choices=("Start", "End", "All")),
    Int("Threshold", min=1, max=100_000),
    Int("WindowSeconds", min=60, max=86_400),
    Str("GroupBy", choices=GROUP_BY),
    Str("Severity", choices=SEVERITIES),
    Bool("Enabled"),
    WEBHOOK_URL,
    WEBHOOK_SECRET,
    SYSLOG_ADDRESS,
    SYSLOG_TLS,
    Str("SyslogFormat", choices=("json", "cef")),
    StrList("EmailTo", comma_separated=True, max_items=10, item=EMAIL),
)


def find_rule(ctx: CallContext, name: str) -> Row[Any]:
    row = ctx.conn.execute(
        select(alert_rules).where(alert_rules.c.account_id == ctx.account_id, alert_rules.c.name == name)
    ).first()
    if row is None:
        raise not_found("AlertRule", name)
    return row


def _conflict(message: str) -> ApiError:
    return ApiError("InvalidParameterCombination", message)


def _condition_values(p: dict[str, Any]) -> dict[str, Any]:
    """Column values of the condition parameters given (a preset gives all of them)."""
    values: dict[str, Any] = {}
    if p.get("Preset"):
        if p["LookupAttribute"] or p["InsightType"] or p["Check"] or p["Threshold"] or p["GroupBy"]:
            raise _conflict(
                "A preset defines the condition: do not also give LookupAttribute, InsightType, Check, "
                "Threshold or GroupBy."
            )
        preset = PRESETS[p["Preset"]]
        return {
            "preset": preset.name,
            "severity": p["Severity"] or preset.severity,
            "conditions": json.dumps([list(a) for a in preset.attributes]),
            "check_name": preset.check,
            "insight_type": "",
            "insight_state": "",
            "threshold": preset.threshold,
            "window_s": p["WindowSeconds"] or preset.window_s,
            "group_by": preset.group_by,
        }
    if p["InsightState"] and p["LookupAttribute"]:
        raise _conflict("InsightState applies to an InsightType, not to LookupAttribute conditions.")
    if p["LookupAttribute"] or p["InsightType"]:
        # A new condition replaces the whole old one: its preset, check and threshold go unless given again.
        attributes = [[a["Key"] or "", a["Value"] or ""] for a in p["LookupAttribute"]]
        values.update(
            preset="",
            conditions=json.dumps(attributes),
            insight_type=p["InsightType"] or "",
            insight_state=(p["InsightState"] or "Start") if p["InsightType"] else "",
            check_name="",
            threshold=1,
            window_s=0,
            group_by="",
        )
    elif p["InsightState"] is not None:
        values["insight_state"] = p["InsightState"]
    for name, column in (("Check", "check_name"), ("GroupBy", "group_by")):
        if p[name] is not None:
            values[column] = p[name]
    for name, column in (("Threshold", "threshold"), ("WindowSeconds", "window_s"), ("Severity", "severity")):
        if p[name] is not None:
            values[column] = p[name]
    return values


def _destination_values(ctx: CallContext, p: dict[str, Any], rule_id: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, column in (
        ("WebhookUrl", "webhook_url"),
        ("SyslogAddress", "syslog_address"),
        ("SyslogTls", "syslog_tls"),
        ("SyslogFormat", "syslog_format"),
    ):
        if p[name] is not None:
            values[column] = p[name]
    if p["EmailTo"]:
        values["email_to"] = ",".join(p["EmailTo"])
    if p["WebhookSecret"]:
        values["webhook_secret_sealed"] = ctx.runtime.master_key.seal(p["WebhookSecret"], context=rule_id)
    return values


def _check_rule(rule: dict[str, Any]) -> None:
    """The whole rule, as it will be stored, is consistent: one condition, a sound threshold, a destination."""
    attributes = tuple((str(k), str(v)) for k, v in json.loads(rule["conditions"]))
    compile_attributes(attributes)  # the LookupAttribute errors of LookupEvents
    if bool(attributes) == bool(rule["insight_type"]):
        raise _conflict("Give the rule's condition: a Preset, LookupAttribute conditions, or an InsightType (one).")
    if rule["insight_state"] and not rule["insight_type"]:
        raise _conflict("InsightState applies to an InsightType, not to LookupAttribute conditions.")
    if rule["insight_type"] and rule["check_name"]:
        raise _conflict("A Check applies to LookupAttribute conditions, not to an InsightType.")
    counting = rule["threshold"] > 1
    if counting and not rule["window_s"]:
        raise _conflict("A Threshold above 1 needs WindowSeconds: the span in which the events are counted.")
    if not counting and (rule["window_s"] or rule["group_by"]):
        raise _conflict("WindowSeconds and GroupBy apply only to a Threshold above 1.")
    if counting and (rule["check_name"] or rule["insight_type"]):
        raise _conflict(
            "A Threshold counts events by their LookupAttribute conditions only: not with a Check or an InsightType."
        )
    if not any(rule[c] for c in ("webhook_url", "syslog_address", "email_to")):
        raise _conflict("Give the rule at least one destination: WebhookUrl, SyslogAddress or EmailTo.")
    if rule["webhook_url"] and rule["webhook_secret_sealed"] is None:
        raise ApiError("MissingWebhookSecret", "WebhookSecret is mandatory with a WebhookUrl (16 to 256 characters).")
    if rule["email_to"]:
        try:
            smtp = mail.configured()
        except ConfigError:
            smtp = None
        if smtp is None:
            raise invalid(
                "EmailTo",
                "NoSmtpServer",
                'The parameter "EmailTo" cannot be used: this server has no working SMTP server configured '
                "(the operator sets OPENIMS_SMTP_URL).",
            )


def rule_view(row: Row[Any], last: Row[Any] | None = None) -> dict[str, Any]:
    """A rule as ListAlertRules, CreateAlertRule and UpdateAlertRule return it (never the webhook secret)."""
    out: dict[str, Any] = {
        "RuleName": row.name,
        "Description": row.description,
        "Preset": row.preset,
        "Severity": row.severity,
        "Enabled": bool(row.enabled),
        "LookupAttributes": [{"Key": k, "Value": v} for k, v in json.loads(row.conditions)],
        "Check": row.check_name,
        "InsightType": row.insight_type,
        "InsightState": row.insight_state,
        "Threshold": row.threshold,
        "WindowSeconds": row.window_s,
        "GroupBy": row.group_by,
        "Destinations": [k.capitalize() for k in kinds_of(row)],
        "WebhookUrl": row.webhook_url,
        "SyslogAddress": row.syslog_address,
        "SyslogTls": bool(row.syslog_tls),
        "SyslogFormat": row.syslog_format,
        "EmailTo": [a for a in row.email_to.split(",") if a],
        "CreateTime": clock.iso(row.created_ms),
        "UpdateTime": clock.iso(row.updated_ms),
    }
    out["LastAlert"] = alert_view(last) if last is not None else None
    return out


def alert_status(row: Row[Any]) -> str:
    if row.finished_ms is not None:
        return "Abandoned" if row.last_error else "Delivered"
    return "Retrying" if row.attempts else "Pending"


def alert_view(row: Row[Any]) -> dict[str, Any]:
    body = json.loads(row.body)
    return {
        "AlertId": row.id,
        "RuleName": row.rule_name,
        "EventId": row.event_id,
        "AlertTime": clock.iso(row.created_ms),
        "Severity": body.get("severity", ""),
        "Title": body.get("title", ""),
        "Summary": body.get("summary", ""),
        "Test": bool(row.test),
        "Status": alert_status(row),
        "Attempts": row.attempts,
        "DeliveredTo": [k.capitalize() for k in KINDS if k in row.done_targets.split(",")],
        "LastAttemptTime": clock.iso(row.last_attempt_ms),
        "LastError": row.last_error or "",
    }


def _last_alert(ctx: CallContext, rule_id: str) -> Row[Any] | None:
    return ctx.conn.execute(
        select(alerts).where(alerts.c.rule_id == rule_id).order_by(alerts.c.created_ms.desc(), alerts.c.id).limit(1)
    ).first()


@action(
    "CreateAlertRule",
    service=ACTIONTRAIL,
    rw=WRITE,
    resource=(RULE, "RuleName"),
    arn=ARN,
    extension=True,
    params=(RULE_NAME, Str("Preset", choices=tuple(PRESETS)), *RULE_PARAMS),
)
def create_alert_rule(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create an alert rule: a condition (Preset, LookupAttribute conditions as LookupEvents reads them, with a
    key given several times matching any of its values, or InsightType), an optional Check, an optional
    Threshold of matching events within WindowSeconds (per GroupBy value), and at least one destination
    (WebhookUrl with WebhookSecret, SyslogAddress, EmailTo). Enabled unless Enabled=false."""
    count = ctx.conn.execute(
        select(func.count()).select_from(alert_rules).where(alert_rules.c.account_id == ctx.account_id)
    ).scalar_one()
    if count >= MAX_RULES:
        raise ApiError("LimitExceeded.AlertRule", f"An account may have at most {MAX_RULES} alert rules.")
    rule_id = ids.event_id().replace("-", "").lower()
    rule: dict[str, Any] = {
        "id": rule_id,
        "account_id": ctx.account_id,
        "name": p["RuleName"],
        "description": p["Description"] or "",
        "enabled": True if p["Enabled"] is None else p["Enabled"],
        "preset": "",
        "severity": "medium",
        "conditions": "[]",
        "check_name": "",
        "insight_type": "",
        "insight_state": "",
        "threshold": 1,
        "window_s": 0,
        "group_by": "",
        "webhook_url": "",
        "webhook_secret_sealed": None,
        "syslog_address": "",
        "syslog_tls": False,
        "syslog_format": "json",
        "email_to": "",
        "created_ms": ctx.now_ms,
        "updated_ms": ctx.now_ms,
    }
    check_push_targets(p)
    rule.update(_condition_values(p))
    rule.update(_destination_values(ctx, p, rule_id))
    _check_rule(rule)
    ctx.conn.execute(insert(alert_rules).values(**rule))
    new_generation(ctx.conn, ctx.account_id)
    return {"AlertRule": rule_view(find_rule(ctx, p["RuleName"]))}


@action(
    "UpdateAlertRule",
    service=ACTIONTRAIL,
    rw=WRITE,
    resource=(RULE, "RuleName"),
    arn=ARN,
    extension=True,
    params=(
        RULE_NAME,
        *RULE_PARAMS,
        StrList(
            "RemoveDestinations",
            comma_separated=True,
            max_items=3,
            item=Str("RemoveDestinations", choices=tuple(REMOVE_CHOICES)),
        ),
    ),
)
def update_alert_rule(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Change an alert rule: parameters not given keep their value. New LookupAttribute conditions or an
    InsightType replace the condition (and the preset it came from); RemoveDestinations (Webhook, Syslog,
    Email) drops destinations. Enabled=false keeps the rule but stops it firing."""
    row = find_rule(ctx, p["RuleName"])
    check_push_targets(p)
    rule = {c.name: getattr(row, c.name) for c in alert_rules.columns}
    for removed in p["RemoveDestinations"]:
        kind = REMOVE_CHOICES[removed]
        if kind == "webhook":
            rule.update(webhook_url="", webhook_secret_sealed=None)
        elif kind == "syslog":
            rule.update(syslog_address="", syslog_tls=False, syslog_format="json")
        else:
            rule["email_to"] = ""
    if p["Description"] is not None:
        rule["description"] = p["Description"]
    if p["Enabled"] is not None:
        rule["enabled"] = p["Enabled"]
    rule.update(_condition_values(p))
    rule.update(_destination_values(ctx, p, row.id))
    rule["updated_ms"] = max(ctx.now_ms, row.updated_ms + 1)  # a new version for the deliverers' caches
    _check_rule(rule)
    ctx.conn.execute(update(alert_rules).where(alert_rules.c.id == row.id).values(**rule))
    new_generation(ctx.conn, ctx.account_id)
    return {"AlertRule": rule_view(find_rule(ctx, p["RuleName"]))}


@action(
    "DeleteAlertRule",
    service=ACTIONTRAIL,
    rw=WRITE,
    resource=(RULE, "RuleName"),
    arn=ARN,
    extension=True,
    params=(RULE_NAME,),
)
def delete_alert_rule(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete an alert rule. Its past alerts stay listed (and counted); those not yet delivered are abandoned."""
    row = find_rule(ctx, p["RuleName"])
    ctx.conn.execute(delete(alert_rules).where(alert_rules.c.id == row.id))
    new_generation(ctx.conn, ctx.account_id)
    return {}


@action(
    "TestAlertRule",
    service=ACTIONTRAIL,
    rw=WRITE,
    resource=(RULE, "RuleName"),
    arn=ARN,
    extension=True,
    params=(RULE_NAME,),
)
def test_alert_rule(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Queue a test alert (`"test": true`, no event) to every destination of the rule, delivered like any other;
    ListAlerts with the AlertId returned shows how delivery went."""
    row = find_rule(ctx, p["RuleName"])
    alert = payload.test_alert_id()
    body = payload.build(
        alert=alert,
        account_id=ctx.account_id,
        rule_name=row.name,
        preset=row.preset,
        severity=row.severity,
        title=f"Test of alert rule {row.name}",
        created_ms=ctx.now_ms,
        event=None,
        test=True,
    )
    ctx.conn.execute(
        insert(alerts).values(
            id=alert,
            account_id=ctx.account_id,
            rule_id=row.id,
            rule_name=row.name,
            created_ms=ctx.now_ms,
            test=True,
            body=payload.dumps(body),
            next_attempt_ms=ctx.now_ms,
        )
    )
    return {"AlertId": alert}


@action("ListAlertRules", service=ACTIONTRAIL, arn="alertrule/*", extension=True)
def list_alert_rules(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The account's alert rules with their destinations and their latest alert's delivery status."""
    rows = ctx.conn.execute(
        select(alert_rules).where(alert_rules.c.account_id == ctx.account_id).order_by(alert_rules.c.name)
    ).all()
    return {"AlertRules": [rule_view(r, _last_alert(ctx, r.id)) for r in rows]}


@action("ListAlertPresets", service=ACTIONTRAIL, arn="*", extension=True)
def list_alert_presets(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The presets CreateAlertRule accepts, with the condition each stands for."""
    return {
        "Presets": [
            {
                "Preset": preset.name,
                "Description": preset.summary,
                "Severity": preset.severity,
                "LookupAttributes": [{"Key": k, "Value": v} for k, v in preset.attributes],
                "Check": preset.check,
                "Threshold": preset.threshold,
                "WindowSeconds": preset.window_s,
                "GroupBy": preset.group_by,
            }
            for preset in PRESETS.values()
        ]
    }


def _page_token(row: Row[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps([row.created_ms, row.id]).encode()).decode().rstrip("=")


def _after(token: str) -> Any:
    try:
        created_ms, alert = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        created_ms, alert = int(created_ms), str(alert)
    except (ValueError, TypeError):
        raise invalid(
            "NextToken", "Format", 'The parameter - "NextToken" is not valid: pass the previous NextToken unchanged.'
        ) from None
    return or_(alerts.c.created_ms < created_ms, and_(alerts.c.created_ms == created_ms, alerts.c.id > alert))


@action(
    "ListAlerts",
    service=ACTIONTRAIL,
    arn="*",
    extension=True,
    params=(
        Str("RuleName", max_len=64),
        Str("AlertId", max_len=36),
        Int("MaxResults", min=1, max=100, default=20),
        Str("NextToken", max_len=256),
    ),
)
def list_alerts(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The account's alerts, newest first, with each one's delivery status (Pending, Retrying, Delivered or
    Abandoned), attempts and last error; RuleName or AlertId narrow the list."""
    where = [alerts.c.account_id == ctx.account_id]
    if p["RuleName"]:
        where.append(alerts.c.rule_name == p["RuleName"])
    if p["AlertId"]:
        where.append(alerts.c.id == p["AlertId"])
    if p["NextToken"]:
        where.append(_after(p["NextToken"]))
    rows = ctx.conn.execute(
        select(alerts).where(*where).order_by(alerts.c.created_ms.desc(), alerts.c.id).limit(p["MaxResults"] + 1)
    ).all()
    out: dict[str, Any] = {"Alerts": [alert_view(r) for r in rows[: p["MaxResults"]]]}
    if len(rows) > p["MaxResults"]:
        out["NextToken"] = _page_token(rows[p["MaxResults"] - 1])
    return out


def _day(value: str | None, name: str, default: date) -> date:
    if not value:
        return default
    try:
        return datetime.strptime(value[:10], "%Y-%m-%d").date()
    except ValueError:
        raise invalid(name, "Format", f'The parameter "{name}" must be a date: YYYY-MM-DD.') from None


@action(
    "DescribeUserAlertCount",
    service=ACTIONTRAIL,
    arn="*",
    params=(Str("StartDate", max_len=32), Str("EndDate", max_len=32)),
)
def describe_user_alert_count(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """How many alerts the account's rules raised each day (UTC) from StartDate to EndDate (YYYY-MM-DD, both
    included; by default the last 7 days, at most 90 days). Test alerts are not counted."""
    today = datetime.fromtimestamp(ctx.now_ms / 1000, tz=UTC).date()
    end = _day(p["EndDate"], "EndDate", today)
    start = _day(p["StartDate"], "StartDate", end - timedelta(days=6))
    if start > end:
        raise ApiError("InvalidParameterCombination", "The end date must not be earlier than the start date.")
    if (end - start).days >= MAX_COUNT_DAYS:
        raise ApiError("InvalidParameterCombination", f"The dates may span at most {MAX_COUNT_DAYS} days.")
    start_ms = int(datetime.combine(start, datetime.min.time(), UTC).timestamp() * 1000)
    end_ms = int(datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC).timestamp() * 1000)
    times = ctx.conn.execute(
        select(alerts.c.created_ms).where(
            alerts.c.account_id == ctx.account_id,
            alerts.c.created_ms >= start_ms,
            alerts.c.created_ms < end_ms,
            alerts.c.test.is_(False),
        )
    ).scalars()
    counts: dict[date, int] = {}
    for ms in times:
        day = datetime.fromtimestamp(ms / 1000, tz=UTC).date()
        counts[day] = counts.get(day, 0) + 1
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    return {"Data": {"Dates": [d.isoformat() for d in days], "Counts": [counts.get(d, 0) for d in days]}}

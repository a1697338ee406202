"""Raising alerts: called by `audit.event.record` for every event, in the event's own transaction, so an alert
commits with its triggering event or not at all.

An account without rules costs one primary-key read (its generation token, see openims.alerts.rules); with
rules, each is tested in memory on the event's column values. Only an event that meets a rule's attributes
runs its named check, and only then does a threshold rule count the matching events of its window (one
indexed count). A leaf of the audit package's graph: it must not import openims.audit.event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from openims import clock
from openims.alerts import checks, payload
from openims.alerts.presets import PRESETS
from openims.alerts.rules import Rule, enabled_rules, group_column
from openims.store.schema import events
from openims.store.tables.alerts import alert_rule_state, alerts
from openims.store.upsert import dialect_insert

_INSERT_ALERT = alerts.insert()


def queue_alerts(conn: Connection, event: Mapping[str, Any], row: Mapping[str, Any]) -> None:
    """Queue an alert for each enabled rule of the event's account that the event fires."""
    account_id = row.get("account_id")
    if not account_id:
        return
    for rule in enabled_rules(conn, account_id):
        if not rule.matches(event, row) or not checks.passes(conn, rule.check, event):
            continue
        threshold = None
        if rule.counts:
            threshold = _crossed(conn, rule, row)
            if threshold is None:
                continue
        _queue(conn, rule, event, threshold)


def _crossed(conn: Connection, rule: Rule, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """For a threshold rule whose condition the event met: the counts, when this event brings the group's
    matching events within the window to the threshold and the rule has not fired for the group within the
    window; else None. A sustained burst thus raises one alert per window, not one per event."""
    column = group_column(rule.group_by)
    value = str(row.get(column.name) or "") if column is not None else ""
    key = f"{rule.group_by}={value}"[:255] if column is not None else "*"
    at = int(row["event_ms"])
    # The group's state row first: on PostgreSQL its row lock orders concurrent matching events, so the count
    # below (a statement after the lock is held) sees every one committed before this.
    ins = dialect_insert(conn, alert_rule_state).values(rule_id=rule.rule_id, group_key=key, touched_ms=at)
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=[alert_rule_state.c.rule_id, alert_rule_state.c.group_key], set_={"touched_ms": at}
        )
    )
    state = (alert_rule_state.c.rule_id == rule.rule_id, alert_rule_state.c.group_key == key)
    last = conn.execute(select(alert_rule_state.c.last_fired_ms).where(*state)).scalar() or 0
    if last and last > at - rule.window_ms:
        return None
    where = [
        events.c.account_id == row["account_id"],
        events.c.event_ms > at - rule.window_ms,
        events.c.event_ms <= at,
        *(or_(*(p.clause() for p in group)) for group in rule.groups),
    ]
    if column is not None:
        where.append(column == value)
    count = conn.execute(select(func.count()).select_from(events).where(and_(*where))).scalar_one()
    if count < rule.threshold:
        return None
    conn.execute(update(alert_rule_state).where(*state).values(last_fired_ms=at))
    found: dict[str, Any] = {"count": count, "threshold": rule.threshold, "windowSeconds": rule.window_ms // 1000}
    if column is not None:
        found.update(groupBy=rule.group_by, group=value)
    return found


def _queue(conn: Connection, rule: Rule, event: Mapping[str, Any], threshold: dict[str, Any] | None) -> None:
    now = clock.now_ms()
    alert = payload.alert_id(rule.rule_id, str(event["eventId"]))
    preset = PRESETS.get(rule.preset)
    body = payload.build(
        alert=alert,
        account_id=str(event["recipientAccountId"]),
        rule_name=rule.name,
        preset=rule.preset,
        severity=rule.severity,
        title=preset.summary if preset else f"Alert rule {rule.name} matched",
        created_ms=now,
        event=event,
        threshold=threshold,
    )
    conn.execute(
        _INSERT_ALERT,
        {
            "id": alert,
            "account_id": event["recipientAccountId"],
            "rule_id": rule.rule_id,
            "rule_name": rule.name,
            "event_id": event["eventId"],
            "created_ms": now,
            "body": payload.dumps(body),
            "next_attempt_ms": now,
        },
    )

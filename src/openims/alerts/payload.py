"""The alert as its destinations receive it: one JSON object, fixed when the alert is raised (so that every
retry sends the same content under the same alert ID), rendered for each destination by openims.alerts.send."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from openims import clock

# Alert IDs are UUIDv5 of `<rule id>/<event id>` in this namespace: the same rule and event always give the same ID.
_NAMESPACE = uuid.UUID("0d6f4d7e-5b4e-4c0f-9a55-6f70656e696d")


def alert_id(rule_id: str, event_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{rule_id}/{event_id}"))


def test_alert_id() -> str:
    return str(uuid.uuid4())


def summary(event: Mapping[str, Any]) -> str:
    """One line on what happened: `<eventName> by <user> from <ip>` and its error code, if it failed."""
    identity = event.get("userIdentity") or {}
    who = identity.get("userName") or identity.get("accessKeyId") or identity.get("type") or "unknown"
    text = f"{event.get('eventName', '')} by {who} from {event.get('sourceIpAddress', '') or 'unknown'}"
    return text + (f" failed with {event['errorCode']}" if event.get("errorCode") else "")


def build(
    *,
    alert: str,
    account_id: str,
    rule_name: str,
    preset: str,
    severity: str,
    title: str,
    created_ms: int,
    event: Mapping[str, Any] | None,
    threshold: Mapping[str, Any] | None = None,
    test: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "alertId": alert,
        "alertTime": clock.iso(created_ms),
        "accountId": account_id,
        "ruleName": rule_name,
        "preset": preset,
        "severity": severity,
        "title": title,
        "summary": summary(event) if event else "Test alert: the rule's destinations are reachable",
        "test": test,
    }
    if threshold is not None:
        body["threshold"] = dict(threshold)
    body["event"] = dict(event) if event else None
    return body


def dumps(body: Mapping[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

"""ArcSight Common Event Format (CEF:0) for an alert, as SIEMs read it from syslog:
`CEF:0|OpenIMS|OpenIMS|1|<signature>|<name>|<severity 0-10>|<key=value ...>`.

Header fields escape `\\` and `|`; extension values escape `\\` and `=` and write line breaks as `\\n`
(the format's own rules). Keys are CEF's standard dictionary names where one fits, else `cs1`..`cs4` with
their labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openims import clock

_SEVERITY = {"low": 3, "medium": 6, "high": 9}


def _header(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _value(value: Any) -> str:
    text = "" if value is None else str(value)
    return (
        text.replace("\\", "\\\\").replace("=", "\\=").replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")
    )


def format_alert(alert: Mapping[str, Any]) -> str:
    """The CEF record of an alert (see payload.build for its fields)."""
    event: Mapping[str, Any] = alert.get("event") or {}
    identity: Mapping[str, Any] = event.get("userIdentity") or {}
    signature = alert.get("preset") or alert.get("ruleName") or "alert"
    extension: list[tuple[str, Any]] = [
        ("rt", clock.parse_iso(str(alert["alertTime"]))),
        ("externalId", alert["alertId"]),
        ("msg", alert.get("summary")),
        ("cs1Label", "ruleName"),
        ("cs1", alert.get("ruleName")),
        ("cs2Label", "accountId"),
        ("cs2", alert.get("accountId")),
    ]
    if event:
        extension += [
            ("act", event.get("eventName")),
            ("src", event.get("sourceIpAddress")),
            ("suser", identity.get("userName")),
            ("requestClientApplication", event.get("userAgent")),
            ("outcome", "failure" if event.get("errorCode") else "success"),
            ("reason", event.get("errorCode")),
            ("cs3Label", "eventId"),
            ("cs3", event.get("eventId")),
            ("cs4Label", "accessKeyId"),
            ("cs4", identity.get("accessKeyId")),
        ]
    threshold = alert.get("threshold")
    if threshold:
        extension.append(("cnt", threshold.get("count")))
    head = "|".join(
        [
            "CEF:0",
            "OpenIMS",
            "OpenIMS",
            "1",
            _header(str(signature)),
            _header(str(alert.get("title") or signature)),
            str(_SEVERITY.get(str(alert.get("severity")), 5)),
        ]
    )
    return head + "|" + " ".join(f"{k}={_value(v)}" for k, v in extension if v not in (None, ""))

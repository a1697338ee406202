"""Builds the ActionTrail event for any call from its declaration, the caller, the params and the outcome."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from openims import clock, ids, jsontext
from openims.actions.registry import ACTIONTRAIL, Service
from openims.alerts import evaluate
from openims.audit import lookup, resource_index
from openims.delivery import outbox
from openims.ops import event_counts
from openims.principal import Principal
from openims.store.prepared import Prepared
from openims.store.schema import events
from openims.store.tables.integrity import log_queue

REDACTED = "******"
MAX_PARAM_CHARS = 2048
# Protocol fields of the v2 signature: not the caller's parameters.
PROTOCOL_PARAMS = frozenset(
    {
        "Action",
        "Version",
        "Format",
        "AccessKeyId",
        "Signature",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "SignatureType",
        "Timestamp",
    }
)
# Defense in depth: these names are redacted wherever they appear, even if a declaration forgot them.
# Matched case-insensitively: the gateway treats `password=` and `Password=` alike, so must we.
SECRET_NAMES = frozenset(
    n.lower()
    for n in (
        "Password",
        "NewPassword",
        "OldPassword",
        "AccessKeySecret",
        "AppSecretValue",
        "Base32StringSeed",
        "QRCodePNG",
        "AuthenticationCode1",
        "AuthenticationCode2",
        "ServiceCredentialSecret",
        "SecretAccessKey",
        "ClientSecret",
        "MFACode",
        "Secret",
    )
)


def is_secret(name: str, secret: frozenset[str]) -> bool:
    """Whether a field (or a flattened list item such as `Tag.1.Value`, by its leaf) holds a secret."""
    lowered = name.lower()
    leaf = lowered.rsplit(".", 1)[-1]
    return any(n.lower() in (lowered, leaf) for n in secret) or lowered in SECRET_NAMES or leaf in SECRET_NAMES


def redact(value: Any, secret: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {
            k: (REDACTED if is_secret(k, secret) and v not in (None, "") else redact(v, secret))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, secret) for v in value]
    return value


def request_parameters(raw: Mapping[str, str], secret: frozenset[str]) -> dict[str, str]:
    out = {}
    for key, value in raw.items():
        if key in PROTOCOL_PARAMS:
            continue
        if is_secret(key, secret):
            out[key] = REDACTED
        elif len(value) > MAX_PARAM_CHARS:
            out[key] = value[:MAX_PARAM_CHARS] + f"...({len(value) - MAX_PARAM_CHARS} more characters)"
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Origin:
    """Where a call came from, as its event records it."""

    source_ip: str
    user_agent: str
    scheme: str = "http"


def build(
    *,
    name: str,
    service: Service,
    rw: str,
    principal: Principal,
    origin: Origin,
    request_id: str,
    region: str,
    api_version: str = "",
    raw_params: Mapping[str, str] | None = None,
    secret: frozenset[str] = frozenset(),
    resource_type: str = "",
    resources: Sequence[tuple[str, str]] = (),
    response: dict[str, Any] | None = None,
    error: tuple[str, str] | None = None,
    additional: dict[str, Any] | None = None,
    event_ms: int | None = None,
    sensitive: bool = False,
    changes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One ActionTrail event record (eventVersion 1). `changes` (what a write changed in each resource, see
    openims.lifecycle) goes in additionalEventData.resourceChanges."""
    when = event_ms if event_ms is not None else clock.now_ms()
    params = request_parameters(raw_params or {}, secret)
    referenced: dict[str, list[str]] = {}
    # The declared type first, as ActionTrail lists the resource acted on first.
    if resource_type and any(t == resource_type for t, _ in resources):
        referenced[resource_type] = []
    for rtype, rname in resources:
        if rname not in referenced.setdefault(rtype, []):
            referenced[rtype].append(rname)
    extra = dict(additional or {})
    if changes:
        extra["resourceChanges"] = changes
    event: dict[str, Any] = {
        "eventId": ids.event_id(),
        "eventVersion": 1,
        "eventName": name,
        "eventSource": service.event_source,
        "eventType": principal.event_type,
        "eventCategory": "Management",
        "eventRW": rw,
        "eventTime": clock.iso(when),
        "acsRegion": region,
        "isGlobal": service is not ACTIONTRAIL,
        "apiVersion": api_version,
        "requestId": request_id,
        "serviceName": service.name,
        "sourceIpAddress": origin.source_ip,
        "userAgent": origin.user_agent,
        "userIdentity": principal.identity(),
        "requestParameters": params,
        "requestParameterJson": json.dumps(params, ensure_ascii=False, sort_keys=True),
        # ActionTrail's format: the types separated by ";", and per type its names separated by "," (the
        # groups in the same order, separated by ";").
        "resourceType": ";".join(referenced),
        "resourceName": ";".join(",".join(names) for names in referenced.values()),
        "referencedResources": referenced,
        "recipientAccountId": principal.account_id,
        "additionalEventData": {"scheme": origin.scheme, **extra},
    }
    if response is not None and rw == "Write":
        event["responseElements"] = redact({**response, "RequestId": request_id}, secret)
    if error is not None:
        event["errorCode"], event["errorMessage"] = error
    event["_ms"] = when
    event["_sensitive"] = sensitive
    return event


# Control characters no event value keeps: PostgreSQL text cannot hold NUL, XML none of them.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# The same characters as JSON writes them (an escape: a backslash after an even run of backslashes); tab, line
# feed and carriage return are written \t, \n and \r. The exact pattern is slow (~100 µs over an event), so
# it only confirms what a cheap one (~1 µs) finds.
_ESCAPED_CONTROL = re.compile(r"(?<!\\)(?:\\\\)*\\(?:u00[01][0-9a-fA-F]|b|f)")
_MAYBE_CONTROL = re.compile(r"\\[ubf]")


def _storable(value: Any) -> Any:
    """The value with each control character replaced by U+FFFD, so every backend stores the same event and
    every response format can carry it (the replacement still shows that something was there)."""
    if isinstance(value, str):
        return _CONTROL.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def mfa_used(event: dict[str, Any]) -> bool:
    """Whether the caller had passed MFA: the session's mfaAuthenticated, or a sign-in that checked a code."""
    attrs = (event.get("userIdentity") or {}).get("sessionContext", {}).get("attributes", {})
    if str(attrs.get("mfaAuthenticated", "")).lower() == "true":
        return True
    extra = event.get("additionalEventData") or {}
    return str(extra.get("MFAChecked", extra.get("isMFAChecked", ""))).lower() == "true"


# Every column but the key the database assigns.
_ROW = [c.name for c in events.columns if c.name != "seq"]
_INSERT_EVENT = Prepared(events.insert().returning(events.c.seq), _ROW)
_QUEUE_FOR_LOG = Prepared(log_queue.insert(), ["account_id", "event_id"])


def record(conn: Connection, event: dict[str, Any]) -> None:
    """Insert the event (each control character in it replaced by U+FFFD), queue it for the tamper-evident log,
    for the trails that deliver it and as the alerts its account's rules raise for it, in the caller's
    transaction: the event and its queue rows commit or roll back together, whoever writes the event (API,
    console, CLI, housekeeping)."""
    when = event.pop("_ms")
    sensitive = bool(event.pop("_sensitive", False))
    body = jsontext.dumps(event)
    # Rare: the event is walked only when a value holds a control character.
    if _MAYBE_CONTROL.search(body) and _ESCAPED_CONTROL.search(body):
        clean = _storable(event)
        event.clear()
        event.update(clean)
        body = jsontext.dumps(event)
    identity = event["userIdentity"]
    row = {
        "event_id": event["eventId"],
        "account_id": event["recipientAccountId"],
        "event_ms": when,
        "event_name": event["eventName"],
        # An insight event is neither a read nor a write: filed under its category (Insight).
        "event_rw": event.get("eventRW") or event["eventCategory"],
        "service_name": event["serviceName"],
        "user_name": identity.get("userName", ""),
        "access_key_id": identity.get("accessKeyId", ""),
        "resource_type": event["resourceType"][:64],
        "resource_name": event["resourceName"][:255],
        "error_code": event.get("errorCode"),
        "source_ip": event["sourceIpAddress"][:64],
        "mfa_used": mfa_used(event),
        "principal_id": str(identity.get("principalId", ""))[:64],
        "event_type": event["eventType"][:32],
        "sensitive": sensitive,
        "body": body,
    }
    seq = _INSERT_EVENT.scalar(conn, row)
    indexed = resource_index.rows(int(seq), event["recipientAccountId"], when, event)
    resource_index.add(conn, indexed)
    _QUEUE_FOR_LOG.execute(conn, {"account_id": event["recipientAccountId"], "event_id": event["eventId"]})
    outbox.queue_event(conn, event, when)
    event_counts.observe(conn, event)
    # Alert rules test the same values LookupEvents filters on, the event's every resource included.
    resources = [(r["resource_type"], r["resource_name"]) for r in indexed]
    evaluate.queue_alerts(conn, event, {**row, lookup.RESOURCES: resources})

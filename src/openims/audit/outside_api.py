"""Events written outside the API: console sign-in, what the operator does with the `openims` command on the
server (`account set-password`, `set-mfa`, `unset-mfa`), and rules housekeeping enforces (idle AccessKeys). One
builder for all of them, told where the event came from by a small `Origin`; recorded like API events, so trails
deliver them too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from openims import ids
from openims.actions.registry import IMS, WRITE, Service
from openims.audit import event as audit
from openims.audit.event import Origin
from openims.errors import ApiError
from openims.insights import catalogue as insight_catalogue
from openims.principal import ROOT, Principal
from openims.runtime import Runtime

# The operator's commands on the server: recorded as the account's root identity, from `localhost`.
CLI = Origin(source_ip="localhost", user_agent="openims-cli")
# Rules OpenIMS enforces by itself, in housekeeping.
HOUSEKEEPING = Origin(source_ip="localhost", user_agent="openims-housekeeping")
# ConsoleSignin events carry the console's service, as Alibaba's do.
CONSOLE_SIGNIN = Service("AasSub", "", "signin.aliyun.com", "")
# Insight events: ActionTrail's own analysis of the account's events (openims.insights).
INSIGHTS = Service("Actiontrail", "", "actiontrail.aliyuncs.com", "")
INSIGHT_AGENT = "openims-insights"
# API fields an insight event has no use for (ActionTrail's insight event format carries none of them).
_NOT_IN_INSIGHTS = (
    "eventRW",
    "apiVersion",
    "requestParameters",
    "requestParameterJson",
    "referencedResources",
    "requestId",
    "additionalEventData",
)


def record(
    rt: Runtime,
    conn: Connection,
    name: str,
    principal: Principal,
    origin: Origin,
    *,
    service: Service = IMS,
    resource_type: str = "",
    resources: Sequence[tuple[str, str]] = (),
    raw_params: Mapping[str, str] | None = None,
    response: dict[str, Any] | None = None,
    error: tuple[str, str] | None = None,
    additional: dict[str, Any] | None = None,
    event_ms: int | None = None,
) -> str:
    """Record one Write event named `name` in `conn`'s transaction; `error` makes it a refused attempt.
    Returns its eventId."""
    event = audit.build(
        name=name,
        service=service,
        rw=WRITE,
        principal=principal,
        origin=origin,
        request_id=ids.request_id(),
        region=rt.settings.region,
        resource_type=resource_type,
        resources=resources,
        raw_params=raw_params,
        response=response,
        error=error,
        additional=additional,
        event_ms=event_ms,
    )
    event_id: str = event["eventId"]
    audit.record(conn, event)
    return event_id


def root_of(account_id: str) -> Principal:
    """The account's root identity, as which the operator's commands act."""
    return Principal(account_id=account_id, kind=ROOT, principal_id=account_id, user_name="root")


def operator_event(
    rt: Runtime,
    conn: Connection,
    account_id: str,
    name: str,
    err: ApiError | None = None,
    *,
    params: Mapping[str, str] | None = None,
    response: dict[str, Any] | None = None,
) -> None:
    """The event of an operator's command on the account (`err`: the command was refused)."""
    record(
        rt,
        conn,
        name,
        root_of(account_id),
        CLI,
        raw_params=params,
        response=(response or {}) if err is None else None,
        error=(err.code, err.message) if err is not None else None,
    )


def console_signin(
    rt: Runtime,
    conn: Connection,
    principal: Principal,
    origin: Origin,
    *,
    login: str,
    mfa_checked: bool,
    error: tuple[str, str] | None,
    mfa_required: bool = False,
    resources: Sequence[tuple[str, str]] = (),
    extra: dict[str, Any] | None = None,
    event_ms: int | None = None,
) -> str:
    """A ConsoleSignin event (RAM user or root; success, refusal, or a right password that awaits its MFA
    code). Returns its eventId."""
    checked = "true" if mfa_checked else "false"
    additional: dict[str, Any] = {
        "loginAccount": login,
        "MFAChecked": checked,
        "isMFAChecked": checked,
        "LoginResult": "success" if error is None else ("MFARequired" if mfa_required else "fail"),
        "loginType": "password",
        **(extra or {}),
    }
    return record(
        rt,
        conn,
        "ConsoleSignin",
        principal,
        Origin(origin.source_ip[:64], origin.user_agent[:512], origin.scheme),
        service=CONSOLE_SIGNIN,
        resource_type=resources[0][0] if resources else "",
        resources=resources,
        error=error,
        additional=additional,
        event_ms=event_ms,
    )


def insight_event(
    rt: Runtime,
    conn: Connection,
    principal: Principal,
    details: dict[str, Any],
    *,
    shared_event_id: str,
    source_ip: str,
    event_ms: int,
) -> dict[str, Any]:
    """Record an insight event (`eventType` ActionTrailInsight, `eventName` its insight type) with its
    `insightDetails`; `principal` is whom it is about (the system for an account-wide rate). Returns it."""
    event = audit.build(
        name=details["insightType"],
        service=INSIGHTS,
        rw=WRITE,
        principal=principal,
        origin=Origin(source_ip[:64] or "Internal", INSIGHT_AGENT),
        request_id="",
        region=rt.settings.region,
        event_ms=event_ms,
    )
    for name in _NOT_IN_INSIGHTS:
        event.pop(name, None)
    event.update(
        eventType=insight_catalogue.EVENT_TYPE,
        eventCategory=insight_catalogue.CATEGORY,
        sharedEventId=shared_event_id,
        insightDetails=details,
    )
    audit.record(conn, event)
    return event

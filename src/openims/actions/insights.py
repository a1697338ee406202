"""ActionTrail Insights (API 2020-07-06): switch insight types on and off, choose which a trail delivers, count
and look up insight events. Detection itself is openims.insights, a background job off the write path."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select

from openims import clock
from openims.actions.context import CallContext
from openims.actions.registry import ACTIONTRAIL, WRITE, action
from openims.actions.trails import TRAIL, find_trail, trail_arn
from openims.audit.lookup import Query, window
from openims.delivery import outbox
from openims.errors import ApiError
from openims.insights import catalogue, query
from openims.params import Int, ObjList, Str, load_json
from openims.store.tables.insights import insight_selectors, insight_types

INSIGHT_TYPE = Str("InsightType", max_len=64)
TRAIL_NAME = Str("TrailName", required=True, max_len=36)
ATTRIBUTE = ObjList("LookupAttribute", fields=(Str("Key", max_len=64), Str("Value", max_len=512)), max_items=10)


def _types(value: str | None) -> tuple[str, ...]:
    """The insight types a call names: the one given, or every type when none is."""
    if not value:
        return catalogue.TYPES
    if value not in catalogue.TYPES:
        # ActionTrail's own code for a type it does not offer.
        raise ApiError(
            "InsightTypeNotAvailable",
            f"The input insightType is not available: {value!r}; use one of {', '.join(catalogue.TYPES)}.",
        )
    return (value,)


def _set(ctx: CallContext, value: str | None, enabled: bool) -> dict[str, Any]:
    for insight_type in _types(value):
        ctx.conn.execute(
            delete(insight_types).where(
                insight_types.c.account_id == ctx.account_id, insight_types.c.insight_type == insight_type
            )
        )
        ctx.conn.execute(
            insert(insight_types).values(
                account_id=ctx.account_id, insight_type=insight_type, enabled=enabled, updated_ms=ctx.now_ms
            )
        )
    return {}


@action("EnableInsight", service=ACTIONTRAIL, rw=WRITE, params=(INSIGHT_TYPE,))
def enable_insight(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Switch an insight type on for the account (every type when InsightType is omitted): IpInsight, AkInsight,
    ApiCallRateInsight, ApiErrorRateInsight, SigninFailureInsight (an OpenIMS type). Baselines are learned
    whether or not a type is on, so a type switched on judges against the account's last 7 days at once."""
    return _set(ctx, p["InsightType"], True)


@action("DisableInsight", service=ACTIONTRAIL, rw=WRITE, params=(INSIGHT_TYPE,))
def disable_insight(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Switch an insight type off (every type when InsightType is omitted). Open insights of the type still end."""
    return _set(ctx, p["InsightType"], False)


@action("GetInsightTypes", service=ACTIONTRAIL)
def get_insight_types(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Each insight type and whether it is on for the account (`Enable` or `Disable`)."""
    on = set(
        ctx.conn.execute(
            select(insight_types.c.insight_type).where(
                insight_types.c.account_id == ctx.account_id, insight_types.c.enabled.is_(True)
            )
        ).scalars()
    )
    return {"InsightTypes": {t: "Enable" if t in on else "Disable" for t in catalogue.TYPES}}


def _selectors(ctx: CallContext, trail_id: str) -> list[str]:
    found = ctx.conn.execute(
        select(insight_selectors.c.insight_type)
        .where(insight_selectors.c.trail_id == trail_id)
        .order_by(insight_selectors.c.insight_type)
    ).scalars()
    return [json.dumps({"insightType": t}, separators=(",", ":")) for t in found]


def _parse_selectors(text: str | None) -> list[str]:
    if not text:
        return []
    bad = ApiError(
        "InvalidParameter.InsightSelectors",
        'The parameter - "InsightSelectors" must be a JSON array such as [{"insightType":"IpInsight"}].',
    )
    try:
        value = load_json(text)
    except ValueError:
        raise bad from None
    if not isinstance(value, list) or not all(
        isinstance(v, dict) and isinstance(v.get("insightType"), str) for v in value
    ):
        raise bad
    out: list[str] = []
    for item in value:
        name = item["insightType"]
        if name not in catalogue.TYPES:
            # ActionTrail's code (HTTP 404) for a selector naming no insight type.
            raise ApiError(
                "InsightSelectorDoesNotExistException",
                f"The specified selector does not exist: {name!r}; use one of {', '.join(catalogue.TYPES)}.",
                404,
            )
        if name not in out:
            out.append(name)
    return out


@action(
    "PutInsightSelectors",
    service=ACTIONTRAIL,
    rw=WRITE,
    resource=(TRAIL, "TrailName"),
    arn="trail/{TrailName}",
    params=(TRAIL_NAME, Str("InsightSelectors", max_len=2048)),
)
def put_insight_selectors(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Set the insight types a trail delivers, as a JSON array (`[{"insightType":"IpInsight"}]`; empty: none).
    Their insight events go to its OSS/S3 bucket under `AliyunLogs/Actiontrail-Insight/`, and to its other
    destinations beside the other events."""
    row = find_trail(ctx, p["TrailName"])
    chosen = _parse_selectors(p["InsightSelectors"])
    ctx.conn.execute(delete(insight_selectors).where(insight_selectors.c.trail_id == row.id))
    if chosen:
        ctx.conn.execute(insert(insight_selectors), [{"trail_id": row.id, "insight_type": t} for t in chosen])
    outbox.new_generation(ctx.conn, ctx.account_id)
    return {"InsightSelectors": _selectors(ctx, row.id), "TrailArn": trail_arn(ctx, row.name)}


@action(
    "GetInsightSelectors",
    service=ACTIONTRAIL,
    resource=(TRAIL, "TrailName"),
    arn="trail/{TrailName}",
    params=(TRAIL_NAME,),
)
def get_insight_selectors(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The insight types a trail delivers, each as a JSON string (`{"insightType":"IpInsight"}`)."""
    row = find_trail(ctx, p["TrailName"])
    return {"InsightSelectors": _selectors(ctx, row.id), "TrailArn": trail_arn(ctx, row.name)}


def _date(value: str) -> int:
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(
            "InvalidParameter.Date", 'The parameter - "Date" must be a date in the form YYYY-MM-DD.'
        ) from None
    return int(day.timestamp() * 1000)


@action(
    "GetInsightsEventsCount",
    service=ACTIONTRAIL,
    params=(Str("Date", max_len=32), Str("StartTime", max_len=64), Str("EndTime", max_len=64)),
)
def get_insights_events_count(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """How many insights of each type started: on the UTC `Date` (YYYY-MM-DD) when given, else between
    StartTime and EndTime when both are given, else in the last 24 hours."""
    if p["Date"]:
        start = _date(p["Date"])
        end = start + clock.DAY_MS
    elif p["StartTime"] and p["EndTime"]:
        start, end = window(p["StartTime"], p["EndTime"], ctx.now_ms)
        end += 1
    else:
        start, end = ctx.now_ms - clock.DAY_MS, ctx.now_ms + 1
    found = query.counts(ctx.conn, ctx.account_id, start, end)
    region = ctx.runtime.settings.region
    return {
        "Data": [{"InsightType": t, "Count": found.get(t, 0), "RegionId": region} for t in catalogue.TYPES],
    }


@action(
    "LookupInsightEvents",
    service=ACTIONTRAIL,
    params=(
        Str("StartTime", max_len=64),
        Str("EndTime", max_len=64),
        ATTRIBUTE,
        Int("MaxResults", min=1, max=50, default=20),
        Str("NextToken", max_len=1024),
    ),
)
def lookup_insight_events(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query the account's insight events (Start and End), newest first; by default those of the last 7 days.
    LookupAttribute keys: ServiceName, EventName, SourceIpAddress, AccessKeyId (of the activity), InsightType,
    InsightObject, EventId (of the insight event); several are ANDed, each an exact match."""
    start, end = window(p["StartTime"], p["EndTime"], ctx.now_ms)
    attributes = tuple((a["Key"] or "", a["Value"] or "") for a in p["LookupAttribute"])
    q = Query(
        ctx.account_id, start, end, attributes, limit=p["MaxResults"], span=(p["StartTime"] or "", p["EndTime"] or "")
    )
    found, token = query.search(ctx.conn, ctx.runtime.master_key, q, p["NextToken"])
    out: dict[str, Any] = {"Events": found}
    if token:
        out["NextToken"] = token
    return out

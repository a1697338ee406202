"""The event history (ActionTrail console): filtered, paged table, a count chart, one event's JSON, exports.

Each page of the table is a LookupEvents call made through dispatch as the signed-in principal, so viewing
the history is itself recorded (a LookupEvents `ConsoleOperation` event) and needs the same permission as
the API call. Exports record one LookupEvents event naming the export, then stream in keyset batches.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from typing import Any

from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from openims import clock
from openims.actions.registry import ACTIONTRAIL
from openims.audit.event import mfa_used
from openims.console import history
from openims.console.history import Filters
from openims.console.web import Page, endpoint, error_page, url
from openims.errors import ApiError
from openims.integrity import status

EVENT_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
# What each serviceName means, for the table's tooltips: a RAM (2015-05-01) call is not an IMS one.
SERVICES = {
    "Ims": "IMS API (2019-08-15)",
    "Ram": "RAM API (2015-05-01)",
    "Actiontrail": "ActionTrail API (2020-07-06)",
    "AasSub": "Console sign-in (RAM user)",
    "AasCustomer": "Console sign-in (root account)",
}


def _args(page: Page) -> dict[str, str]:
    return {k: v for k, v in page.request.query_params.items()}


def _filters(page: Page) -> Filters:
    assert page.session is not None
    with page.rt.db.read() as conn:
        return history.with_user_as_stored(
            history.parse_filters(_args(page), clock.now_ms()), conn, page.session.account_id
        )


def _investigations(f: Filters) -> list[tuple[str, str]]:
    """One-click questions, over the selected time range."""
    keep = {"range": f.range_key, "start": f.start, "end": f.end} if f.range_key == "custom" else {"range": f.range_key}
    return [
        ("All failed calls", url("/events", **keep, ErrorCode="*")),
        ("All denied calls", url("/events", **keep, ErrorCode="NoPermission*")),
        ("All deletions", url("/events", **keep, EventName="Delete*")),
        ("All sign-ins", url("/events", **keep, EventName="ConsoleSignin")),
        ("Failed sign-ins", url("/events", **keep, EventName="ConsoleSignin", Result="Failure")),
        ("Sign-ins without MFA", url("/events", **keep, EventName="ConsoleSignin", MFAUsed="false", Result="Success")),
        ("All writes", url("/events", **keep, EventRW="Write")),
    ]


def _lookup(
    page: Page, f: Filters, max_results: int, token: str | None = None, extra: dict[str, str] | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {**f.lookup_params(), "MaxResults": max_results, "NextToken": token or None}
    return page.call("LookupEvents", params, version=ACTIONTRAIL.version, extra=extra)


@endpoint()
def events_page(page: Page) -> Response:
    assert page.session is not None
    f = _filters(page)
    token = page.q("token")
    rows: list[dict[str, Any]] = []
    next_url = None
    error = None
    chart_src = None
    try:
        found = _lookup(page, f, history.PAGE_SIZE, token)
    except ApiError as err:
        if err.code.startswith("NoPermission"):
            return error_page(page, err)
        error = err.message
    else:
        rows = found["Events"]
        if found.get("NextToken"):
            next_url = url("/events", **f.query_args(token=found["NextToken"]))
        if not token:
            chart_src = url("/events/chart", **f.query_args(sig=_chart_signature(page, f)))
    return page.render(
        "events.html",
        section="events",
        title="Event history",
        f=f,
        rows=rows,
        next_url=next_url,
        chart_src=chart_src,
        error=error or f.error,
        paged=bool(token),
        first_url=url("/events", **f.query_args()),
        investigations=_investigations(f),
        filters=history.FILTERS,
        ranges=history.RANGE_LABELS,
        choices=history.CHOICE_FILTERS,
        mfa_used=mfa_used,
        services=SERVICES,
        export_csv=url("/events/export.csv", **f.query_args()),
        export_json=url("/events/export.json", **f.query_args()),
        export_limit=history.EXPORT_LIMIT,
        filter_url=lambda **kw: url("/events", **f.query_args(**kw)),
    )


@endpoint()
def event_detail(page: Page) -> Response:
    event_id = page.request.path_params["event_id"]
    now = clock.now_ms()
    span = Filters(
        "custom",
        clock.iso(now - page.rt.settings.event_retention_days * history.DAY_MS),
        clock.iso(now),
        (("EventId", event_id),),
    )
    # Event IDs are UUIDs: anything else names no event (and is not worth a lookup).
    found = _lookup(page, span, 1)["Events"] if EVENT_ID.fullmatch(event_id) else []
    if not found:
        return page.render(
            "error.html",
            status=404,
            title="Event not found",
            message=f"No event {event_id} in the last {page.rt.settings.event_retention_days} days.",
        )
    event = found[0]
    who = event.get("userIdentity") or {}
    pivots = [
        (label, url("/events", range="90d", **{key: value}))
        for label, key, value in (
            ("Everything this user did", "User", who.get("userName")),
            ("Everything this AccessKey did", "EventAccessKeyId", who.get("accessKeyId")),
            ("Everything from this IP", "SourceIpAddress", event.get("sourceIpAddress")),
            (
                "Everything on this resource",
                "ResourceName",
                next(iter(n for names in (event.get("referencedResources") or {}).values() for n in names), ""),
            ),
        )
        if value
    ]
    assert page.session is not None
    return page.render(
        "event.html",
        section="events",
        title=event.get("eventName", "Event"),
        event=event,
        position=status.position(page.rt, page.session.account_id, event_id),
        pretty=json.dumps(event, indent=2, ensure_ascii=False, sort_keys=True),
        pivots=pivots,
        mfa=mfa_used(event),
    )


def _chart_signature(page: Page, f: Filters) -> str:
    """Binds a chart to the recorded history view it belongs to: same session, same filters."""
    assert page.session is not None
    data = json.dumps([page.session.token_hash, f.start, f.end, sorted(f.attributes)]).encode()
    return base64.urlsafe_b64encode(page.rt.master_key.mac(b"console-chart:" + data)[:18]).decode()


@endpoint()
def chart(page: Page) -> Response:
    """The count-over-time chart of a history page, loaded after the table so it never delays it. It is part
    of that page's recorded LookupEvents view, so it answers only with that view's signature."""
    assert page.session is not None
    f = _filters(page)
    if not hmac.compare_digest(page.q("sig").encode(), _chart_signature(page, f).encode()):
        return HTMLResponse('<p class="muted">Reload the page to see the chart.</p>', status_code=403)
    found = history.counts(page.rt, page.session.account_id, f)
    # A bar's slice, within the page's range (the first and last buckets reach beyond it).
    svg = history.chart_svg(
        found,
        lambda lo, hi: url(
            "/events",
            **f.query_args(
                range="custom", start=clock.iso(max(lo, f.start_ms)), end=f.end if hi >= f.end_ms else clock.iso(hi)
            ),
        ),
    )
    return page.render("_chart.html", chart=found, svg=svg, budget=history.CHART_BUDGET_S)


def _export(page: Page, fmt: str) -> Response:
    assert page.session is not None
    f = _filters(page)
    # The export is one read of the history: its event names the format and the row limit.
    _lookup(page, f, 1, extra={"Export": fmt.upper(), "ExportLimit": str(history.EXPORT_LIMIT)})
    found = history.export_events(page.rt, page.session.account_id, f)
    stamp = clock.iso(clock.now_ms()).replace(":", "").replace("-", "")
    if fmt == "csv":
        body, media = history.csv_stream(found), "text/csv; charset=utf-8"
    else:
        body, media = history.json_stream(found), "application/json; charset=utf-8"
    return StreamingResponse(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="openims-events-{stamp}.{fmt}"'}
    )


@endpoint()
def export_csv(page: Page) -> Response:
    return _export(page, "csv")


@endpoint()
def export_json(page: Page) -> Response:
    return _export(page, "json")


routes = [
    Route("/events", events_page, methods=["GET"]),
    Route("/events/chart", chart, methods=["GET"]),
    Route("/events/export.csv", export_csv, methods=["GET"]),
    Route("/events/export.json", export_json, methods=["GET"]),
    Route("/events/{event_id}", event_detail, methods=["GET"]),
]

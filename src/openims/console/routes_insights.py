"""The console's Insights page (open and closed insights, with their statistics and a link to the events behind
each), and the open insights the overview shows. Both read LookupInsightEvents through the API, so a viewer sees
what its policies allow and the read is audited like any other."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from openims import clock
from openims.actions.registry import ACTIONTRAIL
from openims.console.web import Page, endpoint, error_page, url
from openims.errors import ApiError
from openims.insights import catalogue

LOOKUP = "LookupInsightEvents"
# The insight events one page reads (LookupInsightEvents' largest page): the newest insights.
SHOWN = 50
SPAN_MS = 30 * clock.DAY_MS


def _behind(start: dict[str, Any], end: dict[str, Any] | None) -> str:
    """The event history, filtered to the events an insight is about, over its time."""
    d = start["insightDetails"]
    kind, obj = d["insightType"], d["insightObject"]
    filters: dict[str, str] = {
        catalogue.IP: {"SourceIpAddress": obj},
        catalogue.AK: {"EventAccessKeyId": obj},
        catalogue.CALL_RATE: {"EventRW": "Write"},
        catalogue.ERROR_RATE: {"ErrorCode": "*"},
        catalogue.SIGNIN_FAILURE: {
            "EventName": catalogue.SIGNIN_EVENT,
            "Result": "Failure",
            **({"User": obj} if d.get("userName") == obj else {"SourceIpAddress": obj}),
        },
    }.get(kind, {})
    until = end["eventTime"] if end else clock.iso(clock.now_ms())
    return url("/events", range="custom", start=start["eventTime"], end=until, **filters)


def summarize(found: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Insight events (newest first) paired by sharedEventId: (open insights, closed insights), newest first."""
    by_id: dict[str, dict[str, Any]] = {}
    for event in found:
        d = event.get("insightDetails") or {}
        item = by_id.setdefault(event.get("sharedEventId", event["eventId"]), {"start": None, "end": None})
        item["start" if d.get("state") == "Start" else "end"] = event
    opened: list[dict[str, Any]] = []
    closed: list[dict[str, Any]] = []
    for item in by_id.values():
        start, end = item["start"], item["end"]
        if start is None:  # started before the span read: its End alone is shown
            start = end
        d = start["insightDetails"]
        latest = (end or start)["insightDetails"]["insightContext"]
        item.update(
            type=d["insightType"],
            object=d["insightObject"],
            reason=d.get("reason", ""),
            started=start["eventTime"],
            ended=end["eventTime"] if end else "",
            statistics=latest.get("statistics", {}),
            attributions=latest.get("attributions", []),
            behind=_behind(start, end),
            related=url("/events/" + d["relatedEventId"]) if d.get("relatedEventId") else "",
        )
        (closed if end else opened).append(item)
    return opened, closed


def open_insights(page: Page) -> tuple[list[dict[str, Any]] | None, ApiError | None]:
    """The open insights of the viewer's account for the overview (None when it may not read them)."""
    if not page.may(LOOKUP, _version=ACTIONTRAIL.version):
        return None, None
    found, err = _read(page)
    return (summarize(found)[0] if err is None else None), err


def _read(page: Page) -> tuple[list[dict[str, Any]], ApiError | None]:
    params = {"StartTime": clock.iso(clock.now_ms() - SPAN_MS), "MaxResults": SHOWN}
    answer, err = page.attempt(LOOKUP, params, ACTIONTRAIL.version)
    return (answer or {}).get("Events", []), err


@endpoint()
def insights_page(page: Page) -> Response:
    found, err = _read(page)
    if err is not None and err.code.startswith("NoPermission"):
        return error_page(page, err)
    opened, closed = summarize(found)
    return page.render(
        "insights.html",
        section="insights",
        title="Insights",
        opened=opened,
        closed=closed,
        error=err,
        shown=SHOWN,
        days=SPAN_MS // clock.DAY_MS,
    )


routes = [Route("/insights", insights_page, methods=["GET"])]

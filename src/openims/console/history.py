"""The event history's query side: filters and time ranges as LookupEvents parameters, the
count-over-time chart (GROUP BY a time bucket on the indexed columns, drawn as inline SVG), and exports."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from xml.sax.saxutils import escape

from markupsafe import Markup
from sqlalchemy import Connection, bindparam, distinct, func, select

from openims import clock, jsontext
from openims.audit.event import mfa_used
from openims.audit.lookup import (
    CHOICES,
    RESOURCE_KEYS,
    WILDCARD_KEYS,
    Query,
    condition,
    last_ms,
    resource_led,
    search,
)
from openims.runtime import Runtime
from openims.store.schema import events, users
from openims.store.tables.event_resources import event_resources

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
RANGES = {"1h": HOUR_MS, "24h": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS, "90d": 90 * DAY_MS}
RANGE_LABELS = {"1h": "1 hour", "24h": "24 hours", "7d": "7 days", "30d": "30 days", "90d": "90 days"}
DEFAULT_RANGE = "24h"
# Form field (the LookupAttribute key itself) and its label, in the order the form shows them.
FILTERS = (
    ("EventName", "Event name", "CreateUser, or Delete* for all deletions"),
    ("User", "User", "root, or a UserPrincipalName"),
    ("ResourceType", "Resource type", "ACS::RAM::User"),
    ("ResourceName", "Resource name", "alice@example.onaliyun.com"),
    ("EventAccessKeyId", "AccessKey ID", "LTAI..."),
    ("ServiceName", "Service", "Ims, Actiontrail, Ram, AasSub"),
    ("EventType", "Event type", "ApiCall, ConsoleOperation, ConsoleSignin"),
    ("ErrorCode", "Error code", "* for any failure, or NoPermission*"),
    ("SourceIpAddress", "Source IP", "203.0.113.7"),
)
# The choice filters: LookupAttribute key -> (label, {value: text}), the values those LookupEvents accepts.
_CHOICE_TEXTS = {
    "EventRW": ("Read/write", ("Read", "Write")),
    "MFAUsed": ("MFA", ("MFA used", "No MFA")),
    "Result": ("Result", ("Succeeded", "Failed")),
    "SensitiveAction": ("Sensitive", ("Sensitive actions", "Other actions")),
}
CHOICE_FILTERS = {
    key: (label, {"": "Any", **dict(zip(CHOICES[key], texts, strict=True))})
    for key, (label, texts) in _CHOICE_TEXTS.items()
}
PAGE_SIZE = 50
EXPORT_LIMIT = 100_000
EXPORT_BATCH = 1000
BUCKETS_MS = (
    60_000,
    5 * 60_000,
    15 * 60_000,
    HOUR_MS,
    3 * HOUR_MS,
    6 * HOUR_MS,
    12 * HOUR_MS,
    DAY_MS,
    2 * DAY_MS,
    7 * DAY_MS,
)
MAX_BARS = 96
CSV_COLUMNS = (
    "eventTime",
    "eventName",
    "eventType",
    "eventRW",
    "serviceName",
    "userType",
    "userName",
    "accessKeyId",
    "mfaUsed",
    "sourceIpAddress",
    "userAgent",
    "resourceType",
    "resourceName",
    "errorCode",
    "errorMessage",
    "requestId",
    "eventId",
)


@dataclass(frozen=True)
class Filters:
    """What the history page was asked for, with the time range resolved to fixed UTC bounds."""

    range_key: str
    start: str  # YYYY-MM-DDThh:mm:ssZ
    end: str
    attributes: tuple[tuple[str, str], ...]
    error: str | None = None

    @property
    def start_ms(self) -> int:
        return clock.parse_iso(self.start)

    @property
    def end_ms(self) -> int:
        return last_ms(self.end)

    def lookup_params(self) -> dict[str, str]:
        """LookupEvents parameters (without paging)."""
        params = {"StartTime": self.start, "EndTime": self.end}
        for i, (key, value) in enumerate(self.attributes, start=1):
            params[f"LookupAttribute.{i}.Key"] = key
            params[f"LookupAttribute.{i}.Value"] = value
        return params

    def query_args(self, **changes: Any) -> dict[str, str]:
        """This filter as the history page's query string (fixed bounds, so paging stays consistent)."""
        args: dict[str, str] = {"range": self.range_key, "start": self.start, "end": self.end, **dict(self.attributes)}
        args.update({k: v for k, v in changes.items()})
        return {k: v for k, v in args.items() if v not in (None, "")}

    def value(self, key: str) -> str:
        return dict(self.attributes).get(key, "")


LAST_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z: the last time the YYYY-MM-DD forms can write


def _parse_input_time(text: str) -> int | None:
    """A time typed in the form (`YYYY-MM-DDThh:mm`, taken as UTC) or passed back by a link (full ISO)."""
    if not text:
        return None
    try:
        ms = clock.parse_iso(text if text.endswith("Z") or "+" in text[10:] else text + "Z")
    except ValueError:
        return None
    return ms if 0 <= ms <= LAST_MS else None


def parse_filters(args: dict[str, str], now_ms: int) -> Filters:
    """The page's filters from its query string. A quick range ends now, to the millisecond, unless a paging
    link fixed its bounds (`start`/`end`): its later pages, chart and exports then hold exactly the events the
    first page could see. A custom range comes from the form's `from`/`to` (or from a paging link)."""
    range_key = args.get("range") or DEFAULT_RANGE
    end = now_ms
    start = end // 1000 * 1000 - RANGES[DEFAULT_RANGE]
    exact = True  # `end` is a millisecond, not a whole second
    error = None
    if range_key == "custom":
        given = (
            (args.get("from", ""), args.get("to", ""))
            if (args.get("from") or args.get("to"))
            else (args.get("start", ""), args.get("end", ""))
        )
        lo, hi = (_parse_input_time(text) for text in given)
        if not all(given):
            error, range_key = "Enter both ends of the custom time range (UTC).", DEFAULT_RANGE
        elif lo is None or hi is None:
            error, range_key = (
                "The custom time range needs real dates and times (UTC) from 1970 to 9999.",
                DEFAULT_RANGE,
            )
        elif lo > hi:
            error, range_key = "The custom time range starts after it ends.", DEFAULT_RANGE
        else:
            start, end, exact = lo, hi, "." in given[1]
    elif range_key in RANGES:
        fixed = (_parse_input_time(args.get("start", "")), _parse_input_time(args.get("end", "")))
        if fixed[0] is not None and fixed[1] is not None and fixed[0] <= fixed[1]:
            start, end, exact = fixed[0], fixed[1], "." in args["end"]
        else:
            start = end // 1000 * 1000 - RANGES[range_key]
    else:
        error = error or f'There is no time range "{range_key[:40]}": showing the last 24 hours.'
        range_key = DEFAULT_RANGE
    attributes = []
    for key, _, _ in FILTERS:
        value = args.get(key, "").strip()
        if value:
            attributes.append((key, value[:512]))
    for key, (label, choices) in CHOICE_FILTERS.items():
        value = args.get(key, "")
        if value in choices:
            if value:
                attributes.append((key, value))
        else:  # an edited or mistyped link: say so, rather than show everything as if it were filtered
            error = error or f'The {label} filter cannot be "{value[:40]}": it is not applied.'
    return Filters(
        range_key, clock.iso(start), clock.iso_ms(end) if exact else clock.iso(end), tuple(attributes), error
    )


def with_user_as_stored(f: Filters, conn: Connection, account_id: str) -> Filters:
    """The User filter as events record it: `root`, or the UserPrincipalName as stored, whatever its letter
    case when typed (UPNs are case-insensitive everywhere else, the events' index is exact)."""
    typed = f.value("User")
    if not typed:
        return f
    stored = (
        "root"
        if typed.lower() == "root"
        else conn.execute(
            select(users.c.upn).where(users.c.account_id == account_id, func.lower(users.c.upn) == typed.lower())
        ).scalar()
    )
    if not stored or stored == typed:
        return f
    return replace(f, attributes=tuple((k, stored if k == "User" else v) for k, v in f.attributes))


# --- chart -----------------------------------------------------------------------------------------------


def bucket_for(span_ms: int) -> int:
    for size in BUCKETS_MS:
        if span_ms / size <= MAX_BARS:
            return size
    return BUCKETS_MS[-1]


# Which filter drives the chart's index scan when there are several: the most selective kinds first.
DRIVING_ORDER = (
    "EventId",
    "EventAccessKeyId",
    "ResourceName",
    "User",
    "PrincipalId",
    "SourceIpAddress",
    "ErrorCode",
    "EventName",
    "ResourceType",
    "EventType",
    "ServiceName",
    "EventRW",
    "MFAUsed",
)
CHART_BUDGET_S = 2.5


@dataclass(frozen=True)
class Chart:
    size: int
    series: list[tuple[int, int]]
    # False when counting stopped at the time budget: the later buckets are missing.
    complete: bool = True


def _is_range(key: str, value: str) -> bool:
    return key in WILDCARD_KEYS and value.endswith("*")


def counts(rt: Runtime, account_id: str, f: Filters, budget_s: float = CHART_BUDGET_S) -> Chart:
    """Events per time bucket over the range, for the indexed filters, answered from the same indexes as the
    table. With no filter or an exact one, each bucket is a COUNT over an index range (account, [filter,]
    time): no sort, no table access. A wildcard filter (`Delete*`, ErrorCode `*`) cannot narrow the time
    within its index, so one GROUP BY on event_ms // bucket runs over that filter's index range instead."""
    size = bucket_for(f.end_ms - f.start_ms)
    first, last = f.start_ms // size, f.end_ms // size
    conditions = [condition(k, v) for k, v in f.attributes]
    driving = sorted(f.attributes, key=lambda a: DRIVING_ORDER.index(a[0]) if a[0] in DRIVING_ORDER else 99)
    deadline = time.monotonic() + budget_s
    with rt.db.read() as conn:
        if driving and driving[0][0] in RESOURCE_KEYS:
            # Led by a resource: one GROUP BY over its index rows (an event counted once however many of its
            # resources match).
            r = event_resources
            in_bucket = (r.c.event_ms // size).label("bucket")
            rows = conn.execute(
                select(in_bucket, func.count(distinct(r.c.event_seq)).label("n"))
                .select_from(r.join(events, events.c.seq == r.c.event_seq))
                .where(
                    r.c.account_id == account_id,
                    r.c.event_ms >= f.start_ms,
                    r.c.event_ms <= f.end_ms,
                    *resource_led(f.attributes),
                )
                .group_by(in_bucket)
            ).all()
            found = {int(row.bucket): int(row.n) for row in rows}
            return Chart(size, [(b * size, found.get(b, 0)) for b in range(first, last + 1)])
        if driving and _is_range(*driving[0]):
            # `event_ms + 0` keeps the planner off the time index, which would read every row of the range.
            shifted = events.c.event_ms + 0
            bucket = (shifted // size).label("bucket")
            rows = conn.execute(
                select(bucket, func.count().label("n"))
                .where(
                    events.c.account_id == account_id,
                    shifted >= f.start_ms,
                    shifted <= f.end_ms,
                    *conditions,
                )
                .group_by(bucket)
            ).all()
            found = {int(r.bucket): int(r.n) for r in rows}
            return Chart(size, [(b * size, found.get(b, 0)) for b in range(first, last + 1)])
        one = (
            select(func.count())
            .select_from(events)
            .where(
                events.c.account_id == account_id,
                events.c.event_ms >= bindparam("lo"),
                events.c.event_ms <= bindparam("hi"),
                *conditions,
            )
        )
        series: list[tuple[int, int]] = []
        for b in range(first, last + 1):
            if time.monotonic() > deadline:
                return Chart(size, series, complete=False)
            lo, hi = max(b * size, f.start_ms), min((b + 1) * size - 1, f.end_ms)
            series.append((b * size, int(conn.execute(one, {"lo": lo, "hi": hi}).scalar_one())))
    return Chart(size, series)


def _label(ms: int, size: int) -> str:
    text = clock.iso(ms)
    if size >= DAY_MS:
        return text[5:10]
    if size >= HOUR_MS:
        return text[5:10] + " " + text[11:16]
    return text[11:16]


def chart_svg(chart: Chart, link: Any) -> Markup:
    """Bars of event counts with a y scale and a few time labels; each bar links to its own time slice."""
    size, series = chart.size, chart.series
    width, height, left, bottom, top = 960, 180, 48, 24, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max((n for _, n in series), default=0)
    scale = max(peak, 1)
    bar_w = plot_w / max(len(series), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart-title">',
        (
            f'<title id="chart-title">Events per {_duration(size)}, {sum(n for _, n in series)} in total, '
            f"at most {peak} in one {_duration(size)}</title>"
        ),
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}"/>',
        f'<text class="tick" x="{left - 6}" y="{top + 8}" text-anchor="end">{peak}</text>',
        f'<text class="tick" x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, (start, n) in enumerate(series):
        x = left + i * bar_w
        h = plot_h * n / scale
        tip = escape(f"{_fmt(start)} to {_fmt(start + size)}: {n} event{'s' if n != 1 else ''}")
        href = escape(link(start, start + size - 1000), {'"': "&quot;"})
        parts.append(
            f'<a href="{href}"><rect class="bar" x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{max(bar_w - 2, 1):.1f}" height="{max(h, 0):.1f}"><title>{tip}</title></rect></a>'
        )
    step = max(1, len(series) // 6)
    for i in range(0, len(series), step):
        x = left + i * bar_w + bar_w / 2
        anchor = "end" if x > width - 60 else "middle"  # keep the last label inside the picture
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{height - 6}" text-anchor="{anchor}">'
            f"{_label(series[i][0], size)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _fmt(ms: int) -> str:
    return clock.iso(ms).replace("T", " ").replace("Z", " UTC")


def _duration(size: int) -> str:
    if size >= DAY_MS:
        return f"{size // DAY_MS} day" + ("s" if size // DAY_MS > 1 else "")
    if size >= HOUR_MS:
        return f"{size // HOUR_MS} hour" + ("s" if size // HOUR_MS > 1 else "")
    return f"{size // 60_000} minute" + ("s" if size // 60_000 > 1 else "")


# --- export ----------------------------------------------------------------------------------------------


def export_events(rt: Runtime, account_id: str, f: Filters) -> Iterator[dict[str, Any]]:
    """Every matching event, newest first, at most EXPORT_LIMIT, read in keyset batches."""
    query = Query(account_id, f.start_ms, f.end_ms, f.attributes, limit=EXPORT_BATCH, span=(f.start, f.end))
    token: str | None = None
    scanned = 0
    while scanned < EXPORT_LIMIT:
        with rt.db.read() as conn:
            batch, token = search(conn, rt.master_key, query, token)
        yield from (jsontext.loads(body) for body in batch[: EXPORT_LIMIT - scanned])
        scanned += len(batch)
        if not token:
            return


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_row(event: dict[str, Any]) -> dict[str, str]:
    who = event.get("userIdentity") or {}
    values = {
        "eventTime": event.get("eventTime"),
        "eventName": event.get("eventName"),
        "eventType": event.get("eventType"),
        "eventRW": event.get("eventRW"),
        "serviceName": event.get("serviceName"),
        "userType": who.get("type"),
        "userName": who.get("userName"),
        "accessKeyId": who.get("accessKeyId"),
        "mfaUsed": "true" if mfa_used(event) else "false",
        "sourceIpAddress": event.get("sourceIpAddress"),
        "userAgent": event.get("userAgent"),
        "resourceType": event.get("resourceType"),
        "resourceName": event.get("resourceName"),
        "errorCode": event.get("errorCode"),
        "errorMessage": event.get("errorMessage"),
        "requestId": event.get("requestId"),
        "eventId": event.get("eventId"),
    }
    return {k: _cell(v) for k, v in values.items()}


def csv_stream(found: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for i, event in enumerate(found, start=1):
        writer.writerow(csv_row(event))
        if i % 200 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def json_stream(found: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield "["
    for i, event in enumerate(found):
        yield ("," if i else "") + "\n" + json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    yield "\n]\n"

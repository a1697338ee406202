"""ActionTrail's DescribeUserLogCount: how many events the account recorded each UTC day (the console's overview
chart draws it)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from openims.actions.context import CallContext
from openims.actions.registry import ACTIONTRAIL, action
from openims.errors import ApiError
from openims.params import Str
from openims.store.schema import events

DAY_MS = 24 * 3600 * 1000
DEFAULT_DAYS = 30  # ActionTrail's default: the 30 days up to yesterday
MAX_DAYS = 366


def _day(value: str, name: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise ApiError(
            "InvalidQueryParameter", f'The parameter - "{name}" is not valid: use a UTC date in the form yyyy-MM-dd.'
        ) from None


def days_of(start: str | None, end: str | None, now_ms: int) -> tuple[date, date]:
    """The first and last day a DescribeUserLogCount covers; without dates, the 30 days up to yesterday."""
    today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    last = _day(end, "EndDate") if end else today - timedelta(days=1)
    first = _day(start, "StartDate") if start else last - timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        # ActionTrail's own code and words for it.
        raise ApiError("InvalidParameterCombination", "The end time must be later than the start time.")
    if (last - first).days >= MAX_DAYS:
        raise ApiError("InvalidQueryParameter", f"The date range must not exceed {MAX_DAYS} days.")
    return first, last


def _epoch_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def daily_counts(conn: Connection, account_id: str, first: date, last: date) -> list[tuple[date, int]]:
    """Events of each day from `first` to `last` (zero for a day without any): one GROUP BY over the range of
    the account's time index, read from the index alone."""
    lo, hi = _epoch_ms(first), _epoch_ms(last) + DAY_MS
    day = (events.c.event_ms // DAY_MS).label("day")
    rows = conn.execute(
        select(day, func.count().label("n"))
        .where(events.c.account_id == account_id, events.c.event_ms >= lo, events.c.event_ms < hi)
        .group_by(day)
    ).all()
    found = {int(r.day): int(r.n) for r in rows}
    span = (last - first).days + 1
    return [(first + timedelta(days=i), found.get(lo // DAY_MS + i, 0)) for i in range(span)]


@action(
    "DescribeUserLogCount",
    service=ACTIONTRAIL,
    arn="*",
    params=(Str("StartDate", max_len=10), Str("EndDate", max_len=10)),
)
def describe_user_log_count(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The number of events the account recorded on each UTC day from StartDate to EndDate (`yyyy-MM-dd`, both
    included, at most 366 days; by default the 30 days up to yesterday), a zero for each day without any. Every
    event counts: reads, writes, failures, console sign-ins; days older than the retention window count zero."""
    first, last = days_of(p["StartDate"], p["EndDate"], ctx.now_ms)
    found = daily_counts(ctx.conn, ctx.account_id, first, last)
    return {"Data": {"Dates": [d.isoformat() for d, _ in found], "Counts": [n for _, n in found]}}

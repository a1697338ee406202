"""DescribeUserLogCount through the official ActionTrail SDK: events per UTC day, the same events LookupEvents
lists, and the console overview's chart drawn from it."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_ims20190815 import models as im
from Tea.exceptions import TeaException

from tests.console.conftest import ROOT_PASSWORD, http_session, set_root_password
from tests.support import Account


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def test_daily_counts_match_the_events_recorded(acct: Account) -> None:
    ims = acct.ims()
    for i in range(3):
        ims.create_user(im.CreateUserRequest(user_principal_name=acct.upn(f"counted{i}"), display_name="c"))
    with pytest.raises(TeaException):  # failures count too
        ims.get_user(im.GetUserRequest(user_principal_name=acct.upn("nobody")))
    today = _today()
    start = today - dt.timedelta(days=2)
    body = (
        acct.trail()
        .describe_user_log_count(
            at.DescribeUserLogCountRequest(start_date=start.isoformat(), end_date=today.isoformat())
        )
        .body
    )
    assert body.data.dates == [(start + dt.timedelta(days=i)).isoformat() for i in range(3)]
    # Every event of today recorded before this call (the call's own event comes after its answer).
    listed = acct.events()
    own = next(i for i, e in enumerate(listed) if e["requestId"] == body.request_id)
    before = [e for e in listed[own + 1 :] if e["eventTime"].startswith(today.isoformat())]
    assert len(before) >= 4  # three users created, one failure
    assert body.data.counts == [0, 0, len(before)]


def test_default_range_and_bad_dates(acct: Account) -> None:
    trail = acct.trail()
    default = trail.describe_user_log_count(at.DescribeUserLogCountRequest()).body.data
    yesterday = _today() - dt.timedelta(days=1)
    assert len(default.dates) == 30 and default.dates[-1] == yesterday.isoformat()
    assert len(default.counts) == 30
    for request, code in (
        (at.DescribeUserLogCountRequest(start_date="2026-05-02", end_date="2026-05-01"), "InvalidParameterCombination"),
        (at.DescribeUserLogCountRequest(start_date="2026/05/01"), "InvalidQueryParameter"),
        (at.DescribeUserLogCountRequest(start_date="2024-01-01", end_date="2026-01-01"), "InvalidQueryParameter"),
    ):
        with pytest.raises(TeaException) as bad:
            trail.describe_user_log_count(request)
        assert (bad.value.code, bad.value.status_code) == (code, 400)


def test_the_console_overview_charts_the_daily_counts(acct: Account) -> None:
    set_root_password(acct)
    client = http_session(acct, acct.alias, ROOT_PASSWORD)
    home = client.get("/console/")
    assert home.status_code == 200 and "Events per day, last 30 days" in home.text
    total = int(re.search(r"Events per 1 day, (\d+) in total", home.text).group(1))  # type: ignore[union-attr]
    # The chart is DescribeUserLogCount's answer, recorded as the console's call.
    call = acct.events(EventName="DescribeUserLogCount")[0]
    assert call["eventType"] == "ConsoleOperation"
    today = _today()
    counts = (
        acct.trail()
        .describe_user_log_count(
            at.DescribeUserLogCountRequest(
                start_date=(today - dt.timedelta(days=29)).isoformat(), end_date=today.isoformat()
            )
        )
        .body.data.counts
    )
    # Since the page was drawn, the lookups above and the page's own call were recorded.
    assert 0 < total < sum(counts)
    # Each bar opens its day's events.
    assert f"range=custom&amp;start={today.isoformat()}T00%3A00%3A00Z" in home.text

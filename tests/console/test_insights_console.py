"""The console's Insights page and the overview's open insights, as a security team reads them: an AccessKey
used from a new address shows as an open IpInsight, with its numbers and a link to the events behind it."""

from __future__ import annotations

import html
import re

from alibabacloud_actiontrail20200706 import models as at

from tests.console.conftest import ROOT_PASSWORD, console_url, http_session, set_root_password, shoot, sign_in
from tests.e2e.test_insights import HOME, NEW_IP, insight_events, wait_for, with_user_key
from tests.insight_support import insight_server, seed_week, user_caller
from tests.support import Server

__all__ = ["insight_server"]  # the fixture, imported for pytest


def test_an_open_insight_shows_on_the_insights_page_and_the_overview(insight_server: Server, page) -> None:  # type: ignore[no-untyped-def]
    acct = insight_server.new_account()
    user_id, upn, key_id, secret = with_user_key(acct)
    acct.trail().enable_insight(at.EnableInsightRequest(insight_type="IpInsight"))
    seed_week(insight_server.runtime, [user_caller(acct.account_id, user_id, upn, key_id, HOME)], seed=5)

    def again() -> None:
        acct.call(
            "GetUser", {"UserPrincipalName": upn}, key_id=key_id, secret=secret, headers={"X-Forwarded-For": NEW_IP}
        )

    again()
    wait_for("IpInsight", lambda: insight_events(acct, InsightType="IpInsight"))

    set_root_password(acct)
    root = http_session(acct, acct.alias, ROOT_PASSWORD)
    again()  # the insight stays open 5 quiet windows (50 s here) after its last unusual use
    listing = root.get("/console/insights").text
    opened = listing.split('id="open"', 1)[1].split('id="closed"', 1)[0]
    assert "IpInsight" in opened and NEW_IP in opened and key_id in opened
    behind = html.unescape(re.search(r'<a href="([^"]+)">Events behind it</a>', opened).group(1))
    events = root.get(behind).text
    assert "GetUser" in events and NEW_IP in events
    overview = root.get("/console/").text
    assert 'id="open-insights"' in overview and NEW_IP in overview.split('id="open-insights"', 1)[1]

    # In the browser: the menu leads there, and the table reads as a table.
    sign_in(page, acct, acct.alias, ROOT_PASSWORD)
    again()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Insights").click()
    table = page.get_by_role("table", name="Open insights")
    assert NEW_IP in table.inner_text()
    shoot(page, "insights")
    page.goto(console_url(acct, "/"))
    assert NEW_IP in page.get_by_role("table", name="Open insights").inner_text()

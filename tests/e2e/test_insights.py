"""Insights through the official ActionTrail SDK, on a server whose detector runs every half second over
10-second windows and which believes 127.0.0.1's X-Forwarded-For (so a test can call from another address):
`insight_server`. Each test seeds a week of its account's normal activity (tests/insight_support.py) before the
unusual part."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_ims20190815 import models as ims
from Tea.exceptions import TeaException

from tests.insight_support import insight_server, root_caller, seed_week, user_caller
from tests.support import Account, Server

HOME = ("10.20.0.5", "10.20.0.6")
NEW_IP = "203.0.113.99"


def insight_events(acct: Account, **attributes: str) -> list[dict[str, Any]]:
    """Every insight event of the last 8 days matching the attributes, through LookupInsightEvents' pages."""
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 8 * 86400))
    attrs = [at.LookupInsightEventsRequestLookupAttribute(key=k, value=v) for k, v in attributes.items()]
    found: list[dict[str, Any]] = []
    token = None
    while True:
        body = (
            acct.trail()
            .lookup_insight_events(
                at.LookupInsightEventsRequest(
                    start_time=start, lookup_attribute=attrs, max_results="2", next_token=token
                )
            )
            .body
        )
        found += body.events or []
        token = body.next_token
        if not token:
            return found


def wait_for(what: str, check: Callable[[], list[dict[str, Any]]], timeout: float = 120.0) -> list[dict[str, Any]]:
    """Poll until `check` finds something (the detector runs in the background); fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout} s")


def with_user_key(acct: Account) -> tuple[str, str, str, str]:
    """A RAM user with an AccessKey, made through the API: (user ID, UPN, key ID, secret)."""
    upn = acct.upn()
    user = acct.ims().create_user(ims.CreateUserRequest(user_principal_name=upn, display_name="svc")).body.user
    key = acct.ims().create_access_key(ims.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    return user.user_id, upn, key.access_key_id, key.access_key_secret


def test_a_key_used_from_a_new_ip_opens_an_ip_insight(insight_server: Server) -> None:
    acct = insight_server.new_account()
    user_id, upn, key_id, secret = with_user_key(acct)
    acct.trail().enable_insight(at.EnableInsightRequest())
    seed_week(
        insight_server.runtime,
        [
            root_caller(acct.account_id, acct.key_id, ("127.0.0.1",)),
            user_caller(acct.account_id, user_id, upn, key_id, HOME),
        ],
    )
    types = acct.trail().get_insight_types().body.insight_types
    assert types == {
        t: "Enable"
        for t in ("IpInsight", "AkInsight", "ApiCallRateInsight", "ApiErrorRateInsight", "SigninFailureInsight")
    }
    # Normal use first: the key from its home address (through the trusted proxy), root from 127.0.0.1.
    acct.call("GetUser", {"UserPrincipalName": upn}, key_id=key_id, secret=secret, headers={"X-Forwarded-For": HOME[0]})
    acct.ims().list_users(ims.ListUsersRequest())
    # Then the same key from an address it never used.
    request_id = acct.call(
        "GetUser", {"UserPrincipalName": upn}, key_id=key_id, secret=secret, headers={"X-Forwarded-For": NEW_IP}
    )["RequestId"]

    found = wait_for("IpInsight", lambda: insight_events(acct, InsightType="IpInsight"))
    # The detector reads events in commit order: everything before the new-IP call, the seeded week included,
    # was judged already, and none of it was unusual.
    everything = insight_events(acct)
    assert [e["insightDetails"]["state"] for e in everything if e["insightDetails"]["state"] == "Start"] == ["Start"]
    assert {(e["eventName"], e["sharedEventId"]) for e in everything} == {("IpInsight", found[-1]["sharedEventId"])}
    start = found[-1]  # the oldest: its Start (an End follows after 5 quiet windows, 50 s here)
    details = start["insightDetails"]
    assert start["eventType"] == "ActionTrailInsight" and start["eventCategory"] == "Insight"
    assert details["state"] == "Start" and details["insightType"] == "IpInsight"
    assert details["insightObject"] == NEW_IP and details["sourceIpAddress"] == NEW_IP
    assert details["accessKeyId"] == key_id and details["userName"] == upn
    assert details["relatedEventId"] == acct.event_for(request_id)["eventId"]
    assert start["userIdentity"]["accessKeyId"] == key_id
    baseline = next(a for a in details["insightContext"]["attributions"] if a["attribute"] == "sourceIpAddress")
    assert sorted(v["value"] for v in baseline["baseline"]) == sorted(HOME)
    assert details["insightContext"]["statistics"]["baseline"]["average"] == 0.0
    # Each attribute finds it; other values do not.
    assert start["eventId"] in [e["eventId"] for e in insight_events(acct, AccessKeyId=key_id, SourceIpAddress=NEW_IP)]
    assert insight_events(acct, InsightObject=NEW_IP, EventName="GetUser")
    assert insight_events(acct, EventId=start["eventId"])
    assert not insight_events(acct, SourceIpAddress=HOME[0])
    # LookupEvents leaves insight events out unless asked for them.
    assert all(e.get("eventType") != "ActionTrailInsight" for e in acct.events())
    assert start["eventId"] in [e["eventId"] for e in acct.events(EventCategory="Insight")]
    counts = acct.trail().get_insights_events_count(at.GetInsightsEventsCountRequest()).body.data
    assert {d.insight_type: d.count for d in counts}["IpInsight"] == 1


def test_a_burst_of_failing_calls_opens_and_then_ends_an_error_rate_insight(insight_server: Server) -> None:
    acct = insight_server.new_account()
    acct.trail().enable_insight(at.EnableInsightRequest(insight_type="ApiErrorRateInsight"))
    seed_week(insight_server.runtime, [root_caller(acct.account_id, acct.key_id, ("127.0.0.1",), busy=20.0)], seed=7)

    def fail(_: int) -> None:
        with pytest.raises(TeaException):
            acct.ims().get_user(ims.GetUserRequest(user_principal_name=acct.upn("nobody")))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fail, range(40)))

    start = wait_for("ApiErrorRateInsight Start", lambda: insight_events(acct, InsightType="ApiErrorRateInsight"))
    assert start[0]["insightDetails"]["state"] == "Start"
    # The burst is over: the next window is back to the baseline, and the insight ends.
    events = wait_for(
        "ApiErrorRateInsight End",
        lambda: [
            e for e in insight_events(acct, InsightType="ApiErrorRateInsight") if e["insightDetails"]["state"] == "End"
        ],
    )
    end = events[0]
    both = insight_events(acct, InsightType="ApiErrorRateInsight")
    assert [e["insightDetails"]["state"] for e in both] == ["End", "Start"]
    assert end["sharedEventId"] == both[1]["sharedEventId"] and end["eventId"] != both[1]["eventId"]
    stats = end["insightDetails"]["insightContext"]["statistics"]
    assert stats["insightCount"] >= 10  # the minimum at least: the burst may straddle two windows
    assert stats["insight"]["average"] > 10 * stats["baseline"]["average"]
    codes = next(a for a in end["insightDetails"]["insightContext"]["attributions"] if a["attribute"] == "errorCode")
    assert codes["insight"][0]["value"] == "EntityNotExist.User"
    # Only the type switched on produced anything; the seeded week and the burst's own writes made nothing else.
    assert {e["eventName"] for e in insight_events(acct)} == {"ApiErrorRateInsight"}


def test_insight_selectors_are_kept_per_trail(insight_server: Server) -> None:
    acct = insight_server.new_account()
    client = acct.trail()
    client.create_trail(at.CreateTrailRequest(name="insight-trail", oss_bucket_name="insight-bucket"))
    put = client.put_insight_selectors(
        at.PutInsightSelectorsRequest(
            trail_name="insight-trail",
            insight_selectors=json.dumps([{"insightType": "IpInsight"}, {"insightType": "AkInsight"}]),
        )
    ).body
    assert put.insight_selectors == ['{"insightType":"AkInsight"}', '{"insightType":"IpInsight"}']
    assert put.trail_arn.endswith(f":{acct.account_id}:trail/insight-trail")
    got = client.get_insight_selectors(at.GetInsightSelectorsRequest(trail_name="insight-trail")).body
    assert got.insight_selectors == put.insight_selectors
    with pytest.raises(TeaException) as bad:
        client.put_insight_selectors(
            at.PutInsightSelectorsRequest(trail_name="insight-trail", insight_selectors='[{"insightType":"Nope"}]')
        )
    assert bad.value.code == "InsightSelectorDoesNotExistException"
    with pytest.raises(TeaException) as bad:
        client.enable_insight(at.EnableInsightRequest(insight_type="Nope"))
    assert bad.value.code == "InsightTypeNotAvailable"
    with pytest.raises(TeaException) as bad:
        client.get_insight_selectors(at.GetInsightSelectorsRequest(trail_name="no-such-trail"))
    assert bad.value.code == "EntityNotExist.Trail"


def bucket_events(root: Path, kind: str) -> list[dict[str, Any]]:
    """Every event in the bucket directory's log files under AliyunLogs/<kind>/."""
    return [
        e for f in sorted(root.glob(f"AliyunLogs/{kind}/**/*.gz")) for e in json.loads(gzip.decompress(f.read_bytes()))
    ]


def test_trails_deliver_the_insight_types_they_select_under_actiontrail_insight(insight_server: Server) -> None:
    acct = insight_server.new_account()
    user_id, upn, key_id, secret = with_user_key(acct)
    client = acct.trail()
    client.enable_insight(at.EnableInsightRequest(insight_type="IpInsight"))
    for name in ("with-insights", "without-insights"):
        client.create_trail(at.CreateTrailRequest(name=name, oss_bucket_name=name, event_rw="All"))
        client.start_logging(at.StartLoggingRequest(name=name))
    client.put_insight_selectors(
        at.PutInsightSelectorsRequest(trail_name="with-insights", insight_selectors='[{"insightType":"IpInsight"}]')
    )
    seed_week(insight_server.runtime, [user_caller(acct.account_id, user_id, upn, key_id, HOME)], seed=3)
    acct.call("GetUser", {"UserPrincipalName": upn}, key_id=key_id, secret=secret, headers={"X-Forwarded-For": NEW_IP})
    start = wait_for("IpInsight", lambda: insight_events(acct, InsightType="IpInsight"))[-1]  # the Start
    buckets = insight_server.data_dir / "buckets" / acct.account_id
    delivered = wait_for(
        "the insight event in the bucket", lambda: bucket_events(buckets / "with-insights", "Actiontrail-Insight")
    )
    assert start["eventId"] in [e["eventId"] for e in delivered]
    assert {(e["eventName"], e["sharedEventId"]) for e in delivered} == {("IpInsight", start["sharedEventId"])}
    # Beside it, the trail's other events, none of them insights; the trail that selects none has none.
    wait_for("the other events", lambda: bucket_events(buckets / "without-insights", "Actiontrail"))
    for trail in ("with-insights", "without-insights"):
        assert all(e.get("eventType") != "ActionTrailInsight" for e in bucket_events(buckets / trail, "Actiontrail"))
    assert bucket_events(buckets / "without-insights", "Actiontrail-Insight") == []


__all__ = ["insight_server"]  # the fixture, imported for pytest


def test_two_servers_on_one_database_detect_each_insight_once(insight_server: Server) -> None:
    acct = insight_server.new_account()
    user_id, upn, key_id, secret = with_user_key(acct)
    acct.trail().enable_insight(at.EnableInsightRequest(insight_type="IpInsight"))
    seed_week(insight_server.runtime, [user_caller(acct.account_id, user_id, upn, key_id, HOME)], seed=11)
    with insight_server.sibling() as other:
        # Both servers run a detector; the new address is used through each of them.
        for host in (insight_server, other):
            acct.server = host
            acct.call(
                "GetUser", {"UserPrincipalName": upn}, key_id=key_id, secret=secret, headers={"X-Forwarded-For": NEW_IP}
            )
        wait_for("IpInsight", lambda: insight_events(acct, InsightType="IpInsight"))
        # A later marker, judged only after both calls: once it is there, every detector has seen them.
        acct.call(
            "GetUser",
            {"UserPrincipalName": upn},
            key_id=key_id,
            secret=secret,
            headers={"X-Forwarded-For": "198.51.100.1"},
        )
        wait_for("the marker", lambda: insight_events(acct, InsightObject="198.51.100.1"))
        acct.server = insight_server
    # Opened once (it may have ended since: 5 quiet windows are 50 s here).
    found = insight_events(acct, InsightObject=NEW_IP)
    assert [e["insightDetails"]["state"] for e in found if e["insightDetails"]["state"] == "Start"] == ["Start"]
    assert len({e["sharedEventId"] for e in found}) == 1

"""Trails of different accounts in one deployment never share a destination unless the operator allows it: the
directory default is per account, and a configured bucket or SLS project with an `accounts` allow-list is refused
to other accounts at CreateTrail/UpdateTrail and again at delivery time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_actiontrail20200706 import models as at
from Tea.exceptions import TeaException

from tests.e2e.test_delivery import (
    S3_KEY_ID,
    S3_SECRET,
    VERSION,
    assert_exactly,
    bucket_events,
    configure,
    directory_events,
    event_id_of,
    own_server,
    s3_client,
    some_calls,
    stored_events,
    wait_for,
)
from tests.sink_support import moto_s3
from tests.support import Account, Server

BUCKET_DENIED = ("InsufficientBucketPolicyException", 403)
PROJECT_DENIED = ("InsufficientSlsPolicyException", 403)


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tserver(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Short backoff, so a destination allowed again is retried within seconds.
    srv, cleanup = own_server(
        request, tmp_path_factory.mktemp(f"tenancy-{request.param}"), {"OPENIMS_DELIVERY_MAX_BACKOFF_SECONDS": "2"}
    )
    try:
        yield srv
    finally:
        cleanup()


def refused(call: Any) -> TeaException:
    with pytest.raises(TeaException) as info:
        call()
    return info.value


def s3_entry(endpoint: str, *accounts: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "endpoint_url": endpoint,
        "access_key_id": S3_KEY_ID,
        "secret_access_key": S3_SECRET,
        "region": "us-east-1",
    }
    return {**entry, "accounts": list(accounts)} if accounts else entry


def run_trail(acct: Account, name: str, bucket: str, tag: str) -> dict[str, dict[str, Any]]:
    """Create and start a trail (EventRW All), make some calls, stop it; returns the events it must deliver."""
    t = acct.trail()
    t.create_trail(at.CreateTrailRequest(name=name, oss_bucket_name=bucket, event_rw="All"))
    start = t.start_logging(at.StartLoggingRequest(name=name)).body.request_id
    some_calls(acct, tag)
    stop = t.stop_logging(at.StopLoggingRequest(name=name)).body.request_id
    server = acct.server
    return stored_events(server, acct.account_id, event_id_of(server, start), event_id_of(server, stop))


def oss_target(acct: Account, name: str) -> dict[str, Any]:
    status = acct.call("GetTrailStatus", {"Name": name}, version=VERSION)
    [target] = [x for x in status["Targets"] if x["Target"] == "oss"]
    return {**target, "PendingEvents": status["PendingEvents"]}


def test_same_bucket_name_is_a_directory_per_account(tserver: Server) -> None:
    a, b = tserver.new_account(), tserver.new_account()
    bucket = f"shared-{a.alias}"
    expected = {acct.account_id: run_trail(acct, "tenant-trail", bucket, acct.alias) for acct in (a, b)}
    roots = {acct.account_id: tserver.data_dir / "buckets" / acct.account_id / bucket for acct in (a, b)}

    for account_id, root in roots.items():
        wait_for(
            f"account {account_id}'s events in its directory",
            lambda root=root, account_id=account_id: (
                root.exists() and len(directory_events(root, "", settled=False)) >= len(expected[account_id])
            ),
        )
    for account_id, root in roots.items():
        delivered = directory_events(root, "")
        assert_exactly(delivered, expected[account_id])  # each directory: all of its account's events, no other
        assert {e["recipientAccountId"] for e in delivered} == {account_id}
    assert not (tserver.data_dir / "buckets" / bucket).exists()  # the old shared location is not used


def test_allow_listed_bucket_is_refused_to_other_accounts(tserver: Server, s3: str) -> None:
    a, b = tserver.new_account(), tserver.new_account()
    bucket = f"only-a-{a.alias}"
    s3_client(s3).create_bucket(Bucket=bucket)
    configure(tserver, "oss-buckets.json", bucket, s3_entry(s3, a.account_id))

    tb = b.trail()
    err = refused(lambda: tb.create_trail(at.CreateTrailRequest(name="b-trail", oss_bucket_name=bucket)))
    assert (err.code, err.statusCode) == BUCKET_DENIED
    assert bucket in err.message and b.account_id in err.message
    for secret in (S3_SECRET, S3_KEY_ID, s3, a.account_id):  # neither credentials nor whom the bucket is for
        assert secret not in err.message
    tb.create_trail(at.CreateTrailRequest(name="b-trail", oss_bucket_name=f"own-{b.alias}"))
    err = refused(lambda: tb.update_trail(at.UpdateTrailRequest(name="b-trail", oss_bucket_name=bucket)))
    assert (err.code, err.statusCode) == BUCKET_DENIED
    [kept] = tb.describe_trails(at.DescribeTrailsRequest()).body.trail_list
    assert kept.oss_bucket_name == f"own-{b.alias}"
    audited = [
        (e["eventName"], e.get("errorCode")) for e in b.events(ServiceName="Actiontrail") if e["eventRW"] == "Write"
    ]
    assert audited == [("UpdateTrail", BUCKET_DENIED[0]), ("CreateTrail", None), ("CreateTrail", BUCKET_DENIED[0])]
    for secret in (S3_SECRET, S3_KEY_ID, s3, a.account_id):  # nor do the refused calls' events
        assert secret not in json.dumps(b.events())

    expected = run_trail(a, "a-trail", bucket, "allowed")
    client = s3_client(s3)
    wait_for("account A's events in its bucket", lambda: len(bucket_events(client, bucket, "")) >= len(expected))
    assert_exactly(bucket_events(client, bucket, ""), expected)


def test_sls_project_of_another_account_or_not_allow_listed_is_refused(tserver: Server) -> None:
    a, b = tserver.new_account(), tserver.new_account()
    project = f"p-{a.alias}"
    configure(
        tserver,
        "sls-projects.json",
        project,
        {
            "endpoint": "127.0.0.1:9",
            "access_key_id": S3_KEY_ID,
            "access_key_secret": S3_SECRET,
            "accounts": [a.account_id],
        },
    )
    arn_of = {acct.account_id: f"acs:log:cn-hangzhou:{acct.account_id}:project/{project}" for acct in (a, b)}

    ta, tb = a.trail(), b.trail()
    err = refused(
        lambda: tb.create_trail(at.CreateTrailRequest(name="b-sls-trail", sls_project_arn=arn_of[b.account_id]))
    )
    assert (err.code, err.statusCode) == PROJECT_DENIED and a.account_id not in err.message
    err = refused(
        lambda: tb.create_trail(at.CreateTrailRequest(name="b-sls-trail", sls_project_arn=arn_of[a.account_id]))
    )
    assert (err.code, err.statusCode) == PROJECT_DENIED and "names account" in err.message
    err = refused(
        lambda: ta.create_trail(at.CreateTrailRequest(name="a-sls-trail", sls_project_arn=arn_of[b.account_id]))
    )
    assert (err.code, err.statusCode) == PROJECT_DENIED
    for secret in (S3_SECRET, S3_KEY_ID, "127.0.0.1:9"):
        assert secret not in err.message
    assert ta.describe_trails(at.DescribeTrailsRequest()).body.trail_list == []

    created = ta.create_trail(at.CreateTrailRequest(name="a-sls-trail", sls_project_arn=arn_of[a.account_id])).body
    assert created.sls_project_arn == arn_of[a.account_id]
    err = refused(
        lambda: ta.update_trail(at.UpdateTrailRequest(name="a-sls-trail", sls_project_arn=arn_of[b.account_id]))
    )
    assert (err.code, err.statusCode) == PROJECT_DENIED


def test_delivery_rechecks_the_allow_list(tserver: Server, s3: str) -> None:
    a, b = tserver.new_account(), tserver.new_account()
    bucket = f"recheck-{b.alias}"
    client = s3_client(s3)
    client.create_bucket(Bucket=bucket)
    configure(tserver, "oss-buckets.json", bucket, s3_entry(s3, a.account_id, b.account_id))
    t = b.trail()
    # Write events only: the GetTrailStatus polls below must not feed the trail.
    t.create_trail(at.CreateTrailRequest(name="b-trail", oss_bucket_name=bucket, event_rw="Write"))
    start = t.start_logging(at.StartLoggingRequest(name="b-trail")).body.request_id
    some_calls(b, "allowed")
    allowed_until = t.get_trail_status(at.GetTrailStatusRequest(name="b-trail")).body.request_id
    before = stored_events(
        tserver, b.account_id, event_id_of(tserver, start), event_id_of(tserver, allowed_until), "Write"
    )
    wait_for("the events from before the change", lambda: len(bucket_events(client, bucket, "")) >= len(before))
    wait_for("the deliverer to record them", lambda: oss_target(b, "b-trail")["PendingEvents"] == 0)
    delivered_before = bucket_events(client, bucket, "")
    assert_exactly(delivered_before, before)

    configure(tserver, "oss-buckets.json", bucket, s3_entry(s3, a.account_id))  # the operator takes B off the list
    some_calls(b, "denied")
    wait_for(
        "the refusal to show in GetTrailStatus",
        lambda: "is not available to account " + b.account_id in oss_target(b, "b-trail")["LatestDeliveryError"],
    )
    target = oss_target(b, "b-trail")
    assert target["Status"] == "Failing" and target["PendingEvents"] > 0
    assert S3_SECRET not in target["LatestDeliveryError"] and a.account_id not in target["LatestDeliveryError"]
    time.sleep(3)  # past the batch window and a retry: still nothing new in the bucket
    assert len(bucket_events(client, bucket, "")) == len(delivered_before)

    configure(tserver, "oss-buckets.json", bucket, s3_entry(s3, a.account_id, b.account_id))  # and puts B back
    stop = t.stop_logging(at.StopLoggingRequest(name="b-trail")).body.request_id
    expected = stored_events(tserver, b.account_id, event_id_of(tserver, start), event_id_of(tserver, stop), "Write")
    wait_for("the waiting events", lambda: len(bucket_events(client, bucket, "")) >= len(expected))
    assert_exactly(bucket_events(client, bucket, ""), expected)

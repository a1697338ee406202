"""Trail actions through the official ActionTrail SDK (and the OpenIMS extensions and CLI), with their events."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_actiontrail20200706 import models as at
from sqlalchemy import select
from Tea.exceptions import TeaException

from openims.store.tables.trails import trails
from tests.support import Account

VERSION = "2020-07-06"
TRAIL = "ACS::ActionTrail::Trail"
SECRET = "whsec-0123456789abcdefSECRET"


def error_of(call) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    return info.value


def check_event(acct: Account, request_id: str, name: str, rw: str, trail: str) -> dict[str, Any]:
    event = acct.event_for(request_id)
    assert (event["eventName"], event["eventRW"], event["serviceName"], event["apiVersion"]) == (
        name,
        rw,
        "Actiontrail",
        VERSION,
    )
    assert event["eventSource"] == "actiontrail.aliyuncs.com" and event["isGlobal"] is False
    assert event["resourceType"] == TRAIL and event["resourceName"] == trail
    assert event["referencedResources"] == {TRAIL: [trail]}
    assert "errorCode" not in event
    return event


def test_trail_lifecycle_is_audited(acct: Account) -> None:
    t = acct.trail()
    created = t.create_trail(
        at.CreateTrailRequest(
            name="audit-trail", oss_bucket_name="audit-bucket-" + acct.alias, oss_key_prefix="trails/prod"
        )
    ).body
    assert (created.name, created.event_rw, created.trail_region, created.home_region) == (
        "audit-trail",
        "Write",
        "All",
        "cn-hangzhou",
    )
    assert (created.oss_bucket_name, created.oss_key_prefix, created.sls_project_arn) == (
        "audit-bucket-" + acct.alias,
        "trails/prod",
        "",
    )

    [fresh] = t.describe_trails(at.DescribeTrailsRequest()).body.trail_list
    assert (fresh.status, fresh.is_organization_trail, fresh.start_logging_time, fresh.region) == (
        "Fresh",
        False,
        "",
        "cn-hangzhou",
    )
    assert fresh.trail_arn == f"acs:actiontrail:cn-hangzhou:{acct.account_id}:trail/audit-trail"
    assert fresh.create_time.endswith("Z") and fresh.update_time == fresh.create_time
    status = t.get_trail_status(at.GetTrailStatusRequest(name="audit-trail")).body
    assert status.is_logging is False and status.start_logging_time == "" and status.latest_delivery_time == ""

    started = t.start_logging(at.StartLoggingRequest(name="audit-trail")).body
    again = t.start_logging(at.StartLoggingRequest(name="audit-trail")).body  # already logging: no change
    [logging] = t.describe_trails(at.DescribeTrailsRequest()).body.trail_list
    assert logging.status == "Enable" and logging.start_logging_time
    status = t.get_trail_status(at.GetTrailStatusRequest(name="audit-trail")).body
    assert status.is_logging is True and status.start_logging_time == logging.start_logging_time

    arn = f"acs:log:cn-hangzhou:{acct.account_id}:project/audit-project"
    updated = t.update_trail(at.UpdateTrailRequest(name="audit-trail", event_rw="All", sls_project_arn=arn)).body
    assert (updated.event_rw, updated.sls_project_arn, updated.oss_key_prefix) == ("All", arn, "trails/prod")

    stopped = t.stop_logging(at.StopLoggingRequest(name="audit-trail")).body
    [off] = t.describe_trails(at.DescribeTrailsRequest()).body.trail_list
    assert off.status == "Disable" and off.stop_logging_time and off.event_rw == "All" and off.sls_project_arn == arn
    assert t.get_trail_status(at.GetTrailStatusRequest(name="audit-trail")).body.is_logging is False

    deleted = t.delete_trail(at.DeleteTrailRequest(name="audit-trail")).body
    assert t.describe_trails(at.DescribeTrailsRequest()).body.trail_list == []

    create_event = check_event(acct, created.request_id, "CreateTrail", "Write", "audit-trail")
    assert create_event["requestParameters"]["OssBucketName"] == "audit-bucket-" + acct.alias
    assert create_event["responseElements"]["Name"] == "audit-trail"
    for request_id, name in (
        (started.request_id, "StartLogging"),
        (again.request_id, "StartLogging"),
        (updated.request_id, "UpdateTrail"),
        (stopped.request_id, "StopLogging"),
        (deleted.request_id, "DeleteTrail"),
    ):
        check_event(acct, request_id, name, "Write", "audit-trail")
    [status_event] = acct.events(EventName="GetTrailStatus")[:1]
    assert status_event["eventRW"] == "Read" and status_event["resourceName"] == "audit-trail"
    assert acct.events(EventName="DescribeTrails")[0]["eventRW"] == "Read"


def test_invalid_parameters_are_refused_and_audited(acct: Account) -> None:
    t = acct.trail()
    bucket = "valid-bucket"
    cases = [
        (at.CreateTrailRequest(name="short", oss_bucket_name=bucket), "InvalidParameter.Name.Length"),
        (at.CreateTrailRequest(name="x" * 37, oss_bucket_name=bucket), "InvalidParameter.Name.Length"),
        (at.CreateTrailRequest(name="Upper-case", oss_bucket_name=bucket), "InvalidParameter.Name.InvalidChars"),
        (
            at.CreateTrailRequest(name="1starts-with-digit", oss_bucket_name=bucket),
            "InvalidParameter.Name.InvalidChars",
        ),
        (at.CreateTrailRequest(name="good-name", oss_bucket_name="ab"), "InvalidParameter.OssBucketName.Length"),
        (
            at.CreateTrailRequest(name="good-name", oss_bucket_name="Bad_Bucket"),
            "InvalidParameter.OssBucketName.InvalidChars",
        ),
        (
            at.CreateTrailRequest(name="good-name", oss_bucket_name=bucket, oss_key_prefix="short"),
            "InvalidParameter.OssKeyPrefix.Length",
        ),
        (
            at.CreateTrailRequest(name="good-name", oss_bucket_name=bucket, oss_key_prefix="9-starts-digit"),
            "InvalidParameter.OssKeyPrefix.InvalidChars",
        ),
        (at.CreateTrailRequest(name="good-name", oss_bucket_name=bucket, event_rw="Both"), "InvalidParameter.EventRW"),
        (
            at.CreateTrailRequest(name="good-name", sls_project_arn="acs:log:cn-hangzhou:1:logstore/x"),
            "InvalidParameter.SlsProjectArn.Format",
        ),
        (
            at.CreateTrailRequest(name="good-name", oss_bucket_name=bucket, oss_write_role_arn="not-an-arn"),
            "InvalidParameter.OssWriteRoleArn.InvalidChars",
        ),
        (at.CreateTrailRequest(name="good-name"), "MissingParameter"),
        (at.CreateTrailRequest(oss_bucket_name=bucket), "MissingParameter"),
        (
            at.CreateTrailRequest(name="good-name", oss_bucket_name=bucket, is_organization_trail=True),
            "InvalidParameter.IsOrganizationTrail.Unsupported",
        ),
        (
            at.CreateTrailRequest(
                name="good-name", max_compute_project_arn="acs:odps:cn-hangzhou:1:project/actiontrail_x"
            ),
            "InvalidParameter.MaxComputeProjectArn.Unsupported",
        ),
    ]
    for request, code in cases:
        err = error_of(lambda request=request: t.create_trail(request))
        assert (err.code, err.statusCode) == (code, 400), (request.to_map(), err.code)
    assert t.describe_trails(at.DescribeTrailsRequest()).body.trail_list == []
    failed = acct.events(EventName="CreateTrail")
    assert sorted(e["errorCode"] for e in failed) == sorted(code for _, code in cases)

    t.create_trail(at.CreateTrailRequest(name="good-name", oss_bucket_name=bucket))
    err = error_of(lambda: t.update_trail(at.UpdateTrailRequest(name="good-name", event_rw="Sometimes")))
    assert (err.code, err.statusCode) == ("InvalidParameter.EventRW", 400)
    err = error_of(lambda: t.get_trail_status(at.GetTrailStatusRequest()))
    assert (err.code, err.statusCode) == ("MissingParameter", 400)


def test_duplicates_missing_trails_and_the_limit(acct: Account) -> None:
    t = acct.trail()
    t.create_trail(at.CreateTrailRequest(name="first-trail", oss_bucket_name="some-bucket"))
    err = error_of(lambda: t.create_trail(at.CreateTrailRequest(name="first-trail", oss_bucket_name="other-bucket")))
    assert (err.code, err.statusCode) == ("EntityAlreadyExists.Trail", 409)

    missing = "no-such-trail"
    for call in (
        lambda: t.update_trail(at.UpdateTrailRequest(name=missing, event_rw="All")),
        lambda: t.delete_trail(at.DeleteTrailRequest(name=missing)),
        lambda: t.start_logging(at.StartLoggingRequest(name=missing)),
        lambda: t.stop_logging(at.StopLoggingRequest(name=missing)),
        lambda: t.get_trail_status(at.GetTrailStatusRequest(name=missing)),
    ):
        err = error_of(call)
        assert (err.code, err.statusCode) == ("EntityNotExist.Trail", 404)
    assert {e["eventName"] for e in acct.events(ResourceName=missing)} == {
        "UpdateTrail",
        "DeleteTrail",
        "StartLogging",
        "StopLogging",
        "GetTrailStatus",
    }

    for i in range(2, 6):
        t.create_trail(at.CreateTrailRequest(name=f"trail-{i}-of-five", oss_bucket_name="some-bucket"))
    err = error_of(lambda: t.create_trail(at.CreateTrailRequest(name="one-too-many", oss_bucket_name="some-bucket")))
    assert (err.code, err.statusCode) == ("LimitExceeded.Trail", 409)
    names = [x.name for x in t.describe_trails(at.DescribeTrailsRequest()).body.trail_list]
    assert names == ["first-trail"] + [f"trail-{i}-of-five" for i in range(2, 6)]
    picked = t.describe_trails(
        at.DescribeTrailsRequest(name_list="trail-3-of-five,first-trail,unknown-one")
    ).body.trail_list
    assert sorted(x.name for x in picked) == ["first-trail", "trail-3-of-five"]
    t.delete_trail(at.DeleteTrailRequest(name="first-trail"))
    t.create_trail(at.CreateTrailRequest(name="one-too-many", oss_bucket_name="some-bucket"))  # room again


def test_syslog_and_webhook_extensions_keep_the_secret_sealed(acct: Account) -> None:
    created = acct.call(
        "CreateTrail",
        {
            "Name": "ext-trail",
            "SyslogAddress": "127.0.0.1:6514",
            "SyslogTls": "true",
            "WebhookUrl": "https://hooks.example.com/trail?team=sec",
            "WebhookSecret": SECRET,
        },
        version=VERSION,
    )
    assert (created["SyslogAddress"], created["SyslogTls"], created["WebhookUrl"]) == (
        "127.0.0.1:6514",
        True,
        "https://hooks.example.com/trail?team=sec",
    )
    assert created["OssBucketName"] == "" and SECRET not in json.dumps(created)
    [listed] = acct.trail().describe_trails(at.DescribeTrailsRequest()).body.trail_list
    assert listed.name == "ext-trail" and listed.oss_bucket_name == ""

    event = acct.event_for(created["RequestId"])
    assert event["requestParameters"]["WebhookSecret"] == "******" and SECRET not in json.dumps(event)
    rt = acct.server.runtime
    with rt.db.read() as conn:
        row = conn.execute(
            select(trails).where(trails.c.account_id == acct.account_id, trails.c.name == "ext-trail")
        ).one()
    assert SECRET.encode() not in row.webhook_secret_sealed and SECRET not in json.dumps([str(v) for v in row])
    assert rt.master_key.open(row.webhook_secret_sealed, context=row.id) == SECRET

    bad = [
        ({"WebhookUrl": "http://hooks.example.com/x", "WebhookSecret": SECRET}, "InvalidParameter.WebhookUrl.Format"),
        (
            {"WebhookUrl": "https://user:pw@hooks.example.com/x", "WebhookSecret": SECRET},
            "InvalidParameter.WebhookUrl.Format",
        ),
        ({"WebhookUrl": "https://hooks.example.com/x"}, "MissingParameter"),
        (
            {"WebhookUrl": "https://hooks.example.com/x", "WebhookSecret": "too-short"},
            "InvalidParameter.WebhookSecret.Length",
        ),
        ({"SyslogAddress": "syslog.example.com"}, "InvalidParameter.SyslogAddress.Format"),
        ({"SyslogAddress": "syslog.example.com:70000"}, "InvalidParameter.SyslogAddress.Format"),
    ]
    for params, code in bad:
        with pytest.raises(TeaException) as info:
            acct.call("CreateTrail", {"Name": "bad-ext-trail", **params}, version=VERSION)
        assert (info.value.code, info.value.statusCode) == (code, 400), params
        assert "too-short" not in info.value.message
    assert all("too-short" not in json.dumps(e) for e in acct.events(EventName="CreateTrail"))

    removed = acct.call("UpdateTrail", {"Name": "ext-trail", "RemoveTargets": "Syslog"}, version=VERSION)
    assert "SyslogAddress" not in removed and removed["WebhookUrl"]
    with pytest.raises(TeaException) as info:
        acct.call("UpdateTrail", {"Name": "ext-trail", "RemoveTargets": "Webhook"}, version=VERSION)
    assert (info.value.code, info.value.statusCode) == ("MissingParameter", 400)
    assert acct.call("DescribeTrails", {}, version=VERSION)["TrailList"][0]["WebhookUrl"]  # nothing changed


def run_cli(acct: Account, *args: str) -> subprocess.CompletedProcess[str]:
    server = acct.server
    return subprocess.run(
        [sys.executable, "-m", "openims.cli.trails", "--data-dir", str(server.data_dir), *args],
        check=False,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_manages_trails_as_audited_calls(acct: Account, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    out = run_cli(
        acct,
        "trail",
        "create",
        "cli-trail",
        "--account",
        acct.account_id,
        "--bucket",
        "cli-bucket",
        "--prefix",
        "from-cli",
        "--event-rw",
        "All",
        "--syslog",
        "127.0.0.1:1514",
        "--syslog-tls",
        "--webhook",
        "https://hooks.example.com/in",
        "--webhook-secret-file",
        str(secret_file),
        "--start",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert (created["Name"], created["EventRW"], created["SyslogTls"]) == ("cli-trail", "All", True)

    listing = json.loads(run_cli(acct, "trail", "list", "--account", acct.account_id, "--json").stdout)
    [trail] = listing["TrailList"]
    assert (trail["Status"], trail["OssBucketName"], trail["WebhookUrl"]) == (
        "Enable",
        "cli-bucket",
        "https://hooks.example.com/in",
    )
    text = run_cli(acct, "trail", "list", "--account", acct.account_id)
    assert "cli-trail" in text.stdout and "oss://cli-bucket/from-cli" in text.stdout
    status = json.loads(run_cli(acct, "trail", "status", "cli-trail", "--account", acct.account_id, "--json").stdout)
    assert status["IsLogging"] is True and [x["Target"] for x in status["Targets"]] == ["oss", "syslog", "webhook"]
    assert run_cli(acct, "trail", "stop", "cli-trail", "--account", acct.account_id).returncode == 0
    failed = run_cli(acct, "trail", "start", "no-such-trail", "--account", acct.account_id)
    assert failed.returncode == 2 and "EntityNotExist.Trail" in failed.stderr
    assert run_cli(acct, "trail", "delete", "cli-trail", "--account", acct.account_id).returncode == 0

    names = [
        (e["eventName"], e.get("errorCode"))
        for e in acct.events(ServiceName="Actiontrail")
        if e["userAgent"] == "openims-cli"
    ]
    assert names == [
        ("DeleteTrail", None),
        ("StartLogging", "EntityNotExist.Trail"),
        ("StopLogging", None),
        ("GetTrailStatus", None),
        ("DescribeTrails", None),
        ("DescribeTrails", None),
        ("StartLogging", None),
        ("CreateTrail", None),
    ]
    create_event = acct.events(EventName="CreateTrail")[0]
    assert (
        create_event["userIdentity"]["type"] == "root-account"
        and create_event["requestParameters"]["WebhookSecret"] == "******"
    )
    assert all(SECRET not in json.dumps(e) for e in acct.events())

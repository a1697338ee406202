"""SQL over the trail: the advanced-query actions through the official ActionTrail SDK, GetAdvancedQueryResult
through the SDK runtime's generic caller, the CLI, and the escapes a query must not make."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from openims.query.templates import PRESETS
from tests.support import Account, Server

VERSION = "2020-07-06"


def query(acct: Account, sql: str, **extra: Any) -> dict[str, Any]:
    return acct.call("GetAdvancedQueryResult", {"QuerySql": sql, **extra}, version=VERSION)


def error_of(fn: Any) -> TeaException:
    with pytest.raises(TeaException) as caught:
        fn()
    return caught.value


@pytest.fixture
def other(server: Server) -> tuple[Account, str]:
    """Another account with a user whose name appears in its events only."""
    acct = server.new_account()
    marker = "secretmarker" + uuid.uuid4().hex[:8]
    acct.ims().create_user(m.CreateUserRequest(user_principal_name=acct.upn(marker), display_name=marker))
    return acct, marker


def test_group_by_counts_only_the_callers_own_events(acct: Account, other: tuple[Account, str]) -> None:
    ims = acct.ims()
    for n in range(3):
        ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn(f"q{n}"), display_name=f"q{n}"))
    out = query(acct, "SELECT eventName, count(*) AS n FROM events GROUP BY eventName ORDER BY eventName")
    assert out["Columns"] == ["eventName", "n"]
    counts = dict(out["Rows"])
    assert counts["CreateUser"] == 3
    total = query(acct, "SELECT count(*) FROM events")["Rows"][0][0]
    assert total == sum(counts.values()) + 1  # the GROUP BY query is an event too
    # Another account's ID in the WHERE clause matches nothing: the table holds the caller's events only.
    other_acct, marker = other
    assert query(acct, f"SELECT count(*) FROM events WHERE CAST(event AS TEXT) LIKE '%{other_acct.account_id}%'")[
        "Rows"
    ] == [[0]]
    assert query(acct, f"SELECT count(*) FROM events WHERE resourceName LIKE '%{marker}%'")["Rows"] == [[0]]
    assert query(other_acct, f"SELECT count(*) FROM events WHERE resourceName LIKE '%{marker}%'")["Rows"] == [[1]]


def test_columns_json_and_row_limit(acct: Account) -> None:
    acct.ims().create_user(m.CreateUserRequest(user_principal_name=acct.upn("cols"), display_name="cols"))
    out = query(
        acct,
        "SELECT eventTime, eventName, userName, sourceIpAddress, errorCode, eventType,"
        " event ->> 'eventName' AS fromJson FROM events WHERE eventName = 'CreateUser'",
    )
    [row] = out["Rows"]
    assert row[1] == "CreateUser" and row[2] == "root" and row[3] == "127.0.0.1" and row[4] is None
    assert row[5] == "ApiCall" and row[6] == "CreateUser" and row[0].endswith("Z") and len(row[0]) == 20
    for _ in range(3):
        acct.ims().get_user(m.GetUserRequest(user_principal_name=acct.upn("cols")))
    limited = query(acct, "SELECT eventId FROM events", MaxResults="2")
    assert limited["RowCount"] == 2 and limited["Truncated"] is True
    assert query(acct, "SELECT eventId FROM events", MaxResults="1000")["Truncated"] is False


def test_each_query_is_audited(acct: Account) -> None:
    sql = "SELECT count(*) FROM events WHERE eventName = 'GetUser'"
    out = query(acct, sql)
    event = acct.event_for(out["RequestId"])
    assert event["eventName"] == "GetAdvancedQueryResult" and event["requestParameters"]["QuerySql"] == sql
    refused = error_of(lambda: query(acct, "SELECT * FROM accounts"))
    assert refused.code == "InvalidParameter.QuerySql"
    failed = acct.events(EventName="GetAdvancedQueryResult", ErrorCode="InvalidParameter.QuerySql")
    assert failed and failed[0]["requestParameters"]["QuerySql"] == "SELECT * FROM accounts"


def test_presets_run(acct: Account) -> None:
    for preset in PRESETS:
        out = query(acct, preset.sql)
        assert out["Columns"], preset.template_id
        assert query(acct, "", TemplateId=preset.template_id)["Columns"] == out["Columns"]


# Each must fail to read anything outside the caller's own events: refused, or an answer without it.
ESCAPES = [
    "SELECT * FROM main.events",
    "SELECT * FROM public.events",
    "SELECT * FROM accounts",
    "SELECT * FROM access_keys",
    "SELECT * FROM users",
    "SELECT * FROM events, accounts",
    "SELECT (SELECT count(*) FROM main.events)",
    "SELECT (SELECT group_concat(body) FROM main.events) FROM events",
    "WITH events AS (SELECT * FROM main.events) SELECT * FROM events",
    "WITH e AS (SELECT * FROM public.events) SELECT * FROM e",
    "SELECT * FROM sqlite_master",
    "SELECT * FROM sqlite_temp_master",
    "SELECT * FROM pg_catalog.pg_class",
    "SELECT * FROM pg_roles",
    "SELECT * FROM query_events",
    "SELECT * FROM query_binding",
    "SELECT * FROM information_schema.tables",
    "ATTACH DATABASE '/tmp/openims-escape.db' AS x",
    "PRAGMA table_info(events)",
    "PRAGMA query_only=OFF",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT readfile('/etc/passwd')",
    "SELECT load_extension('/tmp/x')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT * FROM pg_ls_dir('.')",
    "COPY events TO STDOUT",
    "SELECT set_config('role', 'none', true), (SELECT count(*) FROM accounts)",
    "SELECT set_config('role', 'none', true)",
    "SELECT current_setting('data_directory')",
    "SELECT 1; SELECT * FROM accounts",
    "SELECT 1; DELETE FROM events",
    "SELECT 1 -- \n; DROP TABLE events",
    "SELECT 1 /* ; */ ; UPDATE events SET event_name = 'x'",
    "DELETE FROM events",
    "UPDATE events SET eventName = 'x'",
    "INSERT INTO events (eventName) VALUES ('x')",
    "CREATE TABLE x (a int)",
    "CREATE TEMP VIEW y AS SELECT * FROM main.events",
    "DROP VIEW events",
    "SELECT * INTO copied FROM events",
    "SELECT * FROM events FOR UPDATE",
    "BEGIN",
    "VACUUM",
    "EXPLAIN SELECT * FROM accounts",
    "SELECT * FROM ｅvents",  # full-width letter
    "SELECT * FROM \u0435vents",  # Cyrillic e
    "SELECT 1\uff1b DELETE FROM events",  # full-width semicolon
    "SEL\u200bECT * FROM accounts",  # zero-width space
    'SELECT * FROM "ACCOUNTS"',
    "SELECT * FROM [accounts]",
    "SELECT * FROM `accounts`",
    "SELECT * FROM json_each((SELECT body FROM main.events LIMIT 1))",
    "SELECT * FROM generate_series(1, 3)",
    "SELECT pg_sleep(0)",
    "SELECT version()",
    "SELECT sqlite_version()",
]


@pytest.mark.parametrize("sql", ESCAPES, ids=[f"escape{n:02d}" for n in range(len(ESCAPES))])
def test_escapes_read_nothing_outside_own_events(acct: Account, other: tuple[Account, str], sql: str) -> None:
    other_acct, marker = other
    try:
        answer = json.dumps(query(acct, sql))
    except TeaException as exc:
        assert exc.code == "InvalidParameter.QuerySql", (exc.code, exc.message)
        return
    for outside in (other_acct.account_id, marker, other_acct.key_id, "root:x:0:0", "pg_catalog", "CREATE TABLE"):
        assert outside not in answer


def test_nothing_was_written_by_the_escapes(acct: Account) -> None:
    before = query(acct, "SELECT count(*) FROM events")["Rows"][0][0]
    for sql in ("DELETE FROM events", "SELECT 1; DELETE FROM events", "UPDATE events SET eventName = 'x'"):
        error_of(lambda sql=sql: query(acct, sql))
    # Each failed attempt is itself an event: the count only grows, and the events are intact.
    after = query(acct, "SELECT count(*), count(DISTINCT eventName) FROM events")["Rows"][0]
    assert after[0] > before
    assert query(acct, "SELECT count(*) FROM events WHERE eventName = 'x'")["Rows"] == [[0]]


def test_the_time_limit_stops_a_runaway_query(server: Server) -> None:
    with server.sibling(OPENIMS_QUERY_TIMEOUT_SECONDS="1") as quick:
        acct = server.new_account()
        for n in range(9):
            acct.ims().create_user(m.CreateUserRequest(user_principal_name=acct.upn(f"t{n}"), display_name=f"t{n}"))
        acct.server = quick
        # At least 10 events to the 8th power: far more rows than a second allows.
        endless = "SELECT count(*) FROM events a, events b, events c, events d, events e, events f, events g, events h"
        err = error_of(lambda: query(acct, endless))
    assert err.code == "InvalidParameter.QuerySql.Timeout", err.message
    assert err.code == "InvalidParameter.QuerySql.Timeout"
    assert "1 s" in err.message


def test_a_query_cannot_build_huge_values(acct: Account) -> None:
    doubling = (
        "WITH RECURSIVE c(n, s) AS (SELECT 1, 'xxxxxxxx' UNION ALL SELECT n + 1, s || s FROM c WHERE n < 40) "
        "SELECT max(length(s)) FROM c"
    )
    err = error_of(lambda: query(acct, doubling))
    assert err.code.startswith("InvalidParameter.QuerySql")


def test_history_through_the_sdk(acct: Account) -> None:
    client = acct.trail()
    made = client.create_advanced_query_history(
        at.CreateAdvancedQueryHistoryRequest(query_sql="SELECT count(*) FROM events", simple_query=False)
    ).body
    assert made.query_id and made.query_sql == "SELECT count(*) FROM events" and made.simple_query is False
    listed = client.describe_advanced_query_history().body.query_history_list
    assert [h.query_id for h in listed] == [made.query_id]
    assert listed[0].time_stamp.isdigit() and listed[0].simple_query is False
    client.delete_advanced_query_history(at.DeleteAdvancedQueryHistoryRequest(query_id=made.query_id))
    assert not client.describe_advanced_query_history().body.query_history_list
    gone = error_of(
        lambda: client.delete_advanced_query_history(at.DeleteAdvancedQueryHistoryRequest(query_id=made.query_id))
    )
    assert gone.code == "EntityNotExist.AdvancedQueryHistory"


def test_templates_through_the_sdk(acct: Account, other: tuple[Account, str]) -> None:
    client = acct.trail()
    sql = "SELECT userName, count(*) FROM events GROUP BY userName"
    made = client.create_advanced_query_template(
        at.CreateAdvancedQueryTemplateRequest(template_name="count by user", template_sql=sql, simple_query=False)
    ).body
    assert made.template_name == "count by user" and made.template_sql == sql and made.simple_query == "false"
    page = client.describe_advanced_query_template(at.DescribeAdvancedQueryTemplateRequest(page_size=50)).body
    names = [t.template_name for t in page.template_page.template_list]
    assert page.template_page.total == len(PRESETS) + 1 and "count by user" in names
    assert "Failed sign-ins by source IP" in names
    only = client.describe_advanced_query_template(at.DescribeAdvancedQueryTemplateRequest(template_name="COUNT BY"))
    assert [t.template_id for t in only.body.template_page.template_list] == [made.template_id]
    got = client.get_advanced_query_template(at.GetAdvancedQueryTemplateRequest(template_id=made.template_id)).body
    assert got.template_sql == sql and got.simple_query is False
    changed = client.update_advanced_query_template(
        at.UpdateAdvancedQueryTemplateRequest(template_id=made.template_id, template_name="renamed", simple_query=True)
    ).body
    assert changed.template_name == "renamed" and changed.template_sql == sql and changed.simple_query == "true"
    assert query(acct, "", TemplateId=made.template_id)["Columns"][0] == "userName"
    # Another account sees neither the template nor can run it.
    other_client = other[0].trail()
    missing = error_of(
        lambda: other_client.get_advanced_query_template(
            at.GetAdvancedQueryTemplateRequest(template_id=made.template_id)
        )
    )
    assert missing.code == "EntityNotExist.AdvancedQueryTemplate"
    preset = error_of(
        lambda: client.delete_advanced_query_template(
            at.DeleteAdvancedQueryTemplateRequest(template_id=PRESETS[0].template_id)
        )
    )
    assert preset.code == "Forbidden.PresetTemplate"
    client.delete_advanced_query_template(at.DeleteAdvancedQueryTemplateRequest(template_id=made.template_id))
    gone = error_of(
        lambda: client.get_advanced_query_template(at.GetAdvancedQueryTemplateRequest(template_id=made.template_id))
    )
    assert gone.code == "EntityNotExist.AdvancedQueryTemplate"


def test_a_ram_user_needs_a_grant_to_read_events(acct: Account) -> None:
    upn = acct.upn("reader")
    ims = acct.ims()
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="reader"))
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    sql = "SELECT count(*) FROM events"
    denied = error_of(
        lambda: acct.call(
            "GetAdvancedQueryResult", {"QuerySql": sql}, VERSION, key.access_key_id, key.access_key_secret
        )
    )
    assert denied.code == "NoPermission"
    from alibabacloud_ram20150501 import models as ram

    acct.ram().attach_policy_to_user(
        ram.AttachPolicyToUserRequest(
            policy_type="System", policy_name="AliyunActionTrailReadOnlyAccess", user_name="reader"
        )
    )
    out = acct.call("GetAdvancedQueryResult", {"QuerySql": sql}, VERSION, key.access_key_id, key.access_key_secret)
    assert out["Rows"][0][0] > 0
    # Read-only access does not save templates.
    cannot = error_of(
        lambda: acct.call(
            "CreateAdvancedQueryTemplate",
            {"TemplateSql": sql, "SimpleQuery": "false"},
            VERSION,
            key.access_key_id,
            key.access_key_secret,
        )
    )
    assert cannot.code == "NoPermission"


def test_cli_query(server: Server, acct: Account) -> None:
    acct.ims().create_user(m.CreateUserRequest(user_principal_name=acct.upn("cli"), display_name="cli"))
    sql = "SELECT eventName, count(*) AS n FROM events WHERE eventName = 'CreateUser' GROUP BY eventName"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "openims", "--data-dir", str(server.data_dir), "events", "query", *args],
            capture_output=True,
            text=True,
            env=server.env,
            timeout=60,
            check=False,
        )

    table = cli("--account", acct.account_id, sql)
    assert table.returncode == 0, table.stderr
    assert table.stdout.split() == ["eventName", "n", "CreateUser", "1"]
    as_json = cli("--account", acct.account_id, "--json", sql)
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [{"eventName": "CreateUser", "n": 1}]
    as_csv = cli("--account", acct.account_id, "--csv", sql)
    assert as_csv.stdout.splitlines() == ["eventName,n", "CreateUser,1"]
    refused = cli("--account", acct.account_id, "DELETE FROM events")
    assert refused.returncode != 0 and "InvalidParameter.QuerySql" in refused.stderr
    # The operator's query is on the record, as the CLI's.
    found = acct.events(EventName="GetAdvancedQueryResult")
    assert any(e["userAgent"].startswith("openims-cli") for e in found)

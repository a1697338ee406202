"""Alert rules in-process, on SQLite and PostgreSQL: a rule's in-memory test agrees with LookupEvents' WHERE
clause on every attribute, threshold rules fire once per window, claims by several deliverers never overlap,
weakened settings are told from strengthened ones, and CEF escapes what it must."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from sqlalchemy import select

from openims import accounts, clock
from openims.actions.registry import IMS
from openims.alerts import cef, checks, queue
from openims.audit import event as audit
from openims.audit.lookup import RESOURCES, predicate
from openims.cli.operator import call
from openims.principal import RAM_USER, ROOT, Principal
from openims.runtime import Runtime
from openims.store.schema import events
from openims.store.tables.alerts import alerts
from openims.store.tables.event_resources import event_resources

SYSLOG = {"SyslogAddress": "127.0.0.1:9"}  # a destination for validation; nothing is delivered in these tests


def new_account(rt: Runtime) -> str:
    return accounts.create_account(rt, "a" + os.urandom(5).hex()).account_id


def record(
    rt: Runtime,
    account: str,
    name: str,
    *,
    user: str = "root",
    ip: str = "198.51.100.7",
    error: tuple[str, str] | None = None,
    mfa: bool = False,
    response: dict[str, Any] | None = None,
    when: int | None = None,
) -> str:
    kind = ROOT if user == "root" else RAM_USER
    principal = Principal(account, kind, account, user, "LTAIexample", mfa_authenticated=mfa)
    event = audit.build(
        name=name,
        service=IMS,
        rw="Write",
        principal=principal,
        origin=audit.Origin(ip, "unit"),
        request_id="r",
        region="cn-hangzhou",
        resource_type="ACS::RAM::User" if user != "root" else "",
        resources=[("ACS::RAM::User", user)] if user != "root" else [],
        response=response,
        error=error,
        event_ms=when,
    )
    with rt.db.transaction() as conn:
        audit.record(conn, event)
    return str(event["eventId"])


ATTRIBUTES = [
    ("EventName", "DeleteUser"),
    ("EventName", "Delete*"),
    ("EventName", "*"),
    ("ErrorCode", "*"),
    ("ErrorCode", "NoPermission"),
    ("ErrorCode", "No*"),
    ("Result", "Success"),
    ("Result", "Failure"),
    ("MFAUsed", "true"),
    ("MFAUsed", "false"),
    ("User", "root"),
    ("User", "alice"),
    ("User", "alice@x.onaliyun.com"),
    ("SourceIpAddress", "203.0.113.5"),
    ("ResourceName", "alice@x.onaliyun.com"),
    ("RoleName", "admin"),
    ("EventRW", "Write"),
    ("ServiceName", "Ims"),
]


def test_a_rule_matches_exactly_what_lookup_events_finds(rt: Runtime) -> None:
    account = new_account(rt)
    record(rt, account, "DeleteUser", user="alice@x.onaliyun.com", ip="203.0.113.5", mfa=True)
    record(rt, account, "DeleteGroup", error=("NoPermission", "no"))
    record(rt, account, "CreateUser", user="alicexyz@y.onaliyun.com", error=("NotFound", "gone"))
    record(rt, account, "DeleteUserGroup", user="bob@x.onaliyun.com")
    record(rt, account, "Deleted", user="alice@z.onaliyun.com", ip="203.0.113.5")
    with rt.db.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(events).where(events.c.account_id == account))]
        # As `record` hands them to the rules: with every resource of the event.
        for row in rows:
            row[RESOURCES] = [
                (r.resource_type, r.resource_name)
                for r in conn.execute(select(event_resources).where(event_resources.c.event_seq == row["seq"]))
            ]
        for key, value in ATTRIBUTES:
            p = predicate(key, value)
            by_sql = set(
                conn.execute(select(events.c.event_id).where(events.c.account_id == account, p.clause())).scalars()
            )
            by_test = {r["event_id"] for r in rows if p.test(r)}
            assert by_sql == by_test, (key, value)


def test_a_threshold_rule_fires_once_per_window_and_per_group(rt: Runtime) -> None:
    account = new_account(rt)
    call(
        rt,
        account,
        "CreateAlertRule",
        {"RuleName": "denied", "LookupAttribute.1.Key": "ErrorCode", "LookupAttribute.1.Value": "NoPermission",
         "Threshold": "3", "WindowSeconds": "60", "GroupBy": "SourceIpAddress", **SYSLOG},
    )  # fmt: skip
    start = clock.now_ms()

    def fired() -> list[str]:
        with rt.db.read() as conn:
            return list(
                conn.execute(
                    select(alerts.c.event_id).where(alerts.c.account_id == account).order_by(alerts.c.created_ms)
                ).scalars()
            )

    denied = ("NoPermission", "no")
    first = [record(rt, account, "ListUsers", error=denied, ip="198.51.100.1", when=start + i) for i in range(5)]
    record(rt, account, "ListUsers", ip="198.51.100.1", when=start + 6)  # a success does not count
    other = [record(rt, account, "ListUsers", error=denied, ip="198.51.100.2", when=start + 10 + i) for i in range(3)]
    assert fired() == [first[2], other[2]]
    # A window later the group may fire again, once it has counted to the threshold within the new window.
    later = [
        record(rt, account, "ListUsers", error=denied, ip="198.51.100.1", when=start + 61_000 + i) for i in range(3)
    ]
    assert fired() == [first[2], other[2], later[2]]
    with rt.db.read() as conn:
        body = json.loads(conn.execute(select(alerts.c.body).where(alerts.c.event_id == later[2])).scalar_one())
    assert body["threshold"] == {
        "count": 3, "threshold": 3, "windowSeconds": 60, "groupBy": "SourceIpAddress", "group": "198.51.100.1"
    }  # fmt: skip


def test_an_account_without_rules_queues_nothing_and_a_disabled_rule_fires_nothing(rt: Runtime) -> None:
    account = new_account(rt)
    record(rt, account, "ConsoleSignin")
    call(rt, account, "CreateAlertRule", {"RuleName": "root", "Preset": "RootSignin", "Enabled": "false", **SYSLOG})
    record(rt, account, "ConsoleSignin")
    with rt.db.read() as conn:
        queued = conn.execute(select(alerts.c.id).where(alerts.c.account_id == account)).all()
    assert queued == []


def test_claims_by_several_deliverers_never_overlap(rt: Runtime) -> None:
    account = new_account(rt)
    call(rt, account, "CreateAlertRule", {"RuleName": "any", "LookupAttribute.1.Key": "EventName",
                                          "LookupAttribute.1.Value": "CreateU*", **SYSLOG})  # fmt: skip
    expected = {record(rt, account, "CreateUser", user=f"u{i}@x.onaliyun.com") for i in range(30)}
    taken: dict[str, list[str]] = {"a": [], "b": [], "c": []}
    now = clock.now_ms() + 1

    def claimer(owner: str) -> None:
        while claimed := queue.claim(rt.db, owner, now, limit=4):
            taken[owner] += [c.body["event"]["eventId"] for c in claimed]

    threads = [threading.Thread(target=claimer, args=(owner,)) for owner in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [e for claimed in taken.values() for e in claimed]
    assert sorted(everything) == sorted(expected)
    # Leased alerts are nobody else's until the lease lapses; then they are claimed again, with the same IDs.
    assert queue.claim(rt.db, "d", now + 1) == []
    again = queue.claim(rt.db, "d", now + queue.LEASE_MS + 1, limit=100)
    assert sorted(c.body["event"]["eventId"] for c in again) == sorted(expected)


def _policy(**fields: Any) -> dict[str, Any]:
    return {"PasswordPolicy": {"MinimumPasswordLength": 8, "RequireNumbers": False, "MaxLoginAttemps": 0, **fields}}


def test_weakened_compares_with_the_previous_setting_or_the_defaults(rt: Runtime) -> None:
    account = new_account(rt)

    def change(name: str, response: dict[str, Any]) -> list[str]:
        event_id = record(rt, account, name, response=response)
        with rt.db.read() as conn:
            body = json.loads(conn.execute(select(events.c.body).where(events.c.event_id == event_id)).scalar_one())
            return checks.weakened(conn, body)

    assert change("SetPasswordPolicy", _policy(MinimumPasswordLength=12, RequireNumbers=True)) == []
    assert change("SetPasswordPolicy", _policy(MinimumPasswordLength=12, RequireNumbers=True, MaxLoginAttemps=5)) == []
    assert change("SetPasswordPolicy", _policy(MinimumPasswordLength=10, RequireNumbers=False, MaxLoginAttemps=5)) == [
        "MinimumPasswordLength",
        "RequireNumbers",
    ]
    assert change("SetPasswordPolicy", _policy(MinimumPasswordLength=10, MaxLoginAttemps=0)) == ["MaxLoginAttemps"]
    mandatory = {"SecurityPreference": {"LoginProfilePreference": {"MFAOperationForLogin": "mandatory"}}}
    assert change("SetSecurityPreference", mandatory) == []  # stronger than the default (independent)
    masks = {"LoginProfilePreference": {"MFAOperationForLogin": "mandatory", "LoginNetworkMasks": "10.0.0.0/8"}}
    assert change("SetSecurityPreference", {"SecurityPreference": masks}) == []
    wider = {"LoginProfilePreference": {"MFAOperationForLogin": "adaptive", "LoginNetworkMasks": ""}}
    assert change("SetSecurityPreference", {"SecurityPreference": wider}) == [
        "LoginProfilePreference.LoginNetworkMasks",
        "LoginProfilePreference.MFAOperationForLogin",
    ]


def test_cef_escapes_header_and_extension_values() -> None:
    alert = {
        "alertId": "a-1",
        "alertTime": "2026-12-03T10:00:00Z",
        "accountId": "1",
        "ruleName": "pipes|and\\slashes",
        "preset": "",
        "severity": "high",
        "title": "a|b",
        "summary": "x=y\nnext line",
        "event": {"eventName": "DeleteUser", "sourceIpAddress": "203.0.113.5", "userIdentity": {"userName": "al=ice"}},
    }
    text = cef.format_alert(alert)
    assert text.startswith("CEF:0|OpenIMS|OpenIMS|1|pipes\\|and\\\\slashes|a\\|b|9|")
    assert "msg=x\\=y\\nnext line" in text and "suser=al\\=ice" in text and "act=DeleteUser" in text
    assert f"rt={clock.parse_iso('2026-12-03T10:00:00Z')}" in text
    assert "\n" not in text


def test_a_new_condition_replaces_the_whole_old_one(rt: Runtime) -> None:
    account = new_account(rt)
    call(rt, account, "CreateAlertRule", {"RuleName": "w", "Preset": "SecuritySettingsWeakened", **SYSLOG})
    rule = call(
        rt,
        account,
        "UpdateAlertRule",
        {"RuleName": "w", "LookupAttribute.1.Key": "EventName", "LookupAttribute.1.Value": "SetPasswordPolicy"},
    )["AlertRule"]
    assert (rule["Preset"], rule["Check"], rule["Threshold"]) == ("", "", 1)
    assert rule["LookupAttributes"] == [{"Key": "EventName", "Value": "SetPasswordPolicy"}]
    assert rule["Severity"] == "high" and rule["Destinations"] == ["Syslog"]  # what was not replaced stays

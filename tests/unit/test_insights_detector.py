"""The detector, in-process, with the clock stopped and moved by the test: each insight type's Start and End,
what is not unusual, and one detector at a time on a shared database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import insert, select

from openims import accounts, clock, ids
from openims.actions.registry import IMS, RAM, READ, WRITE, Service
from openims.audit import event as audit
from openims.audit.outside_api import CONSOLE_SIGNIN
from openims.insights import catalogue
from openims.insights.detector import LEASE_MS, SETTLE_MS, Detector, Timing
from openims.insights.rates import Baseline
from openims.principal import RAM_USER, Principal
from openims.runtime import Runtime
from openims.store.schema import events
from openims.store.tables.insights import insight_types, insights
from tests.insight_support import root_caller, seed_week

MINUTE = 60_000
T0 = 1_790_000_000_000 - 1_790_000_000_000 % MINUTE  # a window boundary
HOME = ("10.1.0.1", "10.1.0.2")


@pytest.fixture
def frozen() -> Iterator[None]:
    clock.freeze(T0 / 1000)
    try:
        yield
    finally:
        clock.freeze(None)


def at(ms: int) -> None:
    clock.freeze(ms / 1000)


def account(rt: Runtime, *types: str) -> tuple[str, str]:
    """A new account with `types` switched on: (account ID, root AccessKey ID)."""
    new = accounts.create_account(rt, "t" + uuid.uuid4().hex[:12])
    with rt.db.transaction() as conn:
        for t in types:
            conn.execute(
                insert(insight_types).values(account_id=new.account_id, insight_type=t, enabled=True, updated_ms=0)
            )
    return new.account_id, new.access_key_id


def record(
    rt: Runtime,
    principal: Principal,
    name: str,
    when: int,
    ip: str,
    *,
    service: Service = IMS,
    rw: str = READ,
    error: tuple[str, str] | None = None,
) -> str:
    event = audit.build(
        name=name,
        service=service,
        rw=rw,
        principal=principal,
        origin=audit.Origin(ip, "test"),
        request_id=ids.request_id(),
        region="cn-hangzhou",
        error=error,
        event_ms=when,
    )
    with rt.db.transaction() as conn:
        audit.record(conn, event)
    return str(event["eventId"])


def found(rt: Runtime, account_id: str) -> list[dict[str, Any]]:
    """The account's insight events, oldest first."""
    with rt.db.read() as conn:
        rows = conn.execute(
            select(events.c.body)
            .where(events.c.account_id == account_id, events.c.event_rw == catalogue.CATEGORY)
            .order_by(events.c.seq)
        ).scalars()
        return [json.loads(b) for b in rows]


def states(rt: Runtime, account_id: str) -> list[tuple[str, str, str]]:
    return [
        (e["eventName"], e["insightDetails"]["state"], e["insightDetails"]["insightObject"])
        for e in found(rt, account_id)
    ]


def detector(rt: Runtime) -> Detector:
    return Detector(rt, Timing(interval_s=1.0, window_ms=MINUTE))


def test_thresholds_are_far_above_the_baseline() -> None:
    assert Baseline(0.0, 0.0).threshold(10) == 10.0
    assert Baseline(5.0, 1.0, 8).threshold(10) == 11.0  # mean + 6 sigma
    assert Baseline(50.0, 2.0, 70).threshold(10) == 100.0  # twice the mean
    assert Baseline(0.05, 3.0, 500).threshold(10) == 501.0  # above the nightly job's usual burst


def test_a_key_from_a_new_ip_starts_and_when_quiet_ends_an_ip_insight(rt: Runtime, frozen: None) -> None:
    account_id, key = account(rt, catalogue.IP)
    me = root_caller(account_id, key, HOME)
    seed_week(rt, [me], end_ms=T0)
    d = detector(rt)
    d.run_once()
    assert states(rt, account_id) == []  # a week of normal work is not unusual
    record(rt, me.principal, "GetUser", T0 + 1000, "198.51.100.7")
    record(rt, me.principal, "ListUsers", T0 + 2000, "198.51.100.7")
    at(T0 + 2000 + SETTLE_MS)
    d.run_once()
    assert states(rt, account_id) == [("IpInsight", "Start", "198.51.100.7")]
    # Still used from there: it stays open; then quiet for QUIET_WINDOWS windows: it ends.
    record(rt, me.principal, "GetUser", T0 + 3 * MINUTE, "198.51.100.7")
    at(T0 + 4 * MINUTE)
    d.run_once()
    assert len(states(rt, account_id)) == 1
    at(T0 + 3 * MINUTE + catalogue.QUIET_WINDOWS * MINUTE + SETTLE_MS)
    d.run_once()
    start, end = found(rt, account_id)
    assert end["insightDetails"]["state"] == "End" and end["sharedEventId"] == start["sharedEventId"]
    assert end["insightDetails"]["insightContext"]["statistics"]["insightCount"] == 3
    # The address is now the key's own: using it again is nothing new.
    record(rt, me.principal, "GetUser", T0 + 20 * MINUTE, "198.51.100.7")
    at(T0 + 21 * MINUTE)
    d.run_once()
    assert len(found(rt, account_id)) == 2


def test_a_key_used_for_a_new_service_or_after_a_long_silence_starts_an_ak_insight(rt: Runtime, frozen: None) -> None:
    account_id, key = account(rt, catalogue.AK)
    me = root_caller(account_id, key, HOME)
    seed_week(rt, [me], end_ms=T0)
    sleeper = Principal(account_id, RAM_USER, "u1", "sleeper@x.onaliyun.com", "LTAI" + "S" * 20)
    record(rt, sleeper, "GetUser", T0 - 40 * clock.DAY_MS, HOME[0])
    record(rt, sleeper, "GetUser", T0 - 39 * clock.DAY_MS, HOME[0])
    record(rt, me.principal, "ListPolicies", T0 + 1000, HOME[0], service=RAM)  # a service this key never used
    record(rt, sleeper, "GetUser", T0 + 2000, HOME[0])  # 39 days unused
    at(T0 + 2000 + SETTLE_MS)
    detector(rt).run_once()
    got = found(rt, account_id)
    assert [(e["insightDetails"]["insightObject"]) for e in got] == [key, sleeper.access_key_id]
    assert "service Ram" in got[0]["insightDetails"]["reason"]
    assert "39 days unused" in got[1]["insightDetails"]["reason"]


def test_a_burst_of_writes_starts_and_ends_a_call_rate_insight(rt: Runtime, frozen: None) -> None:
    account_id, key = account(rt, catalogue.CALL_RATE, catalogue.ERROR_RATE)
    me = root_caller(account_id, key, HOME, busy=30.0)
    seed_week(rt, [me], end_ms=T0)
    d = detector(rt)
    d.run_once()
    for i in range(40):
        record(rt, me.principal, "UpdateUser", T0 + MINUTE + i * 100, HOME[0], rw=WRITE)
    at(T0 + 2 * MINUTE + SETTLE_MS)
    d.run_once()
    assert states(rt, account_id) == [("ApiCallRateInsight", "Start", account_id)]
    start = found(rt, account_id)[0]["insightDetails"]
    assert start["insightContext"]["statistics"]["insightCount"] == 40
    assert start["eventName"] == "UpdateUser" and start["accessKeyId"] == key
    at(T0 + 3 * MINUTE + SETTLE_MS)
    d.run_once()
    assert states(rt, account_id)[1] == ("ApiCallRateInsight", "End", account_id)


def test_failed_sign_ins_from_one_address_start_a_signin_failure_insight(rt: Runtime, frozen: None) -> None:
    account_id, key = account(rt, catalogue.SIGNIN_FAILURE)
    seed_week(rt, [root_caller(account_id, key, HOME)], end_ms=T0, signins=((account_id, "alice@x", HOME[1]),))
    d = detector(rt)
    d.run_once()
    for i in range(12):
        guess = Principal(account_id, RAM_USER, "", f"user{i}@x", event_type="ConsoleSignin")
        record(rt, guess, "ConsoleSignin", T0 + i * 1000, "192.0.2.50", service=CONSOLE_SIGNIN, rw=WRITE,
               error=("InvalidPassword", "wrong"))  # fmt: skip
    at(T0 + MINUTE + SETTLE_MS)
    d.run_once()
    assert states(rt, account_id) == [("SigninFailureInsight", "Start", "192.0.2.50")]


def test_only_one_detector_works_at_a_time(rt: Runtime, frozen: None) -> None:
    account_id, key = account(rt, catalogue.IP)
    me = root_caller(account_id, key, HOME)
    seed_week(rt, [me], end_ms=T0)
    one, two = detector(rt), detector(rt)
    assert one.claim() and not two.claim()
    record(rt, me.principal, "GetUser", T0 + 1000, "198.51.100.9")
    at(T0 + 1000 + SETTLE_MS)
    two.run_once()  # refused the lease: does nothing
    assert states(rt, account_id) == []
    # `one` stalls; its lease lapses and `two` takes over. When `one` wakes, its writes are refused.
    at(T0 + 1000 + SETTLE_MS + LEASE_MS + 1)
    assert two.claim()
    assert not one.step()
    two.run_once()
    one.run_once()
    assert states(rt, account_id) == [("IpInsight", "Start", "198.51.100.9")]
    with rt.db.read() as conn:
        assert conn.execute(select(insights.c.id).where(insights.c.account_id == account_id)).all() != []


def test_switched_off_types_learn_but_say_nothing(rt: Runtime, frozen: None) -> None:
    account_id, key = account(rt)
    me = root_caller(account_id, key, HOME)
    seed_week(rt, [me], end_ms=T0)
    record(rt, me.principal, "GetUser", T0 + 1000, "198.51.100.10")
    at(T0 + 1000 + SETTLE_MS)
    detector(rt).run_once()
    assert states(rt, account_id) == []

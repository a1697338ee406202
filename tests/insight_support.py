"""A week (or any number of days) of an account's normal activity, for insight tests and bench/insights_fp.py.

`seed_week` records events through the one recorder (audit.event.build and record, as API calls are), with times
in the past: each caller works from its own one or two IP addresses, mostly in UTC working hours, with a fixed
repertoire of IMS calls (reads dominate, a few writes, about 2% failing), and runs through its whole repertoire
on its first day, as people's routines do, so its later calls are all things it has done before.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from openims import clock, ids
from openims.actions.registry import ACTIONTRAIL, IMS, READ, WRITE
from openims.audit import event as audit
from openims.audit.outside_api import CONSOLE_SIGNIN
from openims.principal import RAM_USER, ROOT, Principal
from openims.runtime import Runtime
from tests.conftest import backends
from tests.support import Server, start_server

# A detector round every half second over 10-second windows, and 127.0.0.1's X-Forwarded-For believed (so a
# test can call from another address).
INSIGHT_ENV = {
    "OPENIMS_INSIGHTS_INTERVAL_SECONDS": "0.5",
    "OPENIMS_INSIGHTS_WINDOW_SECONDS": "10",
    "OPENIMS_TRUSTED_PROXIES": "127.0.0.1",
}


@pytest.fixture(scope="module", params=backends())
def insight_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server per backend with INSIGHT_ENV (import it into a test module to use it)."""
    if request.param == "postgresql" and not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    srv, cleanup = start_server(tmp_path_factory.mktemp("insights-" + request.param), request.param, INSIGHT_ENV)
    try:
        yield srv
    finally:
        cleanup()


# (name, service, rw, weight)
REPERTOIRE = (
    ("GetUser", IMS, READ, 10.0),
    ("ListUsers", IMS, READ, 8.0),
    ("ListAccessKeys", IMS, READ, 6.0),
    ("GetAccessKeyLastUsed", IMS, READ, 4.0),
    ("ListGroupsForUser", IMS, READ, 3.0),
    ("LookupEvents", ACTIONTRAIL, READ, 2.0),
    ("UpdateUser", IMS, WRITE, 1.5),
    ("CreateUser", IMS, WRITE, 0.7),
    ("AddUserToGroup", IMS, WRITE, 0.5),
    ("DeleteUser", IMS, WRITE, 0.3),
)
ERRORS = (("EntityNotExist.User", "The user does not exist."), ("NoPermission", "You are not authorized."))


@dataclass(frozen=True)
class Caller:
    """Someone who acts in the account: an AccessKey (root's or a RAM user's) from its home addresses."""

    principal: Principal
    ips: tuple[str, ...]
    # Calls per hour in working hours (08:00-18:00 UTC) and outside them.
    busy: float = 6.0
    quiet: float = 0.5


def root_caller(account_id: str, key_id: str, ips: tuple[str, ...], **rates: float) -> Caller:
    return Caller(Principal(account_id, ROOT, account_id, "root", key_id), ips, **rates)


def user_caller(account_id: str, user_id: str, upn: str, key_id: str, ips: tuple[str, ...], **rates: float) -> Caller:
    return Caller(Principal(account_id, RAM_USER, user_id, upn, key_id, user_id=user_id), ips, **rates)


def _poisson(rng: random.Random, mean: float) -> int:
    n, t = 0, rng.expovariate(1.0)
    while t < mean:
        n += 1
        t += rng.expovariate(1.0)
    return n


def seed_week(
    rt: Runtime,
    callers: list[Caller],
    *,
    days: float = 7.0,
    end_ms: int | None = None,
    seed: int = 1,
    signins: tuple[tuple[str, str, str], ...] = (),
) -> int:
    """Record `days` of normal activity ending at `end_ms` (default: now), oldest first; returns how many
    events. `signins`: (account ID, user name, IP) of console users who sign in twice a working day, now and
    then mistyping their password once."""
    rng = random.Random(seed)
    end = end_ms if end_ms is not None else clock.now_ms()
    start = end - int(days * clock.DAY_MS)
    planned: list[tuple[int, Caller | None, tuple[str, ...]]] = []
    names = [r[0] for r in REPERTOIRE]
    weights = [r[3] for r in REPERTOIRE]
    for caller in callers:
        # The first day runs through the whole repertoire, from every home address.
        for i, name in enumerate(names):
            planned.append((start + (i + 1) * 60_000, caller, (name, caller.ips[i % len(caller.ips)])))
        hour = start - start % clock.HOUR_MS
        while hour < end:
            busy = 8 <= (hour // clock.HOUR_MS) % 24 < 18
            for _ in range(_poisson(rng, caller.busy if busy else caller.quiet)):
                at = hour + rng.randrange(clock.HOUR_MS)
                if start + len(names) * 60_000 < at < end:
                    planned.append((at, caller, (rng.choices(names, weights)[0], rng.choice(caller.ips))))
            hour += clock.HOUR_MS
    for account_id, user, ip in signins:
        day = start - start % clock.DAY_MS
        while day < end:
            for at in (day + 9 * clock.HOUR_MS + rng.randrange(clock.HOUR_MS), day + 14 * clock.HOUR_MS):
                if start < at < end:
                    if rng.random() < 0.1:
                        planned.append((at - 20_000, None, (account_id, user, ip, "fail")))
                    planned.append((at, None, (account_id, user, ip, "ok")))
            day += clock.DAY_MS
    planned.sort(key=lambda p: p[0])
    recorded = 0
    for i in range(0, len(planned), 1000):
        with rt.db.transaction() as conn:
            for at, caller, what in planned[i : i + 1000]:
                audit.record(conn, _event(rt, rng, at, caller, what))
                recorded += 1
    return recorded


def _event(rt: Runtime, rng: random.Random, at: int, caller: Caller | None, what: tuple[str, ...]) -> dict:  # type: ignore[type-arg]
    if caller is None:
        account_id, user, ip, outcome = what
        principal = Principal(account_id, RAM_USER, "", user, event_type="ConsoleSignin")
        return audit.build(
            name="ConsoleSignin",
            service=CONSOLE_SIGNIN,
            rw=WRITE,
            principal=principal,
            origin=audit.Origin(ip, "Mozilla/5.0"),
            request_id=ids.request_id(),
            region=rt.settings.region,
            error=None if outcome == "ok" else ("InvalidPassword", "The password is wrong."),
            additional={"loginAccount": user},
            event_ms=at,
        )
    name, ip = what
    service, rw = next((r[1], r[2]) for r in REPERTOIRE if r[0] == name)
    return audit.build(
        name=name,
        service=service,
        rw=rw,
        principal=caller.principal,
        origin=audit.Origin(ip, "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/2.13.3 TeaDSL/1"),
        request_id=ids.request_id(),
        region=rt.settings.region,
        api_version=service.version,
        raw_params={"UserPrincipalName": "someone@example.onaliyun.com"},
        response={},
        error=rng.choice(ERRORS) if rng.random() < 0.02 else None,
        event_ms=at,
    )

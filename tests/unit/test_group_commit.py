"""Group commit of read calls' events, in-process on SQLite and PostgreSQL: concurrent reads share
transactions, yet each caller returns only once its own event is committed; a replayed nonce fails only its
own call; a call whose rows cannot be stored fails alone, and the others of its batch are still recorded."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from openims import accounts
from openims.actions.registry import IMS
from openims.audit import event as audit
from openims.audit.group_commit import SpentNonce, committer
from openims.principal import ROOT, Principal
from openims.runtime import Runtime
from openims.store.schema import events, signature_nonces

CALLERS = 24


def read_event(account: str) -> dict[str, Any]:
    principal = Principal(account_id=account, kind=ROOT, principal_id=account, user_name="root")
    return audit.build(
        name="GetUser",
        service=IMS,
        rw="Read",
        principal=principal,
        origin=audit.Origin("127.0.0.1", "test"),
        request_id=os.urandom(8).hex(),
        region="cn-hangzhou",
    )


def stored(rt: Runtime, event_ids: list[str]) -> set[str]:
    with rt.db.read() as conn:
        return set(conn.execute(select(events.c.event_id).where(events.c.event_id.in_(event_ids))).scalars())


def concurrently(calls: list[Any]) -> list[BaseException | None]:
    """Run the calls at once (a barrier releases them together); returns each one's exception or None."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[BaseException | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            calls[i]()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertions
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def test_each_caller_returns_once_its_event_and_nonce_are_committed(rt: Runtime) -> None:
    account = accounts.create_account(rt, "g" + os.urandom(4).hex()).account_id
    evs = [read_event(account) for _ in range(CALLERS)]
    ids = [e["eventId"] for e in evs]
    seen: list[bool] = []

    def call(i: int) -> None:
        committer(rt).commit(rt, ("LTAIkey", f"nonce-{i}", 2**40), evs[i])
        seen.append(ids[i] in stored(rt, [ids[i]]))  # visible to another connection the moment it returns

    assert concurrently([lambda i=i: call(i) for i in range(CALLERS)]) == [None] * CALLERS
    assert seen == [True] * CALLERS
    assert stored(rt, ids) == set(ids)
    with rt.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(signature_nonces)).scalar_one() == CALLERS


def test_a_replayed_nonce_fails_its_own_call_only(rt: Runtime) -> None:
    account = accounts.create_account(rt, "g" + os.urandom(4).hex()).account_id
    committer(rt).commit(rt, ("LTAIkey", "spent", 2**40), read_event(account))
    evs = [read_event(account) for _ in range(CALLERS)]
    nonces = [("LTAIkey", "spent" if i % 5 == 0 else f"fresh-{i}", 2**40) for i in range(CALLERS)]
    outcomes = concurrently([lambda i=i: committer(rt).commit(rt, nonces[i], evs[i]) for i in range(CALLERS)])
    for i, outcome in enumerate(outcomes):
        assert isinstance(outcome, SpentNonce) if i % 5 == 0 else outcome is None
    fresh = [e["eventId"] for i, e in enumerate(evs) if i % 5]
    assert stored(rt, [e["eventId"] for e in evs]) == set(fresh)


def test_a_call_whose_rows_fail_fails_alone(rt: Runtime) -> None:
    account = accounts.create_account(rt, "g" + os.urandom(4).hex()).account_id
    evs = [read_event(account) for _ in range(CALLERS)]
    broken = evs[7]
    del broken["recipientAccountId"]  # record cannot store it
    outcomes = concurrently(
        [lambda i=i: committer(rt).commit(rt, ("LTAIkey", f"n{i}", 2**40), evs[i]) for i in range(CALLERS)]
    )
    assert outcomes[7] is not None
    assert [o for i, o in enumerate(outcomes) if i != 7] == [None] * (CALLERS - 1)
    good = [e["eventId"] for i, e in enumerate(evs) if i != 7]
    assert stored(rt, [e["eventId"] for e in evs]) == set(good)


@pytest.mark.parametrize("nonce", [None, ("LTAIkey", "n", 2**40)], ids=["unsigned", "signed"])
def test_a_lone_call_is_recorded(rt: Runtime, nonce: tuple[str, str, int] | None) -> None:
    account = accounts.create_account(rt, "g" + os.urandom(4).hex()).account_id
    ev = read_event(account)
    committer(rt).commit(rt, nonce, ev)
    assert stored(rt, [ev["eventId"]]) == {ev["eventId"]}

"""Concurrent writers: the schema, not only Python, keeps names unique, and every attempt is audited."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from tests.support import Account


def test_concurrent_creates_of_one_name(acct: Account) -> None:
    upn = acct.upn("racer")

    def attempt(_: int) -> str:
        try:
            acct.ims().create_user(m.CreateUserRequest(user_principal_name=upn, display_name="racer"))
            return "ok"
        except TeaException as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(attempt, range(12)))
    assert outcomes.count("ok") == 1 and set(outcomes) == {"ok", "EntityAlreadyExists.User"}
    events = acct.events(EventName="CreateUser")
    assert len(events) == 12
    assert sorted(e.get("errorCode", "ok") for e in events) == sorted(outcomes)
    assert len(acct.ims().list_users(m.ListUsersRequest()).body.users.user) == 1


def test_concurrent_group_creates(acct: Account) -> None:
    def attempt(_: int) -> str:
        try:
            acct.ims().create_group(m.CreateGroupRequest(group_name="same"))
            return "ok"
        except TeaException as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count("ok") == 1 and set(outcomes) == {"ok", "EntityAlreadyExists.Group"}
    assert len(acct.events(EventName="CreateGroup")) == 8

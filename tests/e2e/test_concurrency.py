"""Concurrent writers: the schema, not only Python, keeps names unique, and every attempt is audited."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from openims import quotas
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


def _race(accounts: list[Account], attempts: int, make: Callable[[Account, int], object]) -> list[str]:
    """`attempts` calls of `make` at once, spread over the given server processes; each call's outcome."""

    def attempt(n: int) -> str:
        try:
            make(accounts[n % len(accounts)], n)
            return "ok"
        except TeaException as exc:
            return exc.code

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        return list(pool.map(attempt, range(attempts)))


def test_quotas_hold_for_concurrent_creates_on_two_servers(acct: Account) -> None:
    """Counting, then inserting, is one step per account: two server processes on one database (PostgreSQL
    runs their transactions in parallel) cannot both pass a quota check for the last free place."""
    with acct.server.sibling() as twin:
        both = [acct, Account(twin, acct.account_id, acct.alias, acct.key_id, acct.secret)]
        domain = acct.upn("x").split("@", 1)[1]
        for start in range(0, quotas.USERS - 6, 100):
            batch = range(start, min(start + 100, quotas.USERS - 6))
            acct.call(
                "BatchCreateUser",
                {
                    k: v
                    for n in batch
                    for k, v in (
                        (f"User.{n - start + 1}.UserPrincipalName", f"fill{n}@{domain}"),
                        (f"User.{n - start + 1}.DisplayName", "f"),
                    )
                },
            )
        users = _race(
            both,
            16,
            lambda a, n: a.ims().create_user(
                m.CreateUserRequest(user_principal_name=f"race{n}@{domain}", display_name="r")
            ),
        )
        assert users.count("ok") == 6 and set(users) == {"ok", "LimitExceeded.User"}
        assert acct.ims().get_account_summary().body.summary_map.users == quotas.USERS

        for n in range(quotas.GROUPS - 3):
            acct.ims().create_group(m.CreateGroupRequest(group_name=f"g{n}"))
        groups = _race(both, 10, lambda a, n: a.ims().create_group(m.CreateGroupRequest(group_name=f"race{n}")))
        assert groups.count("ok") == 3 and set(groups) == {"ok", "LimitExceeded.Group"}

        keys = _race(
            both,
            8,
            lambda a, n: a.ims().create_access_key(m.CreateAccessKeyRequest(user_principal_name=f"fill0@{domain}")),
        )
        live = len(
            acct.ims()
            .list_access_keys(m.ListAccessKeysRequest(user_principal_name=f"fill0@{domain}"))
            .body.access_keys.access_key
        )
        assert keys.count("ok") == quotas.ACCESS_KEYS_PER_USER == live and set(keys) == {
            "ok",
            "LimitExceeded.User.AccessKey",
        }

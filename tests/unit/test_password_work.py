"""Password hashing happens before the write transaction (the actions' prepare step), never inside it: an
argon2id hash or check takes tens of milliseconds, and inside the transaction it would hold SQLite's
single write lock, stalling every other call. The rules themselves still hold."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from openims import accounts, crypto, ids
from openims.accounts import NewAccount
from openims.actions.table import ACTIONS
from openims.api import dispatch
from openims.api.protocol import RpcRequest
from openims.credentials import passwords
from openims.errors import ApiError
from openims.params import parse_all
from openims.principal import RAM_USER, ROOT, Principal
from openims.runtime import Runtime
from openims.signin import ram_user

FIRST, SECOND, THIRD = "First-pass-111", "Second-pass-222", "Third-pass-333"


@pytest.fixture
def in_transaction(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Where each argon2 operation ran: True inside a write transaction."""
    where: list[bool] = []
    depth = [0]
    transaction = rt.db.transaction

    @contextmanager
    def tracked() -> Iterator[Any]:
        with transaction() as conn:
            depth[0] += 1
            try:
                yield conn
            finally:
                depth[0] -= 1

    def spy(real):  # type: ignore[no-untyped-def]
        def wrapper(*args: str) -> Any:
            where.append(depth[0] > 0)
            return real(*args)

        return wrapper

    monkeypatch.setattr(rt.db, "transaction", tracked)
    monkeypatch.setattr(passwords, "hash_password", spy(crypto.hash_password))
    monkeypatch.setattr(passwords, "verify_password", spy(crypto.verify_password))
    return where


def call(rt: Runtime, principal: Principal, action: str, params: dict[str, str]) -> dict[str, Any]:
    declared = ACTIONS.lookup("2019-08-15", action)
    assert declared is not None
    req = RpcRequest(
        "POST", "/", "", b"", {}, params, action, "2019-08-15", "127.0.0.1", "unit-test", "localhost", ids.request_id()
    )
    return dispatch.run(rt, declared, parse_all(declared.params, params), req, principal)


def refused(rt: Runtime, principal: Principal, action: str, params: dict[str, str]) -> str:
    with pytest.raises(ApiError) as info:
        call(rt, principal, action, params)
    return info.value.code


def test_hashing_runs_before_the_write_transaction(rt: Runtime, in_transaction: list[bool]) -> None:
    acct: NewAccount = accounts.create_account(rt, "argon-" + ids.request_id()[:6].lower())
    root = Principal(acct.account_id, ROOT, acct.account_id, "root", acct.access_key_id)
    upn = f"alice@{accounts.default_domain(acct.alias)}"
    user_id = call(rt, root, "CreateUser", {"UserPrincipalName": upn, "DisplayName": "a"})["User"]["UserId"]
    call(rt, root, "SetPasswordPolicy", {"PasswordReusePrevention": "2"})
    alice = Principal(acct.account_id, RAM_USER, user_id, upn, "key", user_id=user_id)

    call(rt, root, "CreateLoginProfile", {"UserPrincipalName": upn, "Password": FIRST})
    call(rt, root, "UpdateLoginProfile", {"UserPrincipalName": upn, "Password": SECOND})
    assert (
        refused(rt, root, "UpdateLoginProfile", {"UserPrincipalName": upn, "Password": FIRST})
        == "InvalidParameter.Password.Reused"
    )
    assert (
        refused(rt, alice, "ChangePassword", {"OldPassword": FIRST, "NewPassword": THIRD})
        == "InvalidParameter.OldPassword.Mismatch"
    )
    assert (
        refused(rt, alice, "ChangePassword", {"OldPassword": SECOND, "NewPassword": FIRST})
        == "InvalidParameter.NewPassword.Reused"
    )
    call(rt, alice, "ChangePassword", {"OldPassword": SECOND, "NewPassword": THIRD})

    # Create: hash; update: 1 history check + hash; reused: 2 checks; wrong old: 1; reused new: 1 + 2;
    # the change: 1 + 2 + hash. None of them inside a transaction.
    assert len(in_transaction) == 1 + 2 + 2 + 1 + 3 + 4 and not any(in_transaction)
    assert ram_user.authenticate_password(rt, acct.alias, upn, THIRD, None, "192.0.2.1", "test").success

"""Console sessions against access taken away between a sign-in's check and its session: the sign-in and
the session are two transactions, and an administrator's DeleteUser or login profile `Inactive` can commit
between them. No session may then outlive the removal, even once access is given back."""

from __future__ import annotations

from typing import Any

import pytest

from openims import accounts, ids
from openims.actions.table import ACTIONS
from openims.api import dispatch
from openims.api.protocol import RpcRequest
from openims.console import sessions
from openims.params import parse_all
from openims.principal import ROOT, Principal
from openims.runtime import Runtime
from openims.signin import ram_user

PASSWORD = "Racy-pass-12345"


def _caller(rt: Runtime) -> Any:
    acct = accounts.create_account(rt, "racy")

    def call(action: str, params: dict[str, str]) -> dict[str, Any]:
        found = ACTIONS.lookup("2019-08-15", action)
        assert found is not None
        req = RpcRequest(
            "POST", "/", "", b"", {}, params, action, "2019-08-15", "127.0.0.1", "t", "localhost", ids.request_id()
        )
        return dispatch.run(
            rt,
            found,
            parse_all(found.params, params),
            req,
            Principal(acct.account_id, ROOT, acct.account_id, "root", acct.access_key_id),
        )

    return acct, call


@pytest.mark.parametrize(
    "take,give",
    [
        ("DeleteUser", "RestoreUserFromRecycleBin"),
        ("UpdateLoginProfile:Inactive", "UpdateLoginProfile:Active"),
    ],
)
def test_access_taken_away_before_the_session_exists(rt: Runtime, take: str, give: str) -> None:
    acct, call = _caller(rt)
    upn = f"bob@{accounts.default_domain(acct.alias)}"
    user_id = call("CreateUser", {"UserPrincipalName": upn, "DisplayName": "bob"})["User"]["UserId"]
    call("CreateLoginProfile", {"UserPrincipalName": upn, "Password": PASSWORD})

    def act(what: str) -> None:
        name, _, status = what.partition(":")
        params = {"UserId": user_id} if name == "RestoreUserFromRecycleBin" else {"UserPrincipalName": upn}
        call(name, {**params, **({"Status": status} if status else {})})

    result = ram_user.authenticate_password(rt, acct.alias, upn, PASSWORD, None, "127.0.0.1", "ua")
    assert result.success
    act(take)  # between the sign-in's transaction and the session's
    with pytest.raises(sessions.AccessEnded), rt.db.transaction() as conn:
        sessions.create(
            conn,
            rt,
            account_id=acct.account_id,
            user_id=user_id,
            user_name=upn,
            stages=[],
            mfa_authenticated=False,
            lifetime_ms=3_600_000,
            source_ip="127.0.0.1",
            user_agent="ua",
        )
    act(give)
    # A step of a sign-in under way (change the password, say) whose session was ended meanwhile goes no further.
    with rt.db.transaction() as conn:
        token = sessions.create(
            conn,
            rt,
            account_id=acct.account_id,
            user_id=user_id,
            user_name=upn,
            stages=[sessions.CHANGE_PASSWORD],
            mfa_authenticated=False,
            lifetime_ms=3_600_000,
            source_ip="127.0.0.1",
            user_agent="ua",
        )
    step = sessions.load(rt, token)
    assert step is not None
    act(take)
    act(give)
    with pytest.raises(sessions.AccessEnded):
        sessions.advance(rt, step, 3_600_000, "127.0.0.1", "ua")

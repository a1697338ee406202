"""BatchCreateUser (OpenIMS-defined, called through the official SDK runtime): all or nothing, one event."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from tests.support import Account


def error_of(call) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    return info.value


def flat(users: list[dict[str, str]]) -> dict[str, str]:
    return {f"User.{i}.{k}": v for i, user in enumerate(users, 1) for k, v in user.items()}


def batch(acct: Account, users: list[dict[str, str]], **signer: Any) -> dict[str, Any]:
    return acct.call("BatchCreateUser", flat(users), **signer)


def live_users(acct: Account) -> list[str]:
    return sorted(u.user_principal_name for u in acct.ims().list_users(m.ListUsersRequest()).body.users.user)


def test_many_users_in_one_call_and_one_event(acct: Account) -> None:
    wanted = [
        {
            "UserPrincipalName": acct.upn("ann"),
            "DisplayName": "Ann",
            "Email": "ann@example.com",
            "MobilePhone": "86-18600008888",
            "Comments": "first",
        },
        {"UserPrincipalName": acct.upn("ben"), "DisplayName": "Ben"},
        {"UserPrincipalName": acct.upn("cat"), "DisplayName": "Cat", "Comments": "third"},
    ]
    body = batch(acct, wanted)
    made = body["Users"]["User"]
    assert [u["UserPrincipalName"] for u in made] == [w["UserPrincipalName"] for w in wanted]
    assert all(u["UserId"].isdigit() and u["CreateDate"] for u in made)
    assert (made[0]["Email"], made[0]["MobilePhone"], made[0]["Comments"], made[1]["Email"]) == (
        "ann@example.com",
        "86-18600008888",
        "first",
        "",
    )
    assert live_users(acct) == sorted(w["UserPrincipalName"] for w in wanted)
    got = acct.ims().get_user(m.GetUserRequest(user_principal_name=acct.upn("cat"))).body.user
    assert (got.user_id, got.display_name, got.comments) == (made[2]["UserId"], "Cat", "third")

    [event] = acct.events(EventName="BatchCreateUser")
    assert event["requestId"] == body["RequestId"] and event["eventRW"] == "Write" and "errorCode" not in event
    assert event["resourceType"] == "ACS::RAM::User"
    # ActionTrail's format: the names of one type separated by ",".
    assert event["resourceName"] == ",".join(w["UserPrincipalName"] for w in wanted)
    assert event["referencedResources"] == {"ACS::RAM::User": [w["UserPrincipalName"] for w in wanted]}
    assert [u["UserId"] for u in event["responseElements"]["Users"]["User"]] == [u["UserId"] for u in made]
    assert event["requestParameters"]["User.2.DisplayName"] == "Ben"
    assert acct.secret not in json.dumps(event)


@pytest.mark.parametrize(
    "bad, code, status",
    [
        ({"UserPrincipalName": "b@d name", "DisplayName": "x"}, "InvalidParameter.UserPrincipalName.InvalidChars", 400),
        (
            {"UserPrincipalName": "bob@elsewhere.example.com", "DisplayName": "x"},
            "InvalidParameter.UserPrincipalName.Domain",
            400,
        ),
        ({"UserPrincipalName": "{upn}", "DisplayName": "x" * 25}, "InvalidParameter.DisplayName.Length", 400),
        ({"UserPrincipalName": "{upn}"}, "MissingParameter", 400),
        (
            {"UserPrincipalName": "{upn}", "DisplayName": "x", "Email": "not-an-email"},
            "InvalidParameter.Email.InvalidChars",
            400,
        ),
        ({"UserPrincipalName": "{existing}", "DisplayName": "again"}, "EntityAlreadyExists.User", 409),
        ({"UserPrincipalName": "{first_upper}", "DisplayName": "twin"}, "EntityAlreadyExists.User", 409),
    ],
    ids=["chars", "domain", "display-name", "missing", "email", "existing", "duplicate-in-batch"],
)
def test_one_bad_user_means_none_is_created(acct: Account, bad: dict[str, str], code: str, status: int) -> None:
    existing = acct.upn("old")
    acct.ims().create_user(m.CreateUserRequest(user_principal_name=existing, display_name="Old"))
    first = acct.upn("first")
    names = {"upn": acct.upn("second"), "existing": existing, "first_upper": acct.upn("FIRST")}
    bad = {k: v.format(**names) for k, v in bad.items()}
    users = [
        {"UserPrincipalName": first, "DisplayName": "First"},
        bad,
        {"UserPrincipalName": acct.upn("third"), "DisplayName": "Third"},
    ]
    err = error_of(lambda: batch(acct, users))
    assert (err.code, err.statusCode) == (code, status)
    assert "User 2 of the batch" in err.message
    assert live_users(acct) == [existing]
    [event] = acct.events(EventName="BatchCreateUser")
    assert event["errorCode"] == code and event["requestId"] == err.data["RequestId"]


def test_request_shape_and_limits(acct: Account) -> None:
    too_many = [{"UserPrincipalName": acct.upn(f"u{i}"), "DisplayName": f"U{i}"} for i in range(101)]
    cases = [
        (lambda: acct.call("BatchCreateUser", {}), "MissingParameter", 400),
        (lambda: batch(acct, too_many), "InvalidParameter.User.Length", 400),
        (
            lambda: acct.call(
                "BatchCreateUser",
                {"User.1.UserPrincipalName": acct.upn("x"), "User.1.DisplayName": "X", "User.1.Tag": "t"},
            ),
            "InvalidParameter.User.Format",
            400,
        ),
        (
            lambda: acct.call("BatchCreateUser", {"User.one.UserPrincipalName": acct.upn("x")}),
            "InvalidParameter.User.Format",
            400,
        ),
    ]
    for call, code, status in cases:
        err = error_of(call)
        assert (err.code, err.statusCode) == (code, status), (code, err.code)
    assert live_users(acct) == []
    # Exactly the limit is fine.
    assert len(batch(acct, too_many[:100])["Users"]["User"]) == 100


def test_the_account_quota_holds_across_a_batch(acct: Account) -> None:
    for start in range(0, 1000, 100):
        batch(acct, [{"UserPrincipalName": acct.upn(f"q{i}"), "DisplayName": "Q"} for i in range(start, start + 100)])
    err = error_of(lambda: batch(acct, [{"UserPrincipalName": acct.upn("one-too-many"), "DisplayName": "Q"}]))
    assert err.code == "LimitExceeded.User" and err.statusCode == 409
    assert acct.ims().get_account_summary().body.summary_map.users == 1000


def test_ram_user_needs_permission(acct: Account) -> None:
    ims = acct.ims()
    upn = acct.upn("plain")
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="Plain"))
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    err = error_of(
        lambda: batch(
            acct,
            [{"UserPrincipalName": acct.upn("sneaky"), "DisplayName": "S"}],
            key_id=key.access_key_id,
            secret=key.access_key_secret,
        )
    )
    assert err.code == "NoPermission" and err.statusCode == 403
    assert live_users(acct) == [upn]

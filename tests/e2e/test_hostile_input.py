"""Hostile input: values no backend can store, replayed requests, and requests refused before they could be
authenticated. Each gets a clear error, never a 500, and is audited the same way on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from tests.signer import send, v2_params, v3_request
from tests.support import Account


def code_of(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    return str(body["Code"])


def test_a_nul_in_a_name_is_an_invalid_parameter_and_is_audited(acct: Account) -> None:
    ims = acct.ims()
    with pytest.raises(TeaException) as info:
        ims.get_user(m.GetUserRequest(user_principal_name=f"admin\x00@{acct.domain}"))
    assert (info.value.code, info.value.statusCode) == ("InvalidParameter.UserPrincipalName.InvalidChars", 400)
    # The SDK will not put a NUL into a header: the v2 form carries the action as a parameter.
    form = v2_params(acct.key_id, acct.secret, "Get\x00User", {"UserPrincipalName": "\x00"})
    response = httpx.post(acct.server.url + "/", data=form, timeout=30)
    assert (response.status_code, code_of(response)) == (404, "InvalidAction.NotFound")
    events = acct.events(ErrorCode="InvalidParameter.UserPrincipalName.InvalidChars")
    assert len(events) == 1
    # What no backend can store is kept visible, as U+FFFD, in the event and in its indexed columns.
    assert events[0]["resourceName"] == f"admin\ufffd@{acct.domain}"
    assert events[0]["requestParameters"]["UserPrincipalName"] == f"admin\ufffd@{acct.domain}"
    assert acct.events(ResourceName=f"admin\ufffd@{acct.domain}") == events
    unknown = acct.events(ErrorCode="InvalidAction.NotFound")
    assert [e["eventName"] for e in unknown] == ["Get\ufffdUser"]


def test_a_nul_in_a_v2_nonce_is_refused_and_audited(acct: Account) -> None:
    params = v2_params(acct.key_id, acct.secret, "GetDefaultDomain", {}, nonce="bad\x00nonce")
    response = httpx.post(acct.server.url + "/", data=params, timeout=30)
    assert (response.status_code, code_of(response)) == (400, "IncompleteSignature")
    assert len(acct.events(ErrorCode="IncompleteSignature")) == 1


def _replays(acct: Account) -> list[dict[str, Any]]:
    return acct.events(ErrorCode="SignatureNonceUsed")


def test_a_failed_request_sent_again_is_a_rejected_replay(acct: Account) -> None:
    """A copy of a request that failed gets SignatureNonceUsed, not its original answer, and is recorded as a
    rejected replay, not as another call of the key's owner."""
    url = acct.server.url
    cases = [
        ("GetUser", {"UserPrincipalName": f"nobody@{acct.domain}"}, 404, "EntityNotExist.User"),
        ("CreateUser", {"UserPrincipalName": "not a name", "DisplayName": "x"}, 400, "InvalidParameter"),
        ("NoSuchAction", {}, 404, "InvalidAction.NotFound"),
    ]
    for n, (action, params, status, code) in enumerate(cases):
        request = v3_request(url, acct.key_id, acct.secret, action, params, nonce=f"failed-{n}")
        first = send(request)
        assert first.status_code == status and code_of(first).startswith(code)
        again = send(request)
        assert (again.status_code, code_of(again)) == (400, "SignatureNonceUsed")
    owners = [e for e in acct.events(EventAccessKeyId=acct.key_id) if e["userIdentity"]["type"] != "unknown"]
    assert sorted(e["eventName"] for e in owners) == ["CreateUser", "GetUser", "NoSuchAction"]
    replays = _replays(acct)
    assert sorted(e["eventName"] for e in replays) == ["CreateUser", "GetUser", "NoSuchAction"]
    for event in replays:
        assert event["userIdentity"]["type"] == "unknown" and event["userIdentity"]["userName"] == ""
        assert event["userIdentity"]["accessKeyId"] == acct.key_id
        assert event["additionalEventData"]["rejectedReplay"] == "true"
    assert acct.events(User="root", ErrorCode="SignatureNonceUsed") == []


def test_racing_copies_of_one_request_succeed_once(acct: Account) -> None:
    upn = acct.upn("racer")
    request = v3_request(
        acct.server.url, acct.key_id, acct.secret, "CreateUser", {"UserPrincipalName": upn, "DisplayName": "r"}
    )
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: send(request), range(8)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [400] * 7, [a.text for a in answers]
    assert {code_of(a) for a in answers if a.status_code == 400} == {"SignatureNonceUsed"}
    created = [e for e in acct.events(EventName="CreateUser") if "errorCode" not in e]
    assert len(created) == 1
    assert len(_replays(acct)) == 7


def test_a_successful_write_sent_again_changes_nothing(acct: Account) -> None:
    upn = acct.upn("once")
    request = v3_request(
        acct.server.url, acct.key_id, acct.secret, "CreateUser", {"UserPrincipalName": upn, "DisplayName": "o"}
    )
    assert send(request).status_code == 200
    acct.ims().delete_user(m.DeleteUserRequest(user_principal_name=upn))
    again = send(request)
    assert (again.status_code, code_of(again)) == (400, "SignatureNonceUsed")
    with pytest.raises(TeaException):
        acct.ims().get_user(m.GetUserRequest(user_principal_name=upn))


def test_a_request_refused_before_authentication_is_audited_for_its_known_key(acct: Account) -> None:
    url = acct.server.url
    big = v3_request(url, acct.key_id, acct.secret, "GetDefaultDomain", {}, body=b"x" * (1024 * 1024 + 1))
    response = send(big)
    assert (response.status_code, code_of(response)) == (413, "RequestTooLarge")
    form = v2_params(acct.key_id, acct.secret, "GetDefaultDomain", {})
    query = "&".join(f"{k}={v}" for k, v in form.items() if k in ("AccessKeyId", "Action", "Version"))
    bad_utf8 = httpx.post(
        f"{url}/?{query}",
        content=b"UserPrincipalName=\xff\xfe",
        headers={"content-type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert (bad_utf8.status_code, code_of(bad_utf8)) == (400, "InvalidParameter")
    too_large = acct.events(ErrorCode="RequestTooLarge")
    assert len(too_large) == 1 and too_large[0]["userIdentity"]["accessKeyId"] == acct.key_id
    assert too_large[0]["requestId"] == response.json()["RequestId"]
    assert len(acct.events(ErrorCode="InvalidParameter", EventName="GetDefaultDomain")) == 1
    # A key that does not exist leaves nothing to audit it in, and no event anywhere.
    stranger = v3_request(url, "LTAInoSuchKey0000", "x" * 30, "GetDefaultDomain", {}, body=b"x" * (1024 * 1024 + 1))
    assert send(stranger).status_code == 413

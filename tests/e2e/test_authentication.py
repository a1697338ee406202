"""Every way a request can fail authentication gets Alibaba's code, and is audited when the key is known."""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import time
from collections.abc import Callable

import httpx
import pytest
from alibabacloud_ims20190815 import models as m
from alibabacloud_ram20150501 import models as rm
from Tea.exceptions import TeaException

from tests.signer import post_form, send, v2_params, v3_request
from tests.support import Account


def create_ram_user_with_key(acct: Account, name: str) -> tuple[str, str, str]:
    ims = acct.ims()
    upn = acct.upn(name)
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=name))
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    return upn, key.access_key_id, key.access_key_secret


def code_of(response) -> str:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) >= {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert response.headers["x-acs-request-id"] == body["RequestId"]
    return body["Code"]


def test_both_signatures_accepted_and_bad_secret_refused(acct: Account) -> None:
    for v2 in (False, True):
        assert acct.ims(v2=v2).get_default_domain().body.default_domain_name == acct.domain
        with pytest.raises(TeaException) as info:
            acct.ims(secret="x" * 30, v2=v2).get_default_domain()
        assert info.value.code == "SignatureDoesNotMatch" and info.value.statusCode == 400
    failures = acct.events(ErrorCode="SignatureDoesNotMatch")
    assert len(failures) == 2 and all(e["userIdentity"]["accessKeyId"] == acct.key_id for e in failures)
    assert all(e["eventName"] == "GetDefaultDomain" for e in failures)


def test_replayed_nonce_is_refused_and_audited(acct: Account) -> None:
    url = acct.server.url
    first = send(v3_request(url, acct.key_id, acct.secret, "GetDefaultDomain", {}, nonce="fixed-nonce-1"))
    assert first.status_code == 200
    replay = send(v3_request(url, acct.key_id, acct.secret, "GetDefaultDomain", {}, nonce="fixed-nonce-1"))
    assert replay.status_code == 400 and code_of(replay) == "SignatureNonceUsed"
    # v2 nonces are checked the same way
    params = v2_params(acct.key_id, acct.secret, "GetDefaultDomain", {}, nonce="fixed-nonce-2")
    assert post_form(url, params).status_code == 200
    again = post_form(url, params)
    assert again.status_code == 400 and code_of(again) == "SignatureNonceUsed"
    assert len(acct.events(ErrorCode="SignatureNonceUsed")) == 2


def test_nonce_survives_a_restart(acct: Account) -> None:
    request = v3_request(acct.server.url, acct.key_id, acct.secret, "GetDefaultDomain", {}, nonce="restart-nonce")
    assert send(request).status_code == 200
    acct.server.stop()
    acct.server.start()
    replay = send(request)
    assert replay.status_code == 400 and code_of(replay) == "SignatureNonceUsed"


def test_failed_call_spends_its_nonce(acct: Account) -> None:
    """A request that failed (user exists) must not succeed when replayed after the user is gone."""
    ims = acct.ims()
    upn = acct.upn("replayme")
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="r"))
    request = v3_request(
        acct.server.url,
        acct.key_id,
        acct.secret,
        "CreateUser",
        {"UserPrincipalName": upn, "DisplayName": "r"},
        nonce="failing-nonce",
    )
    assert code_of(send(request)) == "EntityAlreadyExists.User"
    ims.delete_user(m.DeleteUserRequest(user_principal_name=upn))
    assert code_of(send(request)) == "SignatureNonceUsed"


@pytest.mark.parametrize("offset", [-16 * 60, 16 * 60])
def test_stale_or_future_timestamp(acct: Account, offset: int) -> None:
    response = send(v3_request(acct.server.url, acct.key_id, acct.secret, "GetDefaultDomain", {}, time_offset_s=offset))
    assert response.status_code == 400 and code_of(response) == "InvalidTimeStamp.Expired"
    old = post_form(acct.server.url, v2_params(acct.key_id, acct.secret, "GetDefaultDomain", {}, time_offset_s=offset))
    assert code_of(old) == "InvalidTimeStamp.Expired"
    assert len(acct.events(ErrorCode="InvalidTimeStamp.Expired")) == 2


def test_body_must_match_its_hash(acct: Account) -> None:
    import httpx

    request = v3_request(acct.server.url, acct.key_id, acct.secret, "GetDefaultDomain", {})
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    tampered = httpx.Request("POST", request.url, headers=headers, content=b"UserPrincipalName=x")
    response = send(tampered)
    assert code_of(response) == "SignatureDoesNotMatch"


def test_incomplete_and_unknown_keys(acct: Account) -> None:
    url = acct.server.url
    unsigned = post_form(url, {"Action": "GetDefaultDomain", "Version": "2019-08-15"})
    assert unsigned.status_code == 400 and code_of(unsigned) == "IncompleteSignature"
    partial = v2_params(acct.key_id, acct.secret, "GetDefaultDomain", {})
    del partial["SignatureNonce"]
    assert code_of(post_form(url, partial)) == "IncompleteSignature"
    unknown = send(v3_request(url, "LTAI" + "x" * 20, "y" * 30, "GetDefaultDomain", {}))
    assert unknown.status_code == 404 and code_of(unknown) == "InvalidAccessKeyId.NotFound"
    bad_header = v3_request(url, acct.key_id, acct.secret, "GetDefaultDomain", {})
    bad_header.headers["authorization"] = "ACS3-HMAC-SHA256 Credential=" + acct.key_id
    assert code_of(send(bad_header)) == "IncompleteSignature"


def test_inactive_deleted_and_deleted_users_keys(acct: Account) -> None:
    ims = acct.ims()
    upn, key_id, secret = create_ram_user_with_key(acct, "keyholder")
    assert acct.ims(key_id, secret).get_user(m.GetUserRequest()).body.user.user_principal_name == upn
    ims.update_access_key(
        m.UpdateAccessKeyRequest(user_principal_name=upn, user_access_key_id=key_id, status="Inactive")
    )
    with pytest.raises(TeaException) as info:
        acct.ims(key_id, secret).get_user(m.GetUserRequest())
    assert info.value.code == "InvalidAccessKeyId.Inactive" and info.value.statusCode == 403
    ims.update_access_key(m.UpdateAccessKeyRequest(user_principal_name=upn, user_access_key_id=key_id, status="Active"))
    assert acct.ims(key_id, secret).get_user(m.GetUserRequest()).body.user.user_principal_name == upn
    ims.delete_user(m.DeleteUserRequest(user_principal_name=upn))
    with pytest.raises(TeaException) as info:
        acct.ims(key_id, secret).get_user(m.GetUserRequest())
    assert info.value.code == "InvalidAccessKeyId.NotFound"

    upn2, key2, secret2 = create_ram_user_with_key(acct, "keyholder2")
    ims.delete_access_key(m.DeleteAccessKeyRequest(user_principal_name=upn2, user_access_key_id=key2))
    with pytest.raises(TeaException) as info:
        acct.ims(key2, secret2).get_user(m.GetUserRequest())
    assert info.value.code == "InvalidAccessKeyId.NotFound"
    inactive = acct.events(ErrorCode="InvalidAccessKeyId.Inactive")
    assert len(inactive) == 1 and inactive[0]["userIdentity"]["userName"] == upn


def test_ram_user_is_denied_by_default_and_audited(acct: Account) -> None:
    upn, key_id, secret = create_ram_user_with_key(acct, "intern")
    mine = acct.ims(key_id, secret)
    assert mine.get_user(m.GetUserRequest()).body.user.user_principal_name == upn
    assert mine.get_user(m.GetUserRequest(user_principal_name=upn)).body.user.user_principal_name == upn
    # Managing one's own keys is off by default (Alibaba's security preference default), on when allowed.
    with pytest.raises(TeaException) as info:
        mine.create_access_key(m.CreateAccessKeyRequest())
    assert info.value.code == "NoPermission"
    acct.ims().set_security_preference(m.SetSecurityPreferenceRequest(allow_user_to_manage_access_keys=True))
    extra = mine.create_access_key(m.CreateAccessKeyRequest()).body.access_key
    listed = mine.list_access_keys(m.ListAccessKeysRequest()).body.access_keys.access_key
    assert {k.access_key_id for k in listed} == {key_id, extra.access_key_id}
    mine.delete_access_key(m.DeleteAccessKeyRequest(user_access_key_id=extra.access_key_id))
    for call in (
        lambda: mine.create_user(m.CreateUserRequest(user_principal_name=acct.upn("x"), display_name="x")),
        lambda: mine.list_users(m.ListUsersRequest()),
        lambda: mine.get_user(m.GetUserRequest(user_principal_name=acct.upn("someoneelse"))),
        lambda: mine.create_access_key(m.CreateAccessKeyRequest(user_principal_name=acct.upn("someoneelse"))),
    ):
        with pytest.raises(TeaException) as info:
            call()
        assert info.value.code == "NoPermission" and info.value.statusCode == 403
        assert info.value.data["AccessDeniedDetail"]["NoPermissionType"] == "ImplicitDeny"
    denied = acct.events(ErrorCode="NoPermission")
    assert sorted(e["eventName"] for e in denied) == [
        "CreateAccessKey",
        "CreateAccessKey",
        "CreateUser",
        "GetUser",
        "ListUsers",
    ]
    assert all(e["userIdentity"]["type"] == "ram-user" and e["userIdentity"]["userName"] == upn for e in denied)
    with pytest.raises(TeaException) as info:
        acct.trail(key_id, secret).lookup_events(
            __import__("alibabacloud_actiontrail20200706.models", fromlist=["x"]).LookupEventsRequest()
        )
    assert info.value.code == "NoPermission"


def test_accounts_are_isolated(acct: Account) -> None:
    other = acct.server.new_account()
    upn = acct.upn("mine")
    acct.ims().create_user(m.CreateUserRequest(user_principal_name=upn, display_name="m"))
    # the other account's root cannot see or touch it, nor use this account's domain
    with pytest.raises(TeaException) as info:
        other.ims().get_user(m.GetUserRequest(user_principal_name=upn))
    assert info.value.code == "EntityNotExist.User"
    with pytest.raises(TeaException) as info:
        other.ims().create_user(m.CreateUserRequest(user_principal_name=upn, display_name="m"))
    assert info.value.code == "InvalidParameter.UserPrincipalName.Domain"
    assert other.ims().list_users(m.ListUsersRequest()).body.users.user == []
    assert all(e["recipientAccountId"] == other.account_id for e in other.events())
    assert not [
        e
        for e in other.events()
        if e["requestParameters"].get("UserPrincipalName") == upn
        and e["eventName"] == "CreateUser"
        and "errorCode" not in e
    ]


def _all_at_once(requests: list[httpx.Request]) -> list[httpx.Response]:
    """Send every request on its own connection, all written before any answer is read: they reach the server
    together, as a busy client's do."""
    sockets = [socket.create_connection((r.url.host, r.url.port or 80), timeout=30) for r in requests]
    time.sleep(0.5)  # the server has accepted every connection
    for sock, request in zip(sockets, requests, strict=True):
        head = [f"{request.method} {request.url.raw_path.decode()} HTTP/1.1"]
        head += [f"{k}: {v}" for k, v in request.headers.items()]
        sock.sendall("\r\n".join([*head, "", ""]).encode() + request.content)
    responses = []
    for sock in sockets:
        with sock:
            answer = http.client.HTTPResponse(sock)
            answer.begin()
            responses.append(httpx.Response(answer.status, headers=answer.getheaders(), content=answer.read()))
    return responses


def test_reads_at_once_are_each_audited_and_a_copy_among_them_refused(acct: Account) -> None:
    """Reads that arrive together commit their events together (docs/operations.md): still every answered
    call has its event, and of copies of one request sent at the same moment all but one are refused."""
    url = acct.server.url
    copy = v3_request(url, acct.key_id, acct.secret, "GetDefaultDomain", {}, nonce="sent-together")
    requests = [copy] * 4 + [v3_request(url, acct.key_id, acct.secret, "GetDefaultDomain", {}) for _ in range(36)]
    responses = _all_at_once(requests)
    refused = [r for r in responses if r.status_code != 200]
    assert len(refused) == 3 and {code_of(r) for r in refused} == {"SignatureNonceUsed"}
    recorded = {e["requestId"]: e for e in acct.events(EventName="GetDefaultDomain")}
    for response in responses:
        event = recorded[response.json()["RequestId"]]
        assert event.get("errorCode") == (None if response.status_code == 200 else "SignatureNonceUsed")


def test_writes_at_once_each_keep_their_own_transaction(acct: Account) -> None:
    """Writes that arrive together may share a commit (docs/operations.md), but each succeeds or fails as it would
    alone: a copy of a request is refused as a replay, the second create of one name finds the first, and every
    answer has its event."""
    url = acct.server.url

    def create(upn: str, nonce: str | None = None) -> httpx.Request:
        params = {"UserPrincipalName": upn, "DisplayName": "together"}
        return v3_request(url, acct.key_id, acct.secret, "CreateUser", params, nonce=nonce)

    copied, twice, others = acct.upn("copied"), acct.upn("twice"), [acct.upn(f"many{i}") for i in range(24)]
    requests = [create(copied, nonce="written-together")] * 3 + [create(twice), create(twice)]
    responses = _all_at_once(requests + [create(upn) for upn in others])
    codes = [code_of(r) if r.status_code != 200 else "" for r in responses]
    assert sorted(codes[:3]) == ["", "SignatureNonceUsed", "SignatureNonceUsed"]
    assert sorted(codes[3:5]) == ["", "EntityAlreadyExists.User"]
    assert codes[5:] == [""] * len(others)
    listed = {u.user_principal_name for u in acct.ims().list_users(m.ListUsersRequest()).body.users.user}
    assert listed >= {copied, twice, *others}
    recorded = {e["requestId"]: e for e in acct.events(EventName="CreateUser")}
    for response, code in zip(responses, codes, strict=True):
        event = recorded[response.json()["RequestId"]]
        assert event.get("errorCode") == (code or None)
    created = [e for e in recorded.values() if "errorCode" not in e]
    assert sorted(e["requestParameters"]["UserPrincipalName"] for e in created) == sorted([copied, twice, *others])


def _key_writes_around(
    acct: Account, name: str, change: Callable[[str, str], httpx.Request], refused: str
) -> Callable[[], httpx.Request]:
    """Sixteen writes signed by a new RAM user's key, sent at once with `change(upn, key_id)` (a call by root) in
    their middle: each succeeds or is refused with `refused`, and on SQLite, where writes run one after another
    (those that arrive together sharing a commit), exactly those that ran before the change succeed. PostgreSQL
    runs them side by side, each reading the key in its own transaction. Returns a maker of more such writes."""
    upn, key_id, secret = create_ram_user_with_key(acct, name)
    acct.ram().attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_name="AliyunRAMFullAccess", policy_type="System", user_name=name)
    )
    numbers = itertools.count()

    def write() -> httpx.Request:
        params = {"UserPrincipalName": acct.upn(f"{name}{next(numbers)}"), "DisplayName": "by key"}
        return v3_request(acct.server.url, key_id, secret, "CreateUser", params)

    writes = [write() for _ in range(16)]
    responses = _all_at_once(writes[:8] + [change(upn, key_id)] + writes[8:])
    assert responses[8].status_code == 200
    by_key = responses[:8] + responses[9:]
    assert {code_of(r) for r in by_key if r.status_code != 200} <= {refused}
    if acct.server.backend == "sqlite":
        assert any(r.status_code != 200 for r in by_key)
        # Newest first: every write the key signed successfully ran before the change.
        order = [e["requestId"] for e in acct.events()]
        changed_at = order.index(responses[8].json()["RequestId"])
        for response in by_key:
            assert (order.index(response.json()["RequestId"]) > changed_at) == (response.status_code == 200)
    return write


def test_a_key_disabled_among_writes_at_once_signs_none_after_it(acct: Account) -> None:
    """A write is authenticated where it runs, after the writes before it: once a key is disabled, no write
    signed with it takes effect, even one that arrived with the disabling call."""

    def disable(upn: str, key_id: str) -> httpx.Request:
        params = {"UserAccessKeyId": key_id, "Status": "Inactive", "UserPrincipalName": upn}
        return v3_request(acct.server.url, acct.key_id, acct.secret, "UpdateAccessKey", params)

    _key_writes_around(acct, "writer", disable, "InvalidAccessKeyId.Inactive")


def test_a_network_policy_set_among_writes_at_once_holds_for_those_after_it(acct: Account) -> None:
    """A key's network policy set by a call that arrived with writes signed by that key: the writes after it are
    refused, and so is the key's next call (the policy cached with the version that set it, not before it)."""

    def restrict(upn: str, key_id: str) -> httpx.Request:
        elsewhere = json.dumps({"Version": "1", "Conditions": [{"SourceIp": ["192.0.2.0/24"]}]})
        params = {"UserPrincipalName": upn, "UserAccessKeyId": key_id, "AccessKeyPolicy": elsewhere}
        return v3_request(acct.server.url, acct.key_id, acct.secret, "SetAccessKeyPolicy", params)

    write = _key_writes_around(acct, "netwriter", restrict, "NoPermission")
    later = send(write())
    assert later.status_code == 403 and code_of(later) == "NoPermission"

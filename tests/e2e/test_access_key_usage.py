"""AccessKey last use (GetAccessKeyLastUsed, GetAccessKeysLastUsed) through the official SDKs."""

from __future__ import annotations

import json
import time

import pytest
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_ims20190815 import models as m
from sqlalchemy import select
from Tea.exceptions import TeaException

from openims import clock
from openims.credentials import key_usage
from openims.store.tables.keys import access_key_usage
from tests.support import Account, Server


def error_of(call) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    return info.value


def user_with_key(acct: Account, name: str) -> tuple[str, str, str]:
    ims = acct.ims()
    upn = acct.upn(name)
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=name))
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    return upn, key.access_key_id, key.access_key_secret


def last_used(acct: Account, upn: str | None, key_id: str) -> dict[str, str]:
    return acct.call("GetAccessKeyLastUsed", {"UserPrincipalName": upn, "UserAccessKeyId": key_id})["AccessKeyLastUsed"]


def test_last_use_is_reported_after_a_call(acct: Account) -> None:
    ims = acct.ims()
    upn, key_id, secret = user_with_key(acct, "alice")
    never = ims.get_access_key_last_used(
        m.GetAccessKeyLastUsedRequest(user_principal_name=upn, user_access_key_id=key_id)
    ).body
    assert (never.access_key_last_used.last_used_date, never.access_key_last_used.service_name) == ("", "")

    before = int(time.time()) - 1
    acct.ims(key_id, secret).get_user(m.GetUserRequest())
    after = int(time.time()) + 1
    got = ims.get_access_key_last_used(
        m.GetAccessKeyLastUsedRequest(user_principal_name=upn, user_access_key_id=key_id)
    ).body
    used_s = clock.parse_iso(got.access_key_last_used.last_used_date) // 1000
    assert before <= used_s <= after
    assert got.access_key_last_used.service_name == "Ims"
    assert last_used(acct, upn, key_id)["SourceIp"] == "127.0.0.1"

    event = acct.event_for(got.request_id)
    assert (event["eventName"], event["eventRW"], event["resourceType"], event["resourceName"]) == (
        "GetAccessKeyLastUsed",
        "Read",
        "ACS::RAM::AccessKey;ACS::RAM::User",
        f"{key_id};{upn}",
    )
    assert event["referencedResources"]["ACS::RAM::User"] == [upn] and "errorCode" not in event

    # Another service, with the legacy signature, is the newer use (denied, but authenticated).
    err = error_of(lambda: acct.trail(key_id, secret, v2=True).lookup_events(at.LookupEventsRequest(max_results="1")))
    assert err.code == "NoPermission"
    assert last_used(acct, upn, key_id)["ServiceName"] == "Actiontrail"


def test_refused_signature_is_not_a_use(acct: Account) -> None:
    upn, key_id, secret = user_with_key(acct, "bob")
    err = error_of(lambda: acct.ims(key_id, secret[::-1]).get_user(m.GetUserRequest()))
    assert err.code == "SignatureDoesNotMatch"
    assert last_used(acct, upn, key_id)["LastUsedDate"] == ""
    # A call that is authenticated but then denied is still a use of the key.
    err = error_of(lambda: acct.ims(key_id, secret).list_users(m.ListUsersRequest()))
    assert err.code == "NoPermission"
    assert last_used(acct, upn, key_id)["ServiceName"] == "Ims"


def test_own_keys_and_the_root_key(acct: Account) -> None:
    _upn, key_id, secret = user_with_key(acct, "carol")
    other, other_key, _ = user_with_key(acct, "dave")
    as_carol = acct.ims(key_id, secret)
    # RAM users see their own keys only where the account lets them manage their keys.
    for call in (
        lambda: as_carol.get_access_key_last_used(m.GetAccessKeyLastUsedRequest(user_access_key_id=key_id)),
        lambda: acct.call("GetAccessKeysLastUsed", key_id=key_id, secret=secret),
    ):
        err = error_of(call)
        assert err.code == "NoPermission" and err.statusCode == 403
    acct.ims().set_security_preference(m.SetSecurityPreferenceRequest(allow_user_to_manage_access_keys=True))
    mine = as_carol.get_access_key_last_used(m.GetAccessKeyLastUsedRequest(user_access_key_id=key_id)).body
    assert mine.access_key_last_used.service_name == "Ims"
    err = error_of(
        lambda: as_carol.get_access_key_last_used(
            m.GetAccessKeyLastUsedRequest(user_principal_name=other, user_access_key_id=other_key)
        )
    )
    assert err.code == "NoPermission" and err.statusCode == 403
    # Without a user name, another user's key is still not the caller's own.
    err = error_of(
        lambda: as_carol.get_access_key_last_used(m.GetAccessKeyLastUsedRequest(user_access_key_id=other_key))
    )
    assert err.code == "NoPermission" and err.statusCode == 403

    root = acct.ims().get_access_key_last_used(m.GetAccessKeyLastUsedRequest(user_access_key_id=acct.key_id)).body
    assert root.access_key_last_used.service_name == "Ims" and root.access_key_last_used.last_used_date


def test_all_keys_of_a_user(acct: Account) -> None:
    upn, k1, s1 = user_with_key(acct, "erin")
    k2 = acct.ims().create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key.access_key_id
    acct.ims(k1, s1).get_user(m.GetUserRequest())
    body = acct.call("GetAccessKeysLastUsed", {"UserPrincipalName": upn})
    listed = body["AccessKeysLastUsed"]["AccessKeyLastUsed"]
    assert [item["AccessKeyId"] for item in listed] == [k1, k2]
    assert listed[0]["ServiceName"] == "Ims" and listed[0]["SourceIp"] == "127.0.0.1" and listed[0]["LastUsedDate"]
    assert listed[1] == {"AccessKeyId": k2, "LastUsedDate": "", "ServiceName": "", "SourceIp": ""}
    event = acct.event_for(body["RequestId"])
    assert (event["eventName"], event["eventRW"], event["resourceType"], event["resourceName"]) == (
        "GetAccessKeysLastUsed",
        "Read",
        "ACS::RAM::User",
        upn,
    )
    # A RAM user may read its own (where allowed); the root account without a user gets its own keys.
    acct.ims().set_security_preference(m.SetSecurityPreferenceRequest(allow_user_to_manage_access_keys=True))
    assert [
        i["AccessKeyId"]
        for i in acct.call("GetAccessKeysLastUsed", key_id=k1, secret=s1)["AccessKeysLastUsed"]["AccessKeyLastUsed"]
    ] == [k1, k2]
    root = acct.call("GetAccessKeysLastUsed")["AccessKeysLastUsed"]["AccessKeyLastUsed"]
    assert [i["AccessKeyId"] for i in root] == [acct.key_id] and root[0]["ServiceName"] == "Ims"


def test_invalid_requests(acct: Account) -> None:
    ims = acct.ims()
    upn, key_id, _ = user_with_key(acct, "frank")
    cases = [
        (
            lambda: ims.get_access_key_last_used(m.GetAccessKeyLastUsedRequest(user_principal_name=upn)),
            "MissingParameter",
            400,
        ),
        (
            lambda: ims.get_access_key_last_used(
                m.GetAccessKeyLastUsedRequest(user_principal_name=upn, user_access_key_id="LTAInope")
            ),
            "EntityNotExist.User.AccessKey",
            404,
        ),
        (
            lambda: ims.get_access_key_last_used(
                m.GetAccessKeyLastUsedRequest(user_principal_name=acct.upn("nobody"), user_access_key_id=key_id)
            ),
            "EntityNotExist.User",
            404,
        ),
        (
            lambda: acct.call("GetAccessKeysLastUsed", {"UserPrincipalName": acct.upn("nobody")}),
            "EntityNotExist.User",
            404,
        ),
        (
            lambda: acct.call("GetAccessKeysLastUsed", {"UserPrincipalName": "bad name"}),
            "InvalidParameter.UserPrincipalName.InvalidChars",
            400,
        ),
    ]
    for call, code, status in cases:
        err = error_of(call)
        assert (err.code, err.statusCode) == (code, status), (code, err.code)
    # A deleted key has no last use to report.
    ims.delete_access_key(m.DeleteAccessKeyRequest(user_principal_name=upn, user_access_key_id=key_id))
    err = error_of(
        lambda: ims.get_access_key_last_used(
            m.GetAccessKeyLastUsedRequest(user_principal_name=upn, user_access_key_id=key_id)
        )
    )
    assert err.code == "EntityNotExist.User.AccessKey"


def test_uses_reach_the_database_within_the_flush_window(acct: Account, server: Server) -> None:
    upn, key_id, secret = user_with_key(acct, "gina")
    acct.ims(key_id, secret).get_user(m.GetUserRequest())
    deadline = time.monotonic() + key_usage.FLUSH_SECONDS * 4
    row = None
    while row is None and time.monotonic() < deadline:
        with server.runtime.db.read() as conn:
            row = conn.execute(select(access_key_usage).where(access_key_usage.c.access_key_id == key_id)).first()
        if row is None:
            time.sleep(0.5)
    assert row is not None, "the use was not flushed to the database"
    assert (row.service_name, row.source_ip) == ("Ims", "127.0.0.1")
    assert clock.iso(row.last_used_ms) == last_used(acct, upn, key_id)["LastUsedDate"]


def test_events_hold_no_secrets(acct: Account) -> None:
    upn, key_id, secret = user_with_key(acct, "hank")
    acct.ims(key_id, secret).get_user(m.GetUserRequest())
    last_used(acct, upn, key_id)
    acct.call("GetAccessKeysLastUsed", {"UserPrincipalName": upn})
    dump = json.dumps(acct.events())
    assert secret not in dump and acct.secret not in dump

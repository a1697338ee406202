"""AccessKey network access policies through the official IMS SDK: stored, validated, enforced and audited."""

from __future__ import annotations

import json

import pytest
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from openims.api import signing
from openims.api.protocol import RpcRequest
from openims.credentials import network_policy
from tests.support import Account, Server


def error_of(call) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    return info.value


def policy(*ips: str) -> str:
    return json.dumps({"Version": "1", "Conditions": [{"SourceIp": list(ips), "Description": "test"}]})


def user_with_key(acct: Account, name: str) -> tuple[str, str, str]:
    ims = acct.ims()
    upn = acct.upn(name)
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=name))
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    return upn, key.access_key_id, key.access_key_secret


def set_policy(acct: Account, upn: str | None, key_id: str, document: str):  # type: ignore[no-untyped-def]
    return (
        acct.ims()
        .set_access_key_policy(
            m.SetAccessKeyPolicyRequest(user_principal_name=upn, user_access_key_id=key_id, access_key_policy=document)
        )
        .body
    )


def request_from(ip: str) -> RpcRequest:
    return RpcRequest(
        method="POST",
        path="/",
        raw_query="",
        body=b"",
        headers={},
        params={},
        action="GetUser",
        version="2019-08-15",
        source_ip=ip,
        user_agent="test",
        host="h",
        request_id="R",
    )


def test_a_source_outside_the_policy_is_refused_and_audited(acct: Account) -> None:
    upn, key_id, secret = user_with_key(acct, "alice")
    as_alice = acct.ims(key_id, secret)
    assert as_alice.get_user(m.GetUserRequest()).body.user.user_principal_name == upn

    body = set_policy(acct, upn, key_id, policy("203.0.113.0/24", "2001:db8::/32"))
    assert body.access_key_id == key_id
    assert json.loads(body.access_key_policy) == {
        "Version": "1",
        "Conditions": [{"SourceIp": ["203.0.113.0/24", "2001:db8::/32"], "Description": "test"}],
    }
    got = (
        acct.ims()
        .get_access_key_policy(m.GetAccessKeyPolicyRequest(user_principal_name=upn, user_access_key_id=key_id))
        .body
    )
    assert got.access_key_policy == body.access_key_policy and got.access_key_id == key_id

    for v2 in (False, True):
        err = error_of(lambda: acct.ims(key_id, secret, v2=v2).get_user(m.GetUserRequest()))
        assert err.code == "NoPermission" and err.statusCode == 403
        assert "network access policy" in err.message and "127.0.0.1" in err.message
    [denied, *_] = acct.events(EventName="GetUser", EventAccessKeyId=key_id)
    assert denied["errorCode"] == "NoPermission" and denied["sourceIpAddress"] == "127.0.0.1"
    assert denied["userIdentity"]["accessKeyId"] == key_id and denied["userIdentity"]["userName"] == upn
    assert secret not in json.dumps(denied)
    # A refused request is not a use of the key: the last use stays the GetUser before the policy.
    err = error_of(lambda: acct.trail(key_id, secret).lookup_events(at.LookupEventsRequest(max_results="1")))
    assert err.code == "NoPermission" and "network access policy" in err.message
    used = (
        acct.ims()
        .get_access_key_last_used(m.GetAccessKeyLastUsedRequest(user_principal_name=upn, user_access_key_id=key_id))
        .body
    )
    assert used.access_key_last_used.service_name == "Ims"

    set_policy(acct, upn, key_id, policy("127.0.0.0/8"))
    assert as_alice.get_user(m.GetUserRequest()).body.user.user_principal_name == upn

    event = acct.event_for(body.request_id)
    assert (event["eventName"], event["eventRW"], event["resourceType"], event["resourceName"]) == (
        "SetAccessKeyPolicy",
        "Write",
        "ACS::RAM::AccessKey;ACS::RAM::User",
        f"{key_id};{upn}",
    )
    assert json.loads(event["responseElements"]["AccessKeyPolicy"])["Conditions"][0]["SourceIp"][0] == "203.0.113.0/24"
    event = acct.event_for(got.request_id)
    assert (event["eventName"], event["eventRW"], event["resourceName"]) == (
        "GetAccessKeyPolicy",
        "Read",
        f"{key_id};{upn}",
    )


def test_the_unrestricted_policy_is_the_default(acct: Account) -> None:
    upn, key_id, secret = user_with_key(acct, "bob")
    fresh = (
        acct.ims()
        .get_access_key_policy(m.GetAccessKeyPolicyRequest(user_principal_name=upn, user_access_key_id=key_id))
        .body
    )
    assert json.loads(fresh.access_key_policy) == {"Version": "1", "Conditions": [{"SourceIp": ["0.0.0.0/0", "::/0"]}]}
    assert json.loads(
        acct.ims().get_access_key_policy_for_account(m.GetAccessKeyPolicyForAccountRequest()).body.access_key_policy
    ) == json.loads(fresh.access_key_policy)
    set_policy(acct, upn, key_id, policy("198.51.100.7"))
    assert error_of(lambda: acct.ims(key_id, secret).get_user(m.GetUserRequest())).code == "NoPermission"
    # Setting the unrestricted policy lifts the restriction.
    body = set_policy(acct, upn, key_id, policy("0.0.0.0/0", "::/0"))
    assert body.access_key_policy == fresh.access_key_policy
    acct.ims(key_id, secret).get_user(m.GetUserRequest())
    summary = acct.ims().get_account_summary().body.summary_map
    assert (summary.conditions_per_akpolicy_quota, summary.ipitems_per_akpolicy_quota) == (
        network_policy.MAX_CONDITIONS,
        network_policy.MAX_IP_ITEMS,
    )


def test_account_level_policy(acct: Account, server: Server) -> None:
    ims = acct.ims()
    upn, key_id, secret = user_with_key(acct, "carol")
    # It would lock out the very key setting it: refused, nothing changes.
    err = error_of(
        lambda: ims.set_access_key_policy_for_account(
            m.SetAccessKeyPolicyForAccountRequest(access_key_policy=policy("10.0.0.0/8"))
        )
    )
    assert err.code == "InvalidParameter.AccessKeyPolicy.DeniesCaller" and err.statusCode == 400
    assert (
        "0.0.0.0/0"
        in ims.get_access_key_policy_for_account(m.GetAccessKeyPolicyForAccountRequest()).body.access_key_policy
    )

    body = ims.set_access_key_policy_for_account(
        m.SetAccessKeyPolicyForAccountRequest(access_key_policy=policy("127.0.0.1", "10.0.0.0/8"))
    ).body
    assert json.loads(body.access_key_policy)["Conditions"][0]["SourceIp"] == ["127.0.0.1", "10.0.0.0/8"]
    assert (
        ims.get_access_key_policy_for_account(m.GetAccessKeyPolicyForAccountRequest()).body.access_key_policy
        == body.access_key_policy
    )
    event = acct.event_for(body.request_id)
    assert (event["eventName"], event["eventRW"], event["resourceType"]) == (
        "SetAccessKeyPolicyForAccount",
        "Write",
        "",
    )
    acct.ims(key_id, secret).get_user(m.GetUserRequest())

    # Every key of the account is held to it, on top of its own policy (checked in-process: tests can only
    # call from 127.0.0.1).
    for kid in (acct.key_id, key_id):
        record = signing.load_key(server.runtime, kid)
        network_policy.check_source(server.runtime, record, request_from("10.1.2.3"))
        with pytest.raises(signing.AuthError) as info:
            network_policy.check_source(server.runtime, record, request_from("192.0.2.1"))
        assert info.value.code == "NoPermission" and "account's" in info.value.message
    set_policy(acct, upn, key_id, policy("127.0.0.1"))
    # Allowed by the account, not by the key's own policy: this process, which cached the key's policies
    # above, sees the server process's change from the very next call.
    record = signing.load_key(server.runtime, key_id)
    with pytest.raises(signing.AuthError) as info:
        network_policy.check_source(server.runtime, record, request_from("10.9.9.9"))
    assert "AccessKey's" in info.value.message


def test_invalid_policies_are_refused(acct: Account) -> None:
    upn, key_id, _ = user_with_key(acct, "dave")
    too_many_conditions = json.dumps(
        {
            "Version": "1",
            "Conditions": [{"SourceIp": [f"10.0.{i}.0/24"]} for i in range(network_policy.MAX_CONDITIONS + 1)],
        }
    )
    too_many_ips = policy(*[f"10.{i // 250}.{i % 250}.1" for i in range(network_policy.MAX_IP_ITEMS + 1)])
    cases = [
        ("not json", "InvalidParameter.AccessKeyPolicy.Format", 400),
        ("[]", "InvalidParameter.AccessKeyPolicy.Format", 400),
        (
            json.dumps({"Version": "2", "Conditions": [{"SourceIp": ["10.0.0.0/8"]}]}),
            "InvalidParameter.AccessKeyPolicy.Format",
            400,
        ),
        (json.dumps({"Version": "1", "Conditions": []}), "InvalidParameter.AccessKeyPolicy.Format", 400),
        (
            json.dumps({"Version": "1", "Conditions": [{"SourceIp": []}]}),
            "InvalidParameter.AccessKeyPolicy.Format",
            400,
        ),
        (
            json.dumps({"Version": "1", "Conditions": [{"SourceIp": ["10.0.0.0/8"], "Vpc": "x"}]}),
            "InvalidParameter.AccessKeyPolicy.Format",
            400,
        ),
        (policy("10.0.0.300"), "InvalidParameter.AccessKeyPolicy.Format", 400),
        (policy("10.0.0.0/33"), "InvalidParameter.AccessKeyPolicy.Format", 400),
        (
            json.dumps({"Version": "1", "Conditions": [{"SourceIp": ["10.0.0.0/8"], "Description": "x" * 129}]}),
            "InvalidParameter.AccessKeyPolicy.Format",
            400,
        ),
        (too_many_conditions, "LimitExceeded.AccessKeyPolicy.Conditions", 409),
        (too_many_ips, "LimitExceeded.AccessKeyPolicy.IpItems", 409),
    ]
    for document, code, status in cases:
        err = error_of(lambda: set_policy(acct, upn, key_id, document))
        assert (err.code, err.statusCode) == (code, status), (document[:40], err.code)
    ims = acct.ims()
    more = [
        (
            lambda: ims.set_access_key_policy(
                m.SetAccessKeyPolicyRequest(user_principal_name=upn, user_access_key_id=key_id)
            ),
            "MissingParameter",
            400,
        ),
        (
            lambda: ims.set_access_key_policy(
                m.SetAccessKeyPolicyRequest(user_principal_name=upn, access_key_policy=policy("10.0.0.1"))
            ),
            "MissingParameter",
            400,
        ),
        (lambda: set_policy(acct, upn, "LTAInope", policy("10.0.0.1")), "EntityNotExist.User.AccessKey", 404),
        (lambda: set_policy(acct, acct.upn("nobody"), key_id, policy("10.0.0.1")), "EntityNotExist.User", 404),
        (
            lambda: ims.get_access_key_policy(m.GetAccessKeyPolicyRequest(user_principal_name=upn)),
            "MissingParameter",
            400,
        ),
        (
            lambda: ims.get_access_key_policy(
                m.GetAccessKeyPolicyRequest(user_principal_name=upn, user_access_key_id="LTAInope")
            ),
            "EntityNotExist.User.AccessKey",
            404,
        ),
        (
            lambda: ims.set_access_key_policy_for_account(m.SetAccessKeyPolicyForAccountRequest()),
            "MissingParameter",
            400,
        ),
        (
            lambda: ims.set_access_key_policy_for_account(m.SetAccessKeyPolicyForAccountRequest(access_key_policy="{")),
            "InvalidParameter.AccessKeyPolicy.Format",
            400,
        ),
        # The root key may not lock itself out either.
        (
            lambda: set_policy(acct, None, acct.key_id, policy("10.0.0.0/8")),
            "InvalidParameter.AccessKeyPolicy.DeniesCaller",
            400,
        ),
    ]
    for call, code, status in more:
        err = error_of(call)
        assert (err.code, err.statusCode) == (code, status), (code, err.code)
    # Nothing was stored by any of these.
    assert (
        "0.0.0.0/0"
        in ims.get_access_key_policy(
            m.GetAccessKeyPolicyRequest(user_principal_name=upn, user_access_key_id=key_id)
        ).body.access_key_policy
    )
    failed = [e for e in acct.events() if e.get("errorCode")]
    assert len(failed) == len(cases) + len(more)


def test_ram_users_read_but_do_not_set_their_key_policy(acct: Account) -> None:
    _upn, key_id, secret = user_with_key(acct, "erin")
    as_erin = acct.ims(key_id, secret)
    read = lambda: as_erin.get_access_key_policy(m.GetAccessKeyPolicyRequest(user_access_key_id=key_id))
    assert error_of(read).code == "NoPermission"
    acct.ims().set_security_preference(m.SetSecurityPreferenceRequest(allow_user_to_manage_access_keys=True))
    assert "0.0.0.0/0" in read().body.access_key_policy
    err = error_of(
        lambda: as_erin.set_access_key_policy(
            m.SetAccessKeyPolicyRequest(user_access_key_id=key_id, access_key_policy=policy("0.0.0.0/0", "::/0"))
        )
    )
    assert err.code == "NoPermission" and err.statusCode == 403
    err = error_of(
        lambda: as_erin.set_access_key_policy_for_account(
            m.SetAccessKeyPolicyForAccountRequest(access_key_policy=policy("127.0.0.1"))
        )
    )
    assert err.code == "NoPermission"


def test_the_policy_survives_the_recycle_bin(acct: Account) -> None:
    upn, key_id, secret = user_with_key(acct, "frank")
    user_id = acct.ims().get_user(m.GetUserRequest(user_principal_name=upn)).body.user.user_id
    set_policy(acct, upn, key_id, policy("192.0.2.0/24"))
    acct.ims().delete_access_key(m.DeleteAccessKeyRequest(user_principal_name=upn, user_access_key_id=key_id))
    acct.ims().restore_access_key_from_recycle_bin(
        m.RestoreAccessKeyFromRecycleBinRequest(user_id=user_id, user_access_key_id=key_id)
    )
    assert error_of(lambda: acct.ims(key_id, secret).get_user(m.GetUserRequest())).code == "NoPermission"

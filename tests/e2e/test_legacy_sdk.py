"""The older signature-v2 client, aliyun-python-sdk-core's CommonRequest, works unchanged: IMS, RAM and
ActionTrail calls by GET and POST, and a signature error shows the server's string to sign where the SDK
looks for it (secret parameters masked; the event keeps neither)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest

from tests.support import Account

VERSIONS = {"ims": "2019-08-15", "ram": "2015-05-01", "trail": "2020-07-06"}


def legacy_call(
    acct: Account,
    api: str,
    action: str,
    params: dict[str, str] | None = None,
    method: str = "POST",
    secret: str | None = None,
) -> dict[str, Any]:
    client = AcsClient(acct.key_id, secret or acct.secret, "cn-hangzhou", auto_retry=False)
    request = CommonRequest(domain=acct.server.endpoint, version=VERSIONS[api], action_name=action)
    request.set_protocol_type("http")
    request.set_method(method)
    for key, value in (params or {}).items():
        request.add_query_param(key, value)
    return json.loads(client.do_action_with_exception(request))


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_common_request_reaches_every_api(acct: Account, method: str) -> None:
    upn = acct.upn(f"legacy-{method.lower()}")
    created = legacy_call(acct, "ims", "CreateUser", {"UserPrincipalName": upn, "DisplayName": "Ünïcode & co"}, method)
    assert created["User"]["UserPrincipalName"] == upn
    assert (
        legacy_call(acct, "ims", "GetUser", {"UserPrincipalName": upn}, method)["User"]["DisplayName"] == "Ünïcode & co"
    )
    assert any(
        p["PolicyName"] == "AdministratorAccess"
        for p in legacy_call(acct, "ram", "ListPolicies", {"PolicyType": "System"}, method)["Policies"]["Policy"]
    )
    events = legacy_call(
        acct,
        "trail",
        "LookupEvents",
        {"LookupAttribute.1.Key": "EventName", "LookupAttribute.1.Value": "CreateUser"},
        method,
    )["Events"]
    assert events[0]["requestId"] == created["RequestId"] and events[0]["userAgent"].startswith("AlibabaCloud")


def test_a_wrong_secret_is_reported_as_such_and_secrets_stay_out_of_errors(acct: Account) -> None:
    with pytest.raises(ServerException) as info:
        legacy_call(acct, "ims", "GetUser", {"UserPrincipalName": acct.upn("nobody")}, secret="not-the-secret")
    # The SDK reads the server's string to sign after the first ':' of the message (product request classes
    # compare it with their own, to report InvalidAccessKeySecret); without one it crashed with IndexError.
    assert info.value.get_error_code() == "SignatureDoesNotMatch" and info.value.get_http_status() == 400
    shown = info.value.get_error_msg().split(":")[1]
    assert shown.startswith("POST&%2F&") and "Action%3DGetUser" in shown

    upn = acct.upn("pw-holder")
    legacy_call(acct, "ims", "CreateUser", {"UserPrincipalName": upn, "DisplayName": "p"})
    password = "Legacy-Secret-Pass-77"
    with pytest.raises(ServerException) as info:
        legacy_call(
            acct, "ims", "CreateLoginProfile", {"UserPrincipalName": upn, "Password": password}, secret="not-the-secret"
        )
    assert info.value.get_error_code() == "SignatureDoesNotMatch" and password not in info.value.get_error_msg()
    assert "Password%3D" + "%252A" * 6 in info.value.get_error_msg()  # "******", encoded as the string to sign is
    [event] = [e for e in acct.events(EventName="CreateLoginProfile") if e.get("errorCode") == "SignatureDoesNotMatch"]
    assert password not in json.dumps(event) and "string to sign" not in event["errorMessage"]

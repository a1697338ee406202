"""Where and how a key is used, through the official ActionTrail SDK: GetAccessKeyLastUsedInfo, ...Products,
...Ips, ...Events and ...Resources, for a key used from two addresses (through a server that trusts this host
as its proxy, so X-Forwarded-For sets the source address) against two services."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_ims20190815 import models as im
from alibabacloud_ram20150501 import models as rm
from Tea.exceptions import TeaException

from openims import clock
from tests.support import Account, Server

IP_A, IP_B = "198.51.100.7", "203.0.113.20"


@pytest.fixture
def proxied(server: Server, acct: Account) -> Iterator[Account]:
    """The same account through a second server on the same database that trusts this host as its proxy."""
    with server.sibling(OPENIMS_TRUSTED_PROXIES="127.0.0.1") as other:
        yield Account(other, acct.account_id, acct.alias, acct.key_id, acct.secret)


def _user_with_key(acct: Account, name: str) -> tuple[str, str, str]:
    upn = acct.upn(name)
    acct.ims().create_user(im.CreateUserRequest(user_principal_name=upn, display_name=name))
    key = acct.ims().create_access_key(im.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    for policy in ("AliyunRAMReadOnlyAccess", "AliyunActionTrailFullAccess"):
        acct.ram().attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name=policy, policy_type="System", user_name=name)
        )
    return upn, key.access_key_id, key.access_key_secret


def test_a_keys_use_from_two_addresses_against_two_services(acct: Account, proxied: Account) -> None:
    upn, key_id, secret = _user_with_key(acct, "wanderer")
    other_upn, _, _ = _user_with_key(acct, "bystander")
    # Before any use: known key, nothing used.
    fresh = acct.trail().get_access_key_last_used_info(at.GetAccessKeyLastUsedInfoRequest(access_key=key_id)).body
    assert (fresh.access_key_id, fresh.service_name, fresh.used_timestamp) == (key_id, "", None)
    assert (fresh.user_name, fresh.account_type, fresh.account_id) == ("wanderer", "ram-user", acct.account_id)

    # IMS from A (twice, two actions) and from B; ActionTrail from B.
    proxied.call(
        "GetUser", {"UserPrincipalName": other_upn}, key_id=key_id, secret=secret, headers={"X-Forwarded-For": IP_A}
    )
    proxied.call("ListUsers", key_id=key_id, secret=secret, headers={"X-Forwarded-For": IP_A})
    proxied.call("GetUser", {"UserPrincipalName": upn}, key_id=key_id, secret=secret, headers={"X-Forwarded-For": IP_B})
    last = proxied.call(
        "DescribeTrails", version="2020-07-06", key_id=key_id, secret=secret, headers={"X-Forwarded-For": IP_B}
    )
    trail = acct.trail()

    info = trail.get_access_key_last_used_info(at.GetAccessKeyLastUsedInfoRequest(access_key=key_id)).body
    assert (info.service_name, info.service_name_en, info.source) == ("Actiontrail", "ActionTrail", "ManagementEvent")
    detail = json.loads(info.detail)
    assert (detail["requestId"], detail["eventName"], detail["sourceIpAddress"]) == (
        last["RequestId"],
        "DescribeTrails",
        IP_B,
    )
    assert clock.iso(info.used_timestamp) == detail["eventTime"]
    assert info.owner_id and (info.user_name, info.account_type) == ("wanderer", "ram-user")

    products = trail.get_access_key_last_used_products(at.GetAccessKeyLastUsedProductsRequest(access_key=key_id))
    assert [p.service_name for p in products.body.products] == ["Actiontrail", "Ims"]
    assert products.body.products[0].used_timestamp == info.used_timestamp
    assert json.loads(products.body.products[1].detail)["eventName"] == "GetUser"

    ips = trail.get_access_key_last_used_ips(at.GetAccessKeyLastUsedIpsRequest(access_key=key_id, service_name="Ims"))
    assert [i.ip for i in ips.body.ips] == [IP_B, IP_A]  # most recent first
    assert json.loads(ips.body.ips[1].detail)["eventName"] == "ListUsers"  # A's newest IMS call
    at_ips = trail.get_access_key_last_used_ips(
        at.GetAccessKeyLastUsedIpsRequest(access_key=key_id, service_name="Actiontrail")
    )
    assert [i.ip for i in at_ips.body.ips] == [IP_B]

    names = trail.get_access_key_last_used_events(
        at.GetAccessKeyLastUsedEventsRequest(access_key=key_id, service_name="Ims")
    ).body
    assert [e.event_name for e in names.events] == ["GetUser", "ListUsers"]
    assert names.next_token is None

    # GetUser touched two users; ListUsers names none.
    resources = trail.get_access_key_last_used_resources(
        at.GetAccessKeyLastUsedResourcesRequest(access_key=key_id, service_name="Ims")
    ).body
    assert [(r.resource_type, r.resource_name) for r in resources.resources] == [
        ("ACS::RAM::User", upn),
        ("ACS::RAM::User", other_upn),
    ]

    # Pages of one, with the token bound to its list.
    first = trail.get_access_key_last_used_ips(
        at.GetAccessKeyLastUsedIpsRequest(access_key=key_id, service_name="Ims", page_size="1")
    ).body
    assert [i.ip for i in first.ips] == [IP_B] and first.next_token
    second = trail.get_access_key_last_used_ips(
        at.GetAccessKeyLastUsedIpsRequest(
            access_key=key_id, service_name="Ims", page_size="1", next_token=first.next_token
        )
    ).body
    assert [i.ip for i in second.ips] == [IP_A] and second.next_token is None
    with pytest.raises(TeaException) as bad:
        trail.get_access_key_last_used_events(
            at.GetAccessKeyLastUsedEventsRequest(access_key=key_id, service_name="Ims", next_token=first.next_token)
        )
    assert bad.value.code == "InvalidParameter.NextToken"


def test_only_the_accounts_own_keys_and_only_with_actiontrail_permission(acct: Account, server: Server) -> None:
    upn, key_id, secret = _user_with_key(acct, "reader")
    acct.ims().get_user(im.GetUserRequest(user_principal_name=upn))
    # Another account's key is no key of this account.
    stranger = server.new_account()
    with pytest.raises(TeaException) as missing:
        stranger.trail().get_access_key_last_used_info(at.GetAccessKeyLastUsedInfoRequest(access_key=acct.key_id))
    assert (missing.value.code, missing.value.status_code) == ("EntityNotExist.User.AccessKey", 404)
    # A RAM user needs actiontrail:GetAccessKeyLastUsed* (here: read-only RAM access is not enough).
    plain_upn = acct.upn("plain")
    acct.ims().create_user(im.CreateUserRequest(user_principal_name=plain_upn, display_name="plain"))
    plain = acct.ims().create_access_key(im.CreateAccessKeyRequest(user_principal_name=plain_upn)).body.access_key
    acct.ram().attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_name="AliyunRAMReadOnlyAccess", policy_type="System", user_name="plain")
    )
    with pytest.raises(TeaException) as denied:
        acct.trail(plain.access_key_id, plain.access_key_secret).get_access_key_last_used_products(
            at.GetAccessKeyLastUsedProductsRequest(access_key=plain.access_key_id)
        )
    assert denied.value.code == "NoPermission"
    assert denied.value.data["AccessDeniedDetail"]["AuthAction"] == "actiontrail:GetAccessKeyLastUsedProducts"
    # The user granted ActionTrail access sees the key's use; the call is itself audited, naming the key.
    products = acct.trail(key_id, secret).get_access_key_last_used_products(
        at.GetAccessKeyLastUsedProductsRequest(access_key=acct.key_id)
    )
    assert "Ims" in [p.service_name for p in products.body.products]
    event = acct.event_for(products.body.request_id)
    assert acct.key_id in event["referencedResources"]["ACS::RAM::AccessKey"]

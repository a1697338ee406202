"""LookupEvents through the official ActionTrail SDK: filters, order, paging and tokens."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from alibabacloud_actiontrail20200706 import models as am
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from openims import clock
from tests.support import Account


def lookup(acct: Account, attrs: dict[str, str] | None = None, **kw):  # type: ignore[no-untyped-def]
    attributes = [am.LookupEventsRequestLookupAttribute(key=k, value=v) for k, v in (attrs or {}).items()]
    return acct.trail().lookup_events(am.LookupEventsRequest(lookup_attribute=attributes, **kw)).body


@pytest.fixture
def history(acct: Account) -> Account:
    ims = acct.ims()
    for name in ("ann", "ben", "cat"):
        ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn(name), display_name=name))
    ims.create_group(m.CreateGroupRequest(group_name="readers"))
    ims.delete_user(m.DeleteUserRequest(user_principal_name=acct.upn("cat")))
    ims.delete_group(m.DeleteGroupRequest(group_name="readers"))
    with pytest.raises(TeaException):
        ims.get_user(m.GetUserRequest(user_principal_name=acct.upn("nobody")))
    return acct


def names(events: list[dict]) -> list[str]:
    return [e["eventName"] for e in events]


def test_filters(history: Account) -> None:
    acct = history
    assert names(lookup(acct, {"EventName": "CreateUser"}).events) == ["CreateUser"] * 3
    assert names(lookup(acct, {"EventName": "Delete*"}).events) == ["DeleteGroup", "DeleteUser"]
    assert names(lookup(acct, {"EventRW": "Write", "ResourceType": "ACS::RAM::Group"}).events) == [
        "DeleteGroup",
        "CreateGroup",
    ]
    assert names(lookup(acct, {"ResourceName": acct.upn("cat")}).events) == ["DeleteUser", "CreateUser"]
    failed = lookup(acct, {"ErrorCode": "*"}).events
    assert names(failed) == ["GetUser"] and failed[0]["errorCode"] == "EntityNotExist.User"
    assert names(lookup(acct, {"ErrorCode": "EntityNotExist.*"}).events) == ["GetUser"]
    assert len(lookup(acct, {"User": "root", "ServiceName": "Ims", "EventAccessKeyId": acct.key_id}).events) == 7
    assert len(lookup(acct, {"SourceIpAddress": "127.0.0.1", "EventName": "CreateGroup"}).events) == 1
    one = failed[0]
    assert names(lookup(acct, {"EventId": one["eventId"]}).events) == ["GetUser"]
    assert lookup(acct, {"EventName": "CreateUser", "User": "someone-else"}).events == []
    assert lookup(acct, {"RoleName": "any-role"}).events == []


def test_a_user_is_found_by_its_short_name(acct: Account) -> None:
    """ "What did bob do": bob's own calls, whichever of his names the question uses, and nobody else's."""
    ims = acct.ims()
    bob, bobby = acct.upn("bob"), acct.upn("bobby")
    keys = {}
    for upn in (bob, bobby):
        ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=upn[:5]))
        key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
        keys[upn] = (key.access_key_id, key.access_key_secret)
    ims.set_security_preference(m.SetSecurityPreferenceRequest(allow_user_to_manage_access_keys=True))
    for upn, (key_id, secret) in keys.items():
        acct.ims(key_id, secret).list_access_keys(m.ListAccessKeysRequest())
    for name in ("bob", bob):
        found = lookup(acct, {"User": name}).events
        assert [(e["eventName"], e["userIdentity"]["userName"]) for e in found] == [("ListAccessKeys", bob)], name
    assert lookup(acct, {"User": "bo"}).events == []


def test_order_paging_and_tokens(history: Account) -> None:
    acct = history
    newest_first = names(lookup(acct, {"ServiceName": "Ims"}).events)
    oldest_first = names(lookup(acct, {"ServiceName": "Ims"}, direction="FORWARD").events)
    assert newest_first == list(reversed(oldest_first)) and oldest_first[0] == "CreateUser"
    pages, token = [], None
    while True:
        body = lookup(acct, {"ServiceName": "Ims"}, max_results="2", next_token=token)
        assert len(body.events) <= 2
        pages += body.events
        token = body.next_token
        if not token:
            break
    assert names(pages) == newest_first and len({e["eventId"] for e in pages}) == len(pages)

    body = lookup(acct, {"ServiceName": "Ims"}, max_results="2")
    # a token is bound to its filters and account: changing either, or the token, is refused
    for attrs, client_acct in (
        ({"EventName": "CreateUser"}, acct),
        ({"ServiceName": "Ims"}, acct.server.new_account()),
    ):
        with pytest.raises(TeaException) as info:
            lookup(client_acct, attrs, max_results="2", next_token=body.next_token)
        assert info.value.code == "InvalidParameter.NextToken" and info.value.statusCode == 400
    raw = bytearray(base64.urlsafe_b64decode(body.next_token + "=" * (-len(body.next_token) % 4)))
    raw[3] ^= 1
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(TeaException) as info:
        lookup(acct, {"ServiceName": "Ims"}, max_results="2", next_token=forged)
    assert info.value.code == "InvalidParameter.NextToken"


def test_a_prefix_pages_in_time_order_across_the_names_it_matches(history: Account) -> None:
    """Create* matches CreateUser and CreateGroup events: read two at a time, either way, the pages hold
    exactly those events, in time order, as an unfiltered listing shows them."""
    acct = history
    listed = [e["eventId"] for e in lookup(acct, {"ServiceName": "Ims"}).events if e["eventName"].startswith("Create")]
    assert len(listed) == 4
    for direction, expected in (("BACKWARD", listed), ("FORWARD", listed[::-1])):
        pages, token = [], None
        while True:
            body = lookup(acct, {"EventName": "Create*"}, max_results="2", next_token=token, direction=direction)
            pages += [e["eventId"] for e in body.events]
            token = body.next_token
            if not token:
                break
        assert pages == expected, direction


def test_result_attribute_and_an_end_time_to_the_millisecond(history: Account) -> None:
    acct = history
    assert names(lookup(acct, {"Result": "Failure"}).events) == ["GetUser"]
    succeeded = lookup(acct, {"Result": "Success", "EventName": "CreateUser"}).events
    assert len(succeeded) == 3 and all("errorCode" not in e for e in succeeded)
    newest = lookup(acct).events[0]
    at = newest["eventTime"]  # whole seconds
    just_before = clock.iso_ms(clock.parse_iso(at) - 1)  # the last millisecond of the second before
    before = lookup(acct, end_time=just_before)
    assert before.end_time == just_before  # answered as given, so passing it back selects the same events
    assert newest["eventId"] not in {e["eventId"] for e in before.events}
    assert newest["eventId"] in {e["eventId"] for e in lookup(acct, end_time=at).events}


def test_time_range_and_bad_input(history: Account) -> None:
    acct = history
    now = datetime.now(UTC)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    past = lookup(
        acct,
        {"EventName": "CreateUser"},
        start_time=(now - timedelta(days=3)).strftime(fmt),
        end_time=(now - timedelta(days=2)).strftime(fmt),
    )
    assert past.events == [] and past.start_time and past.end_time
    body = lookup(
        acct,
        {"EventName": "CreateUser"},
        start_time=(now - timedelta(minutes=5)).strftime(fmt),
        end_time=now.strftime(fmt),
    )
    assert len(body.events) == 3
    for kwargs, code in (
        ({"start_time": "yesterday"}, "InvalidParameter.StartTime"),
        ({"max_results": "51"}, "InvalidParameter.MaxResults"),
        ({"direction": "SIDEWAYS"}, "InvalidParameter.Direction"),
        (
            {"start_time": now.strftime(fmt), "end_time": (now - timedelta(days=1)).strftime(fmt)},
            "InvalidParameterCombination",
        ),
    ):
        with pytest.raises(TeaException) as info:
            lookup(acct, **kwargs)
        assert info.value.code == code and info.value.statusCode == 400
    with pytest.raises(TeaException) as info:
        lookup(acct, {"Colour": "blue"})
    assert info.value.code == "InvalidParameter.LookupAttribute.Key"
    for key in ("EventRW", "MFAUsed", "Result"):
        with pytest.raises(TeaException) as info:
            lookup(acct, {key: "Maybe"})
        assert info.value.code == "InvalidParameter.LookupAttribute.Value" and info.value.statusCode == 400
        assert key in info.value.message


def test_lookup_is_itself_audited_and_v2_works(acct: Account) -> None:
    body = acct.trail(v2=True).lookup_events(am.LookupEventsRequest()).body
    event = acct.event_for(body.request_id)
    assert event["eventName"] == "LookupEvents" and event["serviceName"] == "Actiontrail"
    assert event["apiVersion"] == "2020-07-06" and event["eventRW"] == "Read" and event["isGlobal"] is False
    assert event["eventSource"] == "actiontrail.aliyuncs.com" and "responseElements" not in event

"""Tagging RAM users with TagResources, UntagResources and ListTagResources through the official IMS SDK."""

from __future__ import annotations

import pytest
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from tests.support import Account

Tag = m.TagResourcesRequestTag


def fails(call, code: str, status: int) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    assert (info.value.code, info.value.statusCode) == (code, status), info.value.message


def pairs(body: m.ListTagResourcesResponseBody) -> list[tuple[str, str, str]]:
    return [(t.resource_id, t.tag_key, t.tag_value) for t in body.tag_resources.tag_resource]


def make_users(acct: Account, *names: str) -> list[m.CreateUserResponseBodyUser]:
    ims = acct.ims()
    return [
        ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn(n), display_name=n)).body.user for n in names
    ]


def test_tag_list_and_untag_users(acct: Account) -> None:
    ims = acct.ims()
    alice, bob = make_users(acct, "alice", "bob")
    tagged = ims.tag_resources(
        m.TagResourcesRequest(
            resource_type="user",
            resource_principal_name=[alice.user_principal_name, bob.user_principal_name],
            tag=[Tag(key="team", value="sre"), Tag(key="cost-center", value="")],
        )
    ).body
    ims.tag_resources(
        m.TagResourcesRequest(resource_type="user", resource_id=[bob.user_id], tag=[Tag(key="team", value="dev")])
    )

    both = ims.list_tag_resources(
        m.ListTagResourcesRequest(resource_type="user", resource_id=[alice.user_id, bob.user_id])
    ).body
    assert sorted(pairs(both)) == sorted(
        [
            (alice.user_id, "cost-center", ""),
            (alice.user_id, "team", "sre"),
            (bob.user_id, "cost-center", ""),
            (bob.user_id, "team", "dev"),
        ]
    )
    assert all(t.resource_type == "user" for t in both.tag_resources.tag_resource) and both.is_truncated is False
    by_tag = ims.list_tag_resources(
        m.ListTagResourcesRequest(resource_type="user", tag=[m.ListTagResourcesRequestTag(key="team", value="sre")])
    ).body
    assert pairs(by_tag) == [(alice.user_id, "team", "sre")]
    by_key = ims.list_tag_resources(m.ListTagResourcesRequest(tag=[m.ListTagResourcesRequestTag(key="team")])).body
    assert sorted(pairs(by_key)) == sorted([(alice.user_id, "team", "sre"), (bob.user_id, "team", "dev")])
    user = ims.get_user(m.GetUserRequest(user_principal_name=bob.user_principal_name)).body.user
    assert [(t.tag_key, t.tag_value) for t in user.tags.tag] == [("cost-center", ""), ("team", "dev")]
    filtered = ims.list_users(m.ListUsersRequest(tag=[m.ListUsersRequestTag(key="team", value="dev")])).body.users.user
    assert [u.user_id for u in filtered] == [bob.user_id]

    untagged = ims.untag_resources(
        m.UntagResourcesRequest(
            resource_type="user", resource_principal_name=[alice.user_principal_name], tag_key=["team", "absent"]
        )
    ).body
    assert pairs(ims.list_tag_resources(m.ListTagResourcesRequest(resource_id=[alice.user_id])).body) == [
        (alice.user_id, "cost-center", "")
    ]
    ims.untag_resources(m.UntagResourcesRequest(resource_id=[alice.user_id, bob.user_id], all=True))
    assert pairs(ims.list_tag_resources(m.ListTagResourcesRequest()).body) == []

    event = acct.event_for(tagged.request_id)
    assert (event["eventName"], event["eventRW"], event["resourceType"]) == ("TagResources", "Write", "ACS::RAM::User")
    assert event["resourceName"] == f"{alice.user_principal_name},{bob.user_principal_name}"
    assert event["requestParameters"]["Tag.1.Key"] == "team"
    event = acct.event_for(untagged.request_id)
    assert (event["eventName"], event["eventRW"], event["resourceName"]) == (
        "UntagResources",
        "Write",
        alice.user_principal_name,
    )
    event = acct.event_for(both.request_id)
    assert (event["eventName"], event["eventRW"], event["resourceType"]) == (
        "ListTagResources",
        "Read",
        "ACS::RAM::User",
    )


def test_tag_limits_and_validation(acct: Account) -> None:
    ims = acct.ims()
    [alice] = make_users(acct, "alice")
    upn = [alice.user_principal_name]
    ims.tag_resources(
        m.TagResourcesRequest(resource_principal_name=upn, tag=[Tag(key=f"k{i}", value="v") for i in range(20)])
    )
    ims.tag_resources(
        m.TagResourcesRequest(resource_principal_name=upn, tag=[Tag(key="k0", value="overwritten")])
    )  # overwrite: still 20
    listed = pairs(ims.list_tag_resources(m.ListTagResourcesRequest(resource_id=[alice.user_id])).body)
    assert len(listed) == 20 and (alice.user_id, "k0", "overwritten") in listed
    cases = [
        (m.TagResourcesRequest(resource_principal_name=upn, tag=[Tag(key="k20", value="v")]), "LimitExceeded.Tag", 409),
        (
            m.TagResourcesRequest(resource_principal_name=upn, tag=[Tag(key=f"n{i}") for i in range(21)]),
            "InvalidParameter.Tag.Length",
            400,
        ),
        (
            m.TagResourcesRequest(resource_principal_name=upn, tag=[Tag(key="aliyun:x", value="v")]),
            "InvalidParameter.Tag.Key.InvalidChars",
            400,
        ),
        (
            m.TagResourcesRequest(resource_principal_name=upn, tag=[Tag(key="acs:x", value="v")]),
            "InvalidParameter.Tag.Key.InvalidChars",
            400,
        ),
        (
            m.TagResourcesRequest(resource_principal_name=upn, tag=[Tag(key="k" * 129, value="v")]),
            "InvalidParameter.Tag.Key.Length",
            400,
        ),
        (
            m.TagResourcesRequest(resource_principal_name=upn, tag=[Tag(key="k", value="v" * 129)]),
            "InvalidParameter.Tag.Value.Length",
            400,
        ),
        (
            m.TagResourcesRequest(resource_principal_name=upn, tag=[Tag(key="see https://x", value="v")]),
            "InvalidParameter.Tag.Key.InvalidChars",
            400,
        ),
        (
            m.TagResourcesRequest(resource_principal_name=upn, tag=[Tag(key="ACS:x", value="v")]),
            "InvalidParameter.Tag.Key.InvalidChars",
            400,
        ),
        (m.TagResourcesRequest(resource_principal_name=upn, tag=[Tag(key="", value="v")]), "MissingParameter", 400),
        (
            m.TagResourcesRequest(resource_principal_name=upn, tag=[Tag(key="k", value="http://x")]),
            "InvalidParameter.Tag.Value.InvalidChars",
            400,
        ),
        (m.TagResourcesRequest(resource_principal_name=upn), "MissingParameter", 400),
        (m.TagResourcesRequest(tag=[Tag(key="k", value="v")]), "MissingParameter", 400),
        (
            m.TagResourcesRequest(
                resource_principal_name=upn, resource_id=[alice.user_id], tag=[Tag(key="k", value="v")]
            ),
            "InvalidParameter.ResourceId",
            400,
        ),
        (
            m.TagResourcesRequest(resource_id=[str(i) for i in range(51)], tag=[Tag(key="k", value="v")]),
            "InvalidParameter.ResourceId.Length",
            400,
        ),
        (
            m.TagResourcesRequest(resource_type="group", resource_principal_name=upn, tag=[Tag(key="k", value="v")]),
            "InvalidParameter.ResourceType",
            400,
        ),
        (
            m.TagResourcesRequest(resource_principal_name=[acct.upn("ghost")], tag=[Tag(key="k", value="v")]),
            "EntityNotExist.User",
            404,
        ),
        (m.TagResourcesRequest(resource_id=["123"], tag=[Tag(key="k", value="v")]), "EntityNotExist.User", 404),
    ]
    for request, code, status in cases:
        fails(lambda request=request: ims.tag_resources(request), code, status)
    failed = [e["errorCode"] for e in acct.events(EventName="TagResources") if "errorCode" in e]
    assert sorted(failed) == sorted(code for _, code, _ in cases)
    # The quota failure happened after the user was found: its event names the user.
    [over] = [e for e in acct.events(EventName="TagResources") if e.get("errorCode") == "LimitExceeded.Tag"]
    assert (over["resourceType"], over["resourceName"]) == ("ACS::RAM::User", alice.user_principal_name)
    assert len(pairs(ims.list_tag_resources(m.ListTagResourcesRequest(resource_id=[alice.user_id])).body)) == 20

    fails(lambda: ims.untag_resources(m.UntagResourcesRequest(resource_principal_name=upn)), "MissingParameter", 400)
    fails(
        lambda: ims.untag_resources(
            m.UntagResourcesRequest(resource_principal_name=upn, tag_key=[f"k{i}" for i in range(21)])
        ),
        "InvalidParameter.TagKey.Length",
        400,
    )
    fails(
        lambda: ims.untag_resources(m.UntagResourcesRequest(resource_id=["123"], all=True)), "EntityNotExist.User", 404
    )
    fails(lambda: ims.list_tag_resources(m.ListTagResourcesRequest(page_size=101)), "InvalidParameter.PageSize", 400)
    fails(
        lambda: ims.list_tag_resources(m.ListTagResourcesRequest(next_token="!!!")),
        "InvalidParameter.NextToken.Format",
        400,
    )
    fails(lambda: ims.list_tag_resources(m.ListTagResourcesRequest(resource_id=["123"])), "EntityNotExist.User", 404)


def test_list_tag_resources_pages(acct: Account) -> None:
    ims = acct.ims()
    users = make_users(acct, "a", "b", "c")
    ims.tag_resources(
        m.TagResourcesRequest(
            resource_id=[u.user_id for u in users], tag=[Tag(key="x", value="1"), Tag(key="y", value="2")]
        )
    )
    seen: list[tuple[str, str, str]] = []
    token = None
    pages = 0
    while True:
        body = ims.list_tag_resources(m.ListTagResourcesRequest(page_size=4, next_token=token)).body
        seen += pairs(body)
        pages += 1
        if not body.is_truncated:
            assert body.next_token is None
            break
        token = body.next_token
    assert pages == 2 and len(seen) == 6 == len(set(seen))
    # deleted users (in the recycle bin) are not listed
    ims.delete_user(m.DeleteUserRequest(user_principal_name=users[0].user_principal_name))
    assert {r for r, _, _ in pairs(ims.list_tag_resources(m.ListTagResourcesRequest()).body)} == {
        users[1].user_id,
        users[2].user_id,
    }

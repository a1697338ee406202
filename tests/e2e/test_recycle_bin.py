"""The recycle bin through the official IMS SDK: deleted users and keys, restore, permanent delete, purge."""

from __future__ import annotations

import json
from typing import Any

import pytest
from alibabacloud_ims20190815 import models as m
from sqlalchemy import select
from Tea.exceptions import TeaException

from openims import clock
from openims.actions import recycle_bin
from openims.store.schema import access_keys, resource_tags, users
from tests.support import Account, Server

DAY_S = 24 * 3600


def error_of(call) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    return info.value


def new_user(acct: Account, name: str, keys: int = 0) -> tuple[str, str, list[tuple[str, str]]]:
    """A user with `keys` AccessKeys: (upn, user id, [(key id, secret)])."""
    ims = acct.ims()
    upn = acct.upn(name)
    user = ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=name)).body.user
    made = []
    for _ in range(keys):
        key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
        made.append((key.access_key_id, key.access_key_secret))
    return upn, user.user_id, made


def whoami(acct: Account, key: tuple[str, str]) -> str:
    return acct.ims(*key).get_user(m.GetUserRequest()).body.user.user_principal_name


def check_event(acct: Account, request_id: str, name: str, rw: str, rtype: str, rname: str) -> dict[str, Any]:
    event = acct.event_for(request_id)
    # The declared resource comes first (the others follow, ActionTrail's ";"-separated groups).
    first_type, first_names = event["resourceType"].split(";")[0], event["resourceName"].split(";")[0]
    assert (event["eventName"], event["eventRW"], first_type, first_names) == (
        name,
        rw,
        rtype,
        rname,
    )
    assert "errorCode" not in event
    return event


def test_deleted_user_round_trip_with_keys_and_groups(acct: Account) -> None:
    ims = acct.ims()
    upn, user_id, [k1, k2] = new_user(acct, "alice", keys=2)
    ims.create_group(m.CreateGroupRequest(group_name="ops"))
    ims.add_user_to_group(m.AddUserToGroupRequest(group_name="ops", user_principal_name=upn))
    assert whoami(acct, k1) == upn

    # k2 goes to the bin on its own first, then the user with everything else.
    ims.delete_access_key(m.DeleteAccessKeyRequest(user_principal_name=upn, user_access_key_id=k2[0]))
    deleted = ims.delete_user(m.DeleteUserRequest(user_principal_name=upn)).body
    for key in (k1, k2):
        err = error_of(lambda: whoami(acct, key))
        assert err.code == "InvalidAccessKeyId.NotFound" and err.statusCode == 404
    assert acct.event_for(deleted.request_id)["eventName"] == "DeleteUser"

    listed = ims.list_users_in_recycle_bin(m.ListUsersInRecycleBinRequest()).body
    assert listed.is_truncated is False
    [item] = listed.users.user
    assert (item.user_id, item.user_principal_name, item.display_name) == (user_id, upn, "alice")
    recycled = clock.parse_iso(item.recycle_date)
    assert clock.parse_iso(item.delete_date) - recycled == recycle_bin.RETENTION_DAYS * DAY_S * 1000
    assert clock.parse_iso(item.create_date) <= recycled

    by_id = ims.get_user_in_recycle_bin(m.GetUserInRecycleBinRequest(user_id=user_id)).body
    by_key = ims.get_user_in_recycle_bin(m.GetUserInRecycleBinRequest(user_access_key_id=k1[0])).body
    assert by_id.user.to_map() == by_key.user.to_map() == item.to_map()
    check_event(acct, by_id.request_id, "GetUserInRecycleBin", "Read", "ACS::RAM::User", upn)

    info = ims.get_access_key_info_in_recycle_bin(m.GetAccessKeyInfoInRecycleBinRequest(user_access_key_id=k1[0])).body
    assert (info.access_key.access_key_id, info.access_key.user_id, info.access_key.user_principal_name) == (
        k1[0],
        user_id,
        upn,
    )
    assert info.access_key.user_recycled is True and info.access_key.recycle_date == item.recycle_date
    check_event(acct, info.request_id, "GetAccessKeyInfoInRecycleBin", "Read", "ACS::RAM::AccessKey", k1[0])

    keys = ims.list_access_keys_in_recycle_bin(m.ListAccessKeysInRecycleBinRequest(user_id=user_id)).body
    assert sorted(k.access_key_id for k in keys.access_keys.access_key) == sorted([k1[0], k2[0]])
    check_event(acct, keys.request_id, "ListAccessKeysInRecycleBin", "Read", "ACS::RAM::User", upn)

    # A key cannot come back before its user does.
    err = error_of(
        lambda: ims.restore_access_key_from_recycle_bin(
            m.RestoreAccessKeyFromRecycleBinRequest(user_id=user_id, user_access_key_id=k1[0])
        )
    )
    assert err.code == "EntityNotExist.User" and err.statusCode == 404 and "restore the user first" in err.message

    restored = ims.restore_user_from_recycle_bin(m.RestoreUserFromRecycleBinRequest(user_id=user_id)).body
    check_event(acct, restored.request_id, "RestoreUserFromRecycleBin", "Write", "ACS::RAM::User", upn)
    assert ims.get_user(m.GetUserRequest(user_principal_name=upn)).body.user.user_id == user_id
    groups = ims.list_groups_for_user(m.ListGroupsForUserRequest(user_principal_name=upn)).body.groups.group
    assert [g.group_name for g in groups] == ["ops"]
    assert [
        k.access_key_id
        for k in ims.list_access_keys(m.ListAccessKeysRequest(user_principal_name=upn)).body.access_keys.access_key
    ] == [k1[0]]
    assert whoami(acct, k1) == upn
    assert ims.list_users_in_recycle_bin(m.ListUsersInRecycleBinRequest()).body.users.user == []

    # k2, deleted on its own, stayed in the bin; now it can come back too.
    left = ims.list_access_keys_in_recycle_bin(
        m.ListAccessKeysInRecycleBinRequest(user_id=user_id)
    ).body.access_keys.access_key
    assert [k.access_key_id for k in left] == [k2[0]]
    info = ims.get_access_key_info_in_recycle_bin(
        m.GetAccessKeyInfoInRecycleBinRequest(user_access_key_id=k2[0])
    ).body.access_key
    assert info.user_recycled is False
    back = ims.restore_access_key_from_recycle_bin(
        m.RestoreAccessKeyFromRecycleBinRequest(user_id=user_id, user_access_key_id=k2[0])
    ).body
    event = check_event(acct, back.request_id, "RestoreAccessKeyFromRecycleBin", "Write", "ACS::RAM::AccessKey", k2[0])
    assert event["referencedResources"] == {"ACS::RAM::AccessKey": [k2[0]], "ACS::RAM::User": [upn]}
    assert whoami(acct, k2) == upn


def test_restore_fails_cleanly_when_the_name_was_taken(acct: Account) -> None:
    ims = acct.ims()
    upn, old_id, [old_key] = new_user(acct, "bob", keys=1)
    ims.delete_user(m.DeleteUserRequest(user_principal_name=upn))
    _, new_id, _ = new_user(acct, "BOB")

    err = error_of(lambda: ims.restore_user_from_recycle_bin(m.RestoreUserFromRecycleBinRequest(user_id=old_id)))
    assert err.code == "EntityAlreadyExists.User" and err.statusCode == 409
    assert "rename or delete it" in err.message
    event = acct.event_for(err.data["RequestId"])
    assert event["eventName"] == "RestoreUserFromRecycleBin" and event["errorCode"] == "EntityAlreadyExists.User"
    # Nothing changed: the new user is live, the old one still in the bin, its key still refused.
    assert ims.get_user(m.GetUserRequest(user_principal_name=upn)).body.user.user_id == new_id
    assert ims.get_user_in_recycle_bin(m.GetUserInRecycleBinRequest(user_id=old_id)).body.user.user_id == old_id
    assert error_of(lambda: whoami(acct, old_key)).code == "InvalidAccessKeyId.NotFound"

    # Renaming the newcomer frees the name.
    ims.update_user(m.UpdateUserRequest(user_principal_name=upn, new_user_principal_name=acct.upn("bob2")))
    ims.restore_user_from_recycle_bin(m.RestoreUserFromRecycleBinRequest(user_id=old_id))
    assert whoami(acct, old_key) == upn


def test_deleted_key_is_refused_then_restored_or_erased(acct: Account) -> None:
    ims = acct.ims()
    upn, user_id, [k1, k2] = new_user(acct, "carol", keys=2)
    deleted = ims.delete_access_key(m.DeleteAccessKeyRequest(user_principal_name=upn, user_access_key_id=k1[0])).body
    assert acct.event_for(deleted.request_id)["eventName"] == "DeleteAccessKey"
    for v2 in (False, True):
        err = error_of(lambda: acct.ims(*k1, v2=v2).get_user(m.GetUserRequest()))
        assert err.code == "InvalidAccessKeyId.NotFound" and err.statusCode == 404
    assert whoami(acct, k2) == upn

    # The quota counts live keys: with two live keys again, the deleted one cannot come back.
    k3 = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key.access_key_id
    err = error_of(
        lambda: ims.restore_access_key_from_recycle_bin(
            m.RestoreAccessKeyFromRecycleBinRequest(user_id=user_id, user_access_key_id=k1[0])
        )
    )
    assert err.code == "LimitExceeded.User.AccessKey" and err.statusCode == 409
    ims.delete_access_key(m.DeleteAccessKeyRequest(user_principal_name=upn, user_access_key_id=k3))
    # Without UserId the root account's own keys are meant: the error says how to name the user's key.
    err = error_of(
        lambda: ims.restore_access_key_from_recycle_bin(
            m.RestoreAccessKeyFromRecycleBinRequest(user_access_key_id=k1[0])
        )
    )
    assert err.code == "EntityNotExist.User.AccessKey" and "UserId" in err.message
    ims.restore_access_key_from_recycle_bin(
        m.RestoreAccessKeyFromRecycleBinRequest(user_id=user_id, user_access_key_id=k1[0])
    )
    assert whoami(acct, k1) == upn

    erased = ims.delete_access_key_in_recycle_bin(
        m.DeleteAccessKeyInRecycleBinRequest(user_id=user_id, user_access_key_id=k3)
    ).body
    check_event(acct, erased.request_id, "DeleteAccessKeyInRecycleBin", "Write", "ACS::RAM::AccessKey", k3)
    err = error_of(
        lambda: ims.get_access_key_info_in_recycle_bin(m.GetAccessKeyInfoInRecycleBinRequest(user_access_key_id=k3))
    )
    assert err.code == "EntityNotExist.User.AccessKey" and err.statusCode == 404
    err = error_of(
        lambda: ims.restore_access_key_from_recycle_bin(
            m.RestoreAccessKeyFromRecycleBinRequest(user_id=user_id, user_access_key_id=k3)
        )
    )
    assert err.code == "EntityNotExist.User.AccessKey"
    assert (
        ims.list_access_keys_in_recycle_bin(
            m.ListAccessKeysInRecycleBinRequest(user_id=user_id)
        ).body.access_keys.access_key
        == []
    )


def test_root_keys_use_the_bin_too(acct: Account) -> None:
    ims = acct.ims()
    spare = ims.create_access_key(m.CreateAccessKeyRequest()).body.access_key
    ims.delete_access_key(m.DeleteAccessKeyRequest(user_access_key_id=spare.access_key_id))
    assert (
        error_of(lambda: acct.ims(spare.access_key_id, spare.access_key_secret).get_account_summary()).code
        == "InvalidAccessKeyId.NotFound"
    )
    listed = ims.list_access_keys_in_recycle_bin(m.ListAccessKeysInRecycleBinRequest()).body.access_keys.access_key
    assert [k.access_key_id for k in listed] == [spare.access_key_id]
    info = ims.get_access_key_info_in_recycle_bin(
        m.GetAccessKeyInfoInRecycleBinRequest(user_access_key_id=spare.access_key_id)
    ).body
    assert (info.access_key.user_id, info.access_key.user_principal_name, info.access_key.user_recycled) == (
        "",
        "",
        False,
    )
    ims.restore_access_key_from_recycle_bin(
        m.RestoreAccessKeyFromRecycleBinRequest(user_access_key_id=spare.access_key_id)
    )
    assert acct.ims(spare.access_key_id, spare.access_key_secret).get_account_summary().body.summary_map.users == 0


def test_permanent_delete_and_listing(acct: Account) -> None:
    ims = acct.ims()
    made = [new_user(acct, f"gone{i}", keys=1) for i in range(3)]
    for upn, _, _ in made:
        ims.delete_user(m.DeleteUserRequest(user_principal_name=upn))
    seen, marker = [], None
    while True:
        body = ims.list_users_in_recycle_bin(m.ListUsersInRecycleBinRequest(max_items=2, marker=marker)).body
        seen += [u.user_id for u in body.users.user]
        if not body.is_truncated:
            break
        marker = body.marker
    assert sorted(seen) == sorted(uid for _, uid, _ in made)
    upn0, id0, [(key0, _)] = made[0]
    only = ims.list_users_in_recycle_bin(
        m.ListUsersInRecycleBinRequest(filter=f"UserPrincipalName eq {upn0}")
    ).body.users.user
    assert [u.user_id for u in only] == [id0]

    erased = ims.delete_user_in_recycle_bin(m.DeleteUserInRecycleBinRequest(user_id=id0)).body
    check_event(acct, erased.request_id, "DeleteUserInRecycleBin", "Write", "ACS::RAM::User", upn0)
    for call in (
        lambda: ims.get_user_in_recycle_bin(m.GetUserInRecycleBinRequest(user_id=id0)),
        lambda: ims.restore_user_from_recycle_bin(m.RestoreUserFromRecycleBinRequest(user_id=id0)),
        lambda: ims.delete_user_in_recycle_bin(m.DeleteUserInRecycleBinRequest(user_id=id0)),
    ):
        err = error_of(call)
        assert err.code == "EntityNotExist.User" and err.statusCode == 404
    err = error_of(
        lambda: ims.get_access_key_info_in_recycle_bin(m.GetAccessKeyInfoInRecycleBinRequest(user_access_key_id=key0))
    )
    assert err.code == "EntityNotExist.User.AccessKey"
    # The name is free for good, and a new user of that name is unrelated.
    new_user(acct, "gone0")
    assert (
        error_of(lambda: ims.list_access_keys_in_recycle_bin(m.ListAccessKeysInRecycleBinRequest(user_id=id0))).code
        == "EntityNotExist.User"
    )


def test_invalid_requests(acct: Account) -> None:
    ims = acct.ims()
    _upn, user_id, _ = new_user(acct, "dave")
    cases = [
        (lambda: ims.get_user_in_recycle_bin(m.GetUserInRecycleBinRequest()), "MissingParameter", 400),
        (
            lambda: ims.get_user_in_recycle_bin(
                m.GetUserInRecycleBinRequest(user_id=user_id, user_access_key_id="LTAIx")
            ),
            "InvalidParameter.UserId.Conflict",
            400,
        ),
        # A live user is not in the bin.
        (
            lambda: ims.get_user_in_recycle_bin(m.GetUserInRecycleBinRequest(user_id=user_id)),
            "EntityNotExist.User",
            404,
        ),
        (
            lambda: ims.delete_user_in_recycle_bin(m.DeleteUserInRecycleBinRequest(user_id=user_id)),
            "EntityNotExist.User",
            404,
        ),
        (lambda: ims.restore_user_from_recycle_bin(m.RestoreUserFromRecycleBinRequest()), "MissingParameter", 400),
        (
            lambda: ims.list_users_in_recycle_bin(m.ListUsersInRecycleBinRequest(filter="UserName = dave")),
            "InvalidParameter.Filter.Format",
            400,
        ),
        (
            lambda: ims.list_users_in_recycle_bin(m.ListUsersInRecycleBinRequest(max_items=101)),
            "InvalidParameter.MaxItems",
            400,
        ),
        (
            lambda: ims.list_users_in_recycle_bin(m.ListUsersInRecycleBinRequest(marker="abc")),
            "InvalidParameter.Marker",
            400,
        ),
        (
            lambda: ims.list_access_keys_in_recycle_bin(m.ListAccessKeysInRecycleBinRequest(user_id="999")),
            "EntityNotExist.User",
            404,
        ),
        (
            lambda: ims.get_access_key_info_in_recycle_bin(m.GetAccessKeyInfoInRecycleBinRequest()),
            "MissingParameter",
            400,
        ),
        (
            lambda: ims.restore_access_key_from_recycle_bin(m.RestoreAccessKeyFromRecycleBinRequest(user_id=user_id)),
            "MissingParameter",
            400,
        ),
        (
            lambda: ims.delete_access_key_in_recycle_bin(
                m.DeleteAccessKeyInRecycleBinRequest(user_id=user_id, user_access_key_id="LTAInope")
            ),
            "EntityNotExist.User.AccessKey",
            404,
        ),
    ]
    for call, code, status in cases:
        err = error_of(call)
        assert (err.code, err.statusCode) == (code, status), (code, err.code, err.message)
    failed = [e for e in acct.events() if e.get("errorCode")]
    assert sorted(e["errorCode"] for e in failed) == sorted(code for _, code, _ in cases)


def test_ram_user_needs_permission(acct: Account) -> None:
    _upn, _user_id, [key] = new_user(acct, "eve", keys=1)
    other, other_id, _ = new_user(acct, "frank")
    acct.ims().delete_user(m.DeleteUserRequest(user_principal_name=other))
    as_eve = acct.ims(*key)
    for call in (
        lambda: as_eve.list_users_in_recycle_bin(m.ListUsersInRecycleBinRequest()),
        lambda: as_eve.restore_user_from_recycle_bin(m.RestoreUserFromRecycleBinRequest(user_id=other_id)),
        lambda: as_eve.delete_user_in_recycle_bin(m.DeleteUserInRecycleBinRequest(user_id=other_id)),
    ):
        err = error_of(call)
        assert err.code == "NoPermission" and err.statusCode == 403
    assert (
        acct.ims().get_user_in_recycle_bin(m.GetUserInRecycleBinRequest(user_id=other_id)).body.user.user_principal_name
        == other
    )


def test_purge_after_retention(acct: Account, server: Server) -> None:
    ims = acct.ims()
    upn = acct.upn("old")
    user_id = ims.create_user(
        m.CreateUserRequest(
            user_principal_name=upn, display_name="old", tag=[m.CreateUserRequestTag(key="k", value="v")]
        )
    ).body.user.user_id
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key.access_key_id
    _, keeper_id, [(loose, _), _] = new_user(acct, "keeper", keys=2)
    ims.delete_user(m.DeleteUserRequest(user_principal_name=upn))
    ims.delete_access_key(m.DeleteAccessKeyRequest(user_access_key_id=loose, user_principal_name=acct.upn("keeper")))
    assert recycle_bin.purge(server.runtime) >= 0
    assert ims.get_user_in_recycle_bin(m.GetUserInRecycleBinRequest(user_id=user_id)).body.user.user_id == user_id
    clock.set_offset(recycle_bin.RETENTION_DAYS * DAY_S + 60)
    try:
        assert recycle_bin.purge(server.runtime) >= 2
    finally:
        clock.set_offset(0)
    assert (
        error_of(lambda: ims.get_user_in_recycle_bin(m.GetUserInRecycleBinRequest(user_id=user_id))).code
        == "EntityNotExist.User"
    )
    for gone in (key, loose):
        err = error_of(
            lambda: ims.get_access_key_info_in_recycle_bin(
                m.GetAccessKeyInfoInRecycleBinRequest(user_access_key_id=gone)
            )
        )
        assert err.code == "EntityNotExist.User.AccessKey"
    # Live things are untouched.
    assert ims.get_user(m.GetUserRequest(user_id=keeper_id)).body.user.user_id == keeper_id
    with server.runtime.db.read() as conn:
        assert conn.execute(select(users.c.id).where(users.c.id == user_id)).first() is None
        assert conn.execute(select(access_keys.c.id).where(access_keys.c.id.in_([key, loose]))).first() is None
        assert (
            conn.execute(select(resource_tags.c.resource_id).where(resource_tags.c.resource_id == user_id)).first()
            is None
        )


def test_events_hold_no_secrets(acct: Account) -> None:
    upn, user_id, [(_key_id, secret)] = new_user(acct, "zed", keys=1)
    ims = acct.ims()
    ims.delete_user(m.DeleteUserRequest(user_principal_name=upn))
    ims.restore_user_from_recycle_bin(m.RestoreUserFromRecycleBinRequest(user_id=user_id))
    dump = json.dumps(acct.events())
    assert secret not in dump and acct.secret not in dump

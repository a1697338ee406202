"""AccessKeys of RAM users and of the root account: a created key signs requests that the server accepts."""

from __future__ import annotations

import json

import pytest
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from tests.support import Account


def test_rotate_a_users_key_and_audit_without_secret(acct: Account) -> None:
    ims = acct.ims()
    upn = acct.upn("deployer")
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="Deployer"))
    created = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body
    old = created.access_key
    assert old.access_key_id.startswith("LTAI") and len(old.access_key_id) == 24 and len(old.access_key_secret) == 30
    assert old.status == "Active"
    new = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    with pytest.raises(TeaException) as info:
        ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn))
    assert (info.value.code, info.value.statusCode) == ("LimitExceeded.User.AccessKey", 409)
    assert (
        acct.ims(new.access_key_id, new.access_key_secret).get_user(m.GetUserRequest()).body.user.user_principal_name
        == upn
    )
    ims.update_access_key(
        m.UpdateAccessKeyRequest(user_principal_name=upn, user_access_key_id=old.access_key_id, status="Inactive")
    )
    listed = {
        k.access_key_id: k.status
        for k in ims.list_access_keys(m.ListAccessKeysRequest(user_principal_name=upn)).body.access_keys.access_key
    }
    assert listed == {old.access_key_id: "Inactive", new.access_key_id: "Active"}
    ims.delete_access_key(m.DeleteAccessKeyRequest(user_principal_name=upn, user_access_key_id=old.access_key_id))
    with pytest.raises(TeaException) as info:
        ims.delete_access_key(m.DeleteAccessKeyRequest(user_principal_name=upn, user_access_key_id=old.access_key_id))
    assert (info.value.code, info.value.statusCode) == ("EntityNotExist.User.AccessKey", 404)
    with pytest.raises(TeaException) as info:
        ims.update_access_key(
            m.UpdateAccessKeyRequest(user_principal_name=upn, user_access_key_id=new.access_key_id, status="Paused")
        )
    assert info.value.code == "InvalidParameter.Status"

    event = acct.event_for(created.request_id)
    # ActionTrail's format: the key and its user, types separated by ";".
    assert event["eventName"] == "CreateAccessKey"
    assert event["resourceType"] == "ACS::RAM::AccessKey;ACS::RAM::User"
    assert event["resourceName"].split(";")[0] == old.access_key_id
    assert event["responseElements"]["AccessKey"]["AccessKeySecret"] == "******"
    everything = json.dumps(acct.events())
    assert old.access_key_secret not in everything and new.access_key_secret not in everything


def test_root_keys(acct: Account) -> None:
    ims = acct.ims()
    second = ims.create_access_key(m.CreateAccessKeyRequest()).body.access_key
    keys = {k.access_key_id for k in ims.list_access_keys(m.ListAccessKeysRequest()).body.access_keys.access_key}
    assert keys == {acct.key_id, second.access_key_id}
    event = acct.ims(second.access_key_id, second.access_key_secret).get_account_summary().body
    assert acct.event_for(event.request_id)["userIdentity"]["accessKeyId"] == second.access_key_id


def test_key_of_another_user_is_not_found(acct: Account) -> None:
    ims = acct.ims()
    a, b = acct.upn("a"), acct.upn("b")
    for upn in (a, b):
        ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="x"))
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=a)).body.access_key
    with pytest.raises(TeaException) as info:
        ims.delete_access_key(m.DeleteAccessKeyRequest(user_principal_name=b, user_access_key_id=key.access_key_id))
    assert info.value.code == "EntityNotExist.User.AccessKey"
    with pytest.raises(TeaException) as info:
        ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=acct.upn("ghost")))
    assert info.value.code == "EntityNotExist.User"

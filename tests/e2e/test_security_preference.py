"""Security preferences through the official IMS SDK: every field stored and returned, validation, and the
self-service switches enforced (a RAM user calling with its own key gets NoPermission when switched off)."""

from __future__ import annotations

import time

import pyotp
import pytest
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from tests.support import Account

PASSWORD = "Pref-Test-Pass-135"


def error_of(call) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    return info.value


def ram_user(acct: Account, name: str, **profile: object) -> tuple[str, str, str]:
    """A RAM user with a console password and an AccessKey of its own (created by the root)."""
    ims = acct.ims()
    upn = acct.upn(name)
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=name))
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=PASSWORD, **profile))
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    return upn, key.access_key_id, key.access_key_secret


def test_defaults_are_alibabas(acct: Account) -> None:
    prefs = acct.ims().get_security_preference().body.security_preference
    assert prefs.access_key_preference.to_map() == {
        "AllowUserToManageAccessKeys": False,
        "AllowUserToManageServiceCredentials": False,
    }
    assert prefs.login_profile_preference.to_map() == {
        "AllowUserToChangePassword": True,
        "AllowUserToLoginWithPasskey": True,
        "EnableSaveMFATicket": False,
        "LoginNetworkMasks": "",
        "LoginSessionDuration": 6,
        "MFAOperationForLogin": "independent",
        "OperationForRiskLogin": "autonomous",
    }
    assert prefs.mfapreference.allow_user_to_manage_mfadevices is True
    assert (prefs.max_idle_days.max_idle_days_for_access_keys, prefs.max_idle_days.max_idle_days_for_users) == (
        730,
        730,
    )
    assert prefs.personal_info_preference.allow_user_to_manage_personal_ding_talk is True
    assert prefs.verification_preference.verification_types == []


def test_every_field_is_stored_and_returned(acct: Account) -> None:
    ims = acct.ims()
    body = ims.set_security_preference(
        m.SetSecurityPreferenceRequest(
            allow_user_to_change_password=False,
            allow_user_to_login_with_passkey=False,
            allow_user_to_manage_access_keys=True,
            allow_user_to_manage_mfadevices=False,
            allow_user_to_manage_personal_ding_talk=False,
            allow_user_to_manage_service_credentials=True,
            enable_save_mfaticket=True,
            login_network_masks="192.168.0.0/16; 10.0.0.0/8;2001:db8::/32",
            login_session_duration=12,
            mfaoperation_for_login="adaptive",
            operation_for_risk_login="autonomous",
            max_idle_days_for_access_keys=90,
            max_idle_days_for_users=365,
            verification_types=[],
        )
    ).body
    got = ims.get_security_preference().body
    for prefs in (body.security_preference, got.security_preference):
        assert prefs.access_key_preference.to_map() == {
            "AllowUserToManageAccessKeys": True,
            "AllowUserToManageServiceCredentials": True,
        }
        assert prefs.login_profile_preference.to_map() == {
            "AllowUserToChangePassword": False,
            "AllowUserToLoginWithPasskey": False,
            "EnableSaveMFATicket": True,
            "LoginNetworkMasks": "192.168.0.0/16;10.0.0.0/8;2001:db8::/32",
            "LoginSessionDuration": 12,
            "MFAOperationForLogin": "adaptive",
            "OperationForRiskLogin": "autonomous",
        }
        assert prefs.mfapreference.allow_user_to_manage_mfadevices is False
        assert (prefs.max_idle_days.max_idle_days_for_access_keys, prefs.max_idle_days.max_idle_days_for_users) == (
            90,
            365,
        )
        assert prefs.personal_info_preference.allow_user_to_manage_personal_ding_talk is False
        assert prefs.verification_preference.verification_types == []
    # parameters not sent keep their value; an empty mask list clears it
    ims.set_security_preference(m.SetSecurityPreferenceRequest(login_session_duration=3, login_network_masks=""))
    prefs = ims.get_security_preference().body.security_preference
    assert (
        prefs.login_profile_preference.login_session_duration == 3
        and prefs.login_profile_preference.login_network_masks == ""
    )
    assert prefs.login_profile_preference.mfaoperation_for_login == "adaptive"
    # What OpenIMS could not enforce it refuses to store, saying why (docs/credentials.md lists them).
    for request, code in (
        (m.SetSecurityPreferenceRequest(operation_for_risk_login="enforceVerify"), "OperationForRiskLogin"),
        (m.SetSecurityPreferenceRequest(verification_types=["sms"]), "VerificationTypes"),
    ):
        with pytest.raises(TeaException) as info:
            ims.set_security_preference(request)
        assert info.value.code == f"InvalidParameter.{code}.Unsupported" and info.value.statusCode == 400
    assert ims.get_security_preference().body.security_preference.verification_preference.verification_types == []

    event = acct.event_for(body.request_id)
    assert (event["eventName"], event["eventRW"], event["serviceName"]) == ("SetSecurityPreference", "Write", "Ims")
    assert event["requestParameters"]["LoginSessionDuration"] == "12"
    assert event["responseElements"]["SecurityPreference"]["LoginProfilePreference"]["LoginSessionDuration"] == 12
    assert acct.event_for(got.request_id)["eventRW"] == "Read"


def test_invalid_values_are_refused(acct: Account) -> None:
    ims = acct.ims()
    cases = [
        (m.SetSecurityPreferenceRequest(login_session_duration=25), "InvalidParameter.LoginSessionDuration"),
        (m.SetSecurityPreferenceRequest(login_session_duration=0), "InvalidParameter.LoginSessionDuration"),
        (m.SetSecurityPreferenceRequest(max_idle_days_for_users=100), "InvalidParameter.MaxIdleDaysForUsers"),
        (m.SetSecurityPreferenceRequest(max_idle_days_for_access_keys=7), "InvalidParameter.MaxIdleDaysForAccessKeys"),
        (
            m.SetSecurityPreferenceRequest(login_network_masks="10.0.0.0/8;not-a-network"),
            "InvalidParameter.LoginNetworkMasks.Format",
        ),
        (
            m.SetSecurityPreferenceRequest(login_network_masks=";".join(f"10.{i}.0.0/16" for i in range(41))),
            "InvalidParameter.LoginNetworkMasks.Length",
        ),
        (
            m.SetSecurityPreferenceRequest(login_network_masks="10.0.0.0/8;" * 60),
            "InvalidParameter.LoginNetworkMasks.Length",
        ),
        (m.SetSecurityPreferenceRequest(mfaoperation_for_login="always"), "InvalidParameter.MFAOperationForLogin"),
        (m.SetSecurityPreferenceRequest(operation_for_risk_login="ignore"), "InvalidParameter.OperationForRiskLogin"),
        (m.SetSecurityPreferenceRequest(verification_types=["fax"]), "InvalidParameter.VerificationTypes"),
    ]
    for request, code in cases:
        err = error_of(lambda: ims.set_security_preference(request))
        assert (err.code, err.statusCode) == (code, 400), (code, err.code)
    assert ims.get_security_preference().body.security_preference.login_profile_preference.login_session_duration == 6
    assert {e["errorCode"] for e in acct.events(EventName="SetSecurityPreference")} == {code for _, code in cases}


def test_access_key_self_service_follows_the_preference(acct: Account) -> None:
    upn, key_id, secret = ram_user(acct, "alice")
    mine = acct.ims(key_id, secret)
    # off by default, as in Alibaba Cloud
    for call in (
        lambda: mine.create_access_key(m.CreateAccessKeyRequest()),
        lambda: mine.list_access_keys(m.ListAccessKeysRequest()),
        lambda: mine.update_access_key(m.UpdateAccessKeyRequest(user_access_key_id=key_id, status="Active")),
        lambda: mine.delete_access_key(m.DeleteAccessKeyRequest(user_access_key_id=key_id)),
    ):
        err = error_of(call)
        assert (err.code, err.statusCode) == ("NoPermission", 403)
        assert err.data["AccessDeniedDetail"]["NoPermissionType"] == "ImplicitDeny"
        assert "security preference AllowUserToManageAccessKeys" in err.message  # what to change, not a policy
    assert {e["eventName"] for e in acct.events(ErrorCode="NoPermission")} == {
        "CreateAccessKey",
        "ListAccessKeys",
        "UpdateAccessKey",
        "DeleteAccessKey",
    }
    # the root is not bound by self-service preferences
    assert (
        len(acct.ims().list_access_keys(m.ListAccessKeysRequest(user_principal_name=upn)).body.access_keys.access_key)
        == 1
    )
    acct.ims().set_security_preference(m.SetSecurityPreferenceRequest(allow_user_to_manage_access_keys=True))
    extra = mine.create_access_key(m.CreateAccessKeyRequest()).body.access_key
    assert {k.access_key_id for k in mine.list_access_keys(m.ListAccessKeysRequest()).body.access_keys.access_key} == {
        key_id,
        extra.access_key_id,
    }
    mine.delete_access_key(m.DeleteAccessKeyRequest(user_access_key_id=extra.access_key_id))
    # still only its own keys
    other = acct.upn("bob")
    acct.ims().create_user(m.CreateUserRequest(user_principal_name=other, display_name="bob"))
    not_mine = error_of(lambda: mine.create_access_key(m.CreateAccessKeyRequest(user_principal_name=other)))
    assert not_mine.code == "NoPermission" and "security preference" not in not_mine.message


def test_password_self_service_follows_the_preference(acct: Account) -> None:
    upn, key_id, secret = ram_user(acct, "carol")
    mine = acct.ims(key_id, secret)
    acct.ims().set_security_preference(m.SetSecurityPreferenceRequest(allow_user_to_change_password=False))
    err = error_of(
        lambda: mine.change_password(m.ChangePasswordRequest(old_password=PASSWORD, new_password="Carol-New-Pass-1"))
    )
    assert (err.code, err.statusCode) == ("NoPermission", 403)
    event = acct.event_for(err.data["RequestId"])
    assert event["errorCode"] == "NoPermission" and event["requestParameters"]["NewPassword"] == "******"
    # reading its own login profile is not affected
    assert (
        mine.get_login_profile(m.GetLoginProfileRequest(user_principal_name=upn)).body.login_profile.status == "Active"
    )
    # a user who must reset its password may always do so, or it could never sign in again
    acct.ims().update_login_profile(m.UpdateLoginProfileRequest(user_principal_name=upn, password_reset_required=True))
    mine.change_password(m.ChangePasswordRequest(old_password=PASSWORD, new_password="Carol-New-Pass-1"))
    err = error_of(
        lambda: mine.change_password(
            m.ChangePasswordRequest(old_password="Carol-New-Pass-1", new_password="Carol-New-Pass-2")
        )
    )
    assert err.code == "NoPermission"
    acct.ims().set_security_preference(m.SetSecurityPreferenceRequest(allow_user_to_change_password=True))
    mine.change_password(m.ChangePasswordRequest(old_password="Carol-New-Pass-1", new_password="Carol-New-Pass-2"))


def test_mfa_self_service_follows_the_preference(acct: Account) -> None:
    upn, key_id, secret = ram_user(acct, "dave")
    mine = acct.ims(key_id, secret)
    acct.ims().set_security_preference(m.SetSecurityPreferenceRequest(allow_user_to_manage_mfadevices=False))
    device = (
        acct.ims()
        .create_virtual_mfadevice(m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="dave-phone"))
        .body.virtual_mfadevice
    )
    otp, now = pyotp.TOTP(device.base_32string_seed), time.time()
    bind = m.BindMFADeviceRequest(
        user_principal_name=upn,
        serial_number=device.serial_number,
        authentication_code_1=otp.at(now - 30),
        authentication_code_2=otp.at(now),
    )
    for call in (
        lambda: mine.create_virtual_mfadevice(m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="mine")),
        lambda: mine.bind_mfadevice(bind),
        lambda: mine.unbind_mfadevice(m.UnbindMFADeviceRequest(user_principal_name=upn)),
        lambda: mine.get_user_mfainfo(m.GetUserMFAInfoRequest()),
        lambda: acct.call("CheckUserMFA", {}, key_id=key_id, secret=secret),
    ):
        err = error_of(call)
        assert (err.code, err.statusCode) == ("NoPermission", 403)
    acct.ims().set_security_preference(m.SetSecurityPreferenceRequest(allow_user_to_manage_mfadevices=True))
    mine.bind_mfadevice(bind)
    assert mine.get_user_mfainfo(m.GetUserMFAInfoRequest()).body.is_mfaenable is True
    assert {e["eventName"] for e in acct.events(ErrorCode="NoPermission")} == {
        "CreateVirtualMFADevice",
        "BindMFADevice",
        "UnbindMFADevice",
        "GetUserMFAInfo",
        "CheckUserMFA",
    }


def test_ram_user_cannot_read_or_change_preferences(acct: Account) -> None:
    _, key_id, secret = ram_user(acct, "erin")
    mine = acct.ims(key_id, secret)
    for call in (
        lambda: mine.get_security_preference(),
        lambda: mine.set_security_preference(m.SetSecurityPreferenceRequest(allow_user_to_manage_access_keys=True)),
    ):
        assert error_of(call).code == "NoPermission"
    assert (
        acct.ims()
        .get_security_preference()
        .body.security_preference.access_key_preference.allow_user_to_manage_access_keys
        is False
    )


def test_idle_access_keys_are_disabled_by_housekeeping(acct: Account) -> None:
    """MaxIdleDaysForAccessKeys: a RAM user's key that signed nothing for longer is disabled by housekeeping,
    on the record as an UpdateAccessKey of the system; a root key is not a RAM user's key and stays."""
    from openims import clock, maintenance

    ims = acct.ims()
    ims.set_security_preference(m.SetSecurityPreferenceRequest(max_idle_days_for_access_keys=90))
    upn = acct.upn("sleepy")
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="s"))
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    rt = acct.server.runtime
    try:
        clock.set_offset(80 * 24 * 3600)
        assert maintenance.enforce(rt)["idle_access_keys"] == 0
        clock.set_offset(91 * 24 * 3600)
        assert maintenance.enforce(rt)["idle_access_keys"] >= 1
    finally:
        clock.set_offset(0)
    listed = ims.list_access_keys(m.ListAccessKeysRequest(user_principal_name=upn)).body.access_keys.access_key
    assert [(k.access_key_id, k.status) for k in listed] == [(key.access_key_id, "Inactive")]
    with pytest.raises(TeaException) as info:
        acct.ims(key.access_key_id, key.access_key_secret).get_user(m.GetUserRequest())
    assert info.value.code == "InvalidAccessKeyId.Inactive"
    assert ims.get_default_domain().body.default_domain_name  # the root key still signs
    # Housekeeping ran 91 days ahead of the server's clock: its event is dated then.
    ahead = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 92 * 24 * 3600))
    found = acct.trail().lookup_events(
        at.LookupEventsRequest(
            end_time=ahead,
            lookup_attribute=[at.LookupEventsRequestLookupAttribute(key="EventName", value="UpdateAccessKey")],
        )
    )
    (event,) = [e for e in found.body.events if e["userIdentity"]["type"] == "system"]
    assert (
        event["resourceName"] == f"{key.access_key_id};{upn}" and upn in event["referencedResources"]["ACS::RAM::User"]
    )
    assert event["additionalEventData"]["reason"] == "MaxIdleDaysForAccessKeys"
    assert event["additionalEventData"]["maxIdleDays"] == 90

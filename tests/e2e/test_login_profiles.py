"""Console logon profiles, the password policy and ChangePassword through the official IMS SDK: the
policy is enforced wherever a password is set, a RAM user changes its own password with its own key,
wrong old passwords lock the password, and no event ever holds a password."""

from __future__ import annotations

import json

import pytest
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from tests.support import Account

PASSWORD = "Initial-Pass-1234"


def error_of(call) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    return info.value


def user_with_profile(acct: Account, name: str, password: str = PASSWORD, **profile: object) -> str:
    upn = acct.upn(name)
    ims = acct.ims()
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=name))
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=password, **profile))
    return upn


def user_key(acct: Account, upn: str) -> tuple[str, str]:
    key = acct.ims().create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    return key.access_key_id, key.access_key_secret


def assert_never_recorded(acct: Account, *secrets: str) -> None:
    everything = json.dumps(acct.events(), ensure_ascii=False)
    for secret in secrets:
        assert secret not in everything


def test_login_profile_lifecycle_is_audited(acct: Account) -> None:
    ims = acct.ims()
    upn = acct.upn("alice")
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="Alice"))
    created = ims.create_login_profile(
        m.CreateLoginProfileRequest(
            user_principal_name=upn, password=PASSWORD, password_reset_required=True, mfabind_required=False
        )
    ).body
    profile = created.login_profile
    assert (profile.user_principal_name, profile.status, profile.password_reset_required, profile.mfabind_required) == (
        upn,
        "Active",
        True,
        False,
    )
    assert profile.password_status == "InitialValid" and profile.update_date.endswith("Z")

    got = ims.get_login_profile(m.GetLoginProfileRequest(user_principal_name=upn)).body.login_profile
    assert got.status == "Active" and got.password_reset_required is True and got.last_login_time == ""
    assert got.auto_disable_login_status == "Enabled" and got.password_status == "InitialValid"

    updated = ims.update_login_profile(
        m.UpdateLoginProfileRequest(
            user_principal_name=upn, status="Inactive", mfabind_required=True, password_reset_required=False
        )
    ).body.login_profile
    assert (updated.status, updated.mfabind_required, updated.password_reset_required) == ("Inactive", True, False)
    reset = ims.update_login_profile(
        m.UpdateLoginProfileRequest(user_principal_name=upn, password="Second-Pass-5678")
    ).body
    assert reset.login_profile.status == "Inactive" and reset.login_profile.password_status == "InitialValid"

    deleted = ims.delete_login_profile(m.DeleteLoginProfileRequest(user_principal_name=upn)).body
    err = error_of(lambda: ims.get_login_profile(m.GetLoginProfileRequest(user_principal_name=upn)))
    assert (err.code, err.statusCode) == ("EntityNotExist.User.LoginProfile", 404)

    event = acct.event_for(created.request_id)
    assert (event["eventName"], event["eventRW"], event["resourceType"], event["resourceName"]) == (
        "CreateLoginProfile",
        "Write",
        "ACS::RAM::User",
        upn,
    )
    assert (
        event["requestParameters"]["Password"] == "******"
        and event["requestParameters"]["PasswordResetRequired"].lower() == "true"
    )
    assert event["responseElements"]["LoginProfile"]["UserPrincipalName"] == upn
    assert acct.event_for(reset.request_id)["requestParameters"]["Password"] == "******"
    assert acct.event_for(deleted.request_id)["eventName"] == "DeleteLoginProfile"
    reads = acct.events(EventName="GetLoginProfile")
    assert [e["eventRW"] for e in reads] == ["Read", "Read"] and reads[0][
        "errorCode"
    ] == "EntityNotExist.User.LoginProfile"
    assert [e["eventName"] for e in acct.events(ResourceName=upn)] == [
        "GetLoginProfile",
        "DeleteLoginProfile",
        "UpdateLoginProfile",
        "UpdateLoginProfile",
        "GetLoginProfile",
        "CreateLoginProfile",
        "CreateUser",
    ]
    assert_never_recorded(acct, PASSWORD, "Second-Pass-5678")


def test_login_profile_errors(acct: Account) -> None:
    ims = acct.ims()
    upn = user_with_profile(acct, "bob")
    nobody = acct.upn("nobody")
    plain = acct.upn("plain")
    ims.create_user(m.CreateUserRequest(user_principal_name=plain, display_name="plain"))
    cases = [
        (
            lambda: ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=PASSWORD)),
            "EntityAlreadyExists.User.LoginProfile",
            409,
        ),
        (
            lambda: ims.create_login_profile(
                m.CreateLoginProfileRequest(user_principal_name=nobody, password=PASSWORD)
            ),
            "EntityNotExist.User",
            404,
        ),
        (
            lambda: ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=plain)),
            "MissingParameter",
            400,
        ),
        (lambda: ims.create_login_profile(m.CreateLoginProfileRequest(password=PASSWORD)), "MissingParameter", 400),
        (
            lambda: ims.create_login_profile(
                m.CreateLoginProfileRequest(user_principal_name=plain, password=PASSWORD, status="Paused")
            ),
            "InvalidParameter.Status",
            400,
        ),
        (
            lambda: ims.create_login_profile(
                m.CreateLoginProfileRequest(user_principal_name=plain, password="short7!")
            ),
            "InvalidParameter.Password.Length",
            400,
        ),
        (
            lambda: ims.update_login_profile(m.UpdateLoginProfileRequest(user_principal_name=plain, status="Active")),
            "EntityNotExist.User.LoginProfile",
            404,
        ),
        (
            lambda: ims.delete_login_profile(m.DeleteLoginProfileRequest(user_principal_name=plain)),
            "EntityNotExist.User.LoginProfile",
            404,
        ),
        (
            lambda: ims.get_login_profile(m.GetLoginProfileRequest(user_principal_name=nobody)),
            "EntityNotExist.User",
            404,
        ),
        (
            lambda: ims.update_login_profile(m.UpdateLoginProfileRequest(user_principal_name=upn, password="x" * 40)),
            "InvalidParameter.Password.Length",
            400,
        ),
    ]
    for call, code, status in cases:
        err = error_of(call)
        assert (err.code, err.statusCode) == (code, status), (code, err.code)
    weak = error_of(
        lambda: ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=plain, password="short7!"))
    )
    assert "short7!" not in weak.message and "8 to 32" in weak.message
    failed = acct.events(EventName="CreateLoginProfile")
    assert {e.get("errorCode") for e in failed} >= {
        "InvalidParameter.Password.Length",
        "EntityAlreadyExists.User.LoginProfile",
    }
    assert all(e["requestParameters"].get("Password") in (None, "******") for e in failed)
    assert_never_recorded(acct, "short7!", "x" * 40, PASSWORD)


def test_password_policy_defaults_update_and_limits(acct: Account) -> None:
    ims = acct.ims()
    policy = ims.get_password_policy().body.password_policy
    assert policy.to_map() == {
        "HardExpire": False,
        "InitialPasswordAge": 14,
        "InterceptRiskPasswordOnApi": False,
        "MaxLoginAttemps": 0,
        "MaxPasswordAge": 0,
        "MinimumPasswordDifferentCharacter": 0,
        "MinimumPasswordLength": 8,
        "PasswordNotContainUserName": False,
        "PasswordReusePrevention": 0,
        "RequireLowercaseCharacters": False,
        "RequireNumbers": False,
        "RequireSymbols": False,
        "RequireUppercaseCharacters": False,
    }
    set_body = ims.set_password_policy(
        m.SetPasswordPolicyRequest(
            minimum_password_length=12,
            require_lowercase_characters=True,
            require_uppercase_characters=True,
            require_numbers=True,
            require_symbols=True,
            password_reuse_prevention=5,
            max_password_age=90,
            hard_expire=True,
            max_login_attemps=5,
            password_not_contain_user_name=True,
            minimum_password_different_character=6,
            initial_password_age=7,
            intercept_risk_password_on_api=True,
        )
    ).body
    assert set_body.password_policy.minimum_password_length == 12 and set_body.password_policy.max_login_attemps == 5
    # a partial update keeps the other fields
    ims.set_password_policy(m.SetPasswordPolicyRequest(max_password_age=0, hard_expire=False))
    got = ims.get_password_policy().body.password_policy
    assert (
        got.minimum_password_length,
        got.max_password_age,
        got.hard_expire,
        got.password_reuse_prevention,
        got.initial_password_age,
        got.intercept_risk_password_on_api,
    ) == (12, 0, False, 5, 7, True)
    for request, code in [
        (m.SetPasswordPolicyRequest(minimum_password_length=7), "InvalidParameter.MinimumPasswordLength"),
        (m.SetPasswordPolicyRequest(minimum_password_length=33), "InvalidParameter.MinimumPasswordLength"),
        (m.SetPasswordPolicyRequest(password_reuse_prevention=25), "InvalidParameter.PasswordReusePrevention"),
        (m.SetPasswordPolicyRequest(max_password_age=1096), "InvalidParameter.MaxPasswordAge"),
        (m.SetPasswordPolicyRequest(max_login_attemps=33), "InvalidParameter.MaxLoginAttemps"),
        (
            m.SetPasswordPolicyRequest(minimum_password_different_character=9),
            "InvalidParameter.MinimumPasswordDifferentCharacter",
        ),
        (m.SetPasswordPolicyRequest(initial_password_age=91), "InvalidParameter.InitialPasswordAge"),
    ]:
        err = error_of(lambda: ims.set_password_policy(request))
        assert (err.code, err.statusCode) == (code, 400)
    assert ims.get_password_policy().body.password_policy.minimum_password_length == 12
    event = acct.event_for(set_body.request_id)
    assert (event["eventName"], event["eventRW"]) == ("SetPasswordPolicy", "Write")
    assert event["requestParameters"]["MinimumPasswordLength"] == "12"
    assert event["responseElements"]["PasswordPolicy"]["MaxLoginAttemps"] == 5
    assert acct.events(EventName="GetPasswordPolicy")[0]["eventRW"] == "Read"
    # a RAM user cannot read or change the policy without a grant
    upn = user_with_profile(acct, "reader", "Rdr-Pass-1234!xyz")
    key_id, secret = user_key(acct, upn)
    for call in (
        lambda: acct.ims(key_id, secret).get_password_policy(),
        lambda: acct.ims(key_id, secret).set_password_policy(m.SetPasswordPolicyRequest(minimum_password_length=8)),
    ):
        assert error_of(call).code == "NoPermission"


def test_policy_is_enforced_wherever_a_password_is_set(acct: Account) -> None:
    ims = acct.ims()
    ims.set_password_policy(
        m.SetPasswordPolicyRequest(
            minimum_password_length=10,
            require_lowercase_characters=True,
            require_uppercase_characters=True,
            require_numbers=True,
            require_symbols=True,
            password_not_contain_user_name=True,
            minimum_password_different_character=6,
            intercept_risk_password_on_api=True,
            password_reuse_prevention=2,
        )
    )
    upn = acct.upn("carol")
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="Carol"))
    weak = {
        "Short-1a": "Length",
        "NOLOWER-123": "Lowercase",
        "noupper-123": "Uppercase",
        "No-Digits-Here": "Numbers",
        "NoSymbols1234": "Symbols",
        "Aa1!Aa1!Aa1!": "DifferentCharacters",
        "xCarol-2931!": "ContainsUserName",
        "Password123!": "Risky",
    }
    for password, rule in weak.items():
        err = error_of(
            lambda: ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=password))
        )
        assert (err.code, err.statusCode) == (f"InvalidParameter.Password.{rule}", 400), password
        assert password not in err.message
    first = "Good-Pass-1234"
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=first))
    err = error_of(
        lambda: ims.update_login_profile(m.UpdateLoginProfileRequest(user_principal_name=upn, password="NOLOWER-123"))
    )
    assert err.code == "InvalidParameter.Password.Lowercase"

    key_id, secret = user_key(acct, upn)
    mine = acct.ims(key_id, secret)
    err = error_of(
        lambda: mine.change_password(m.ChangePasswordRequest(old_password=first, new_password="noupper-123"))
    )
    assert (err.code, err.statusCode) == ("InvalidParameter.NewPassword.Uppercase", 400)
    # PasswordReusePrevention=2: the last two passwords are refused, older ones are fine
    second, third = "Second-Pass-5678", "Third-Pass-9012"
    mine.change_password(m.ChangePasswordRequest(old_password=first, new_password=second))
    err = error_of(lambda: mine.change_password(m.ChangePasswordRequest(old_password=second, new_password=first)))
    assert (err.code, err.statusCode) == ("InvalidParameter.NewPassword.Reused", 400)
    mine.change_password(m.ChangePasswordRequest(old_password=second, new_password=third))
    mine.change_password(m.ChangePasswordRequest(old_password=third, new_password=first))
    err = error_of(
        lambda: ims.update_login_profile(m.UpdateLoginProfileRequest(user_principal_name=upn, password=third))
    )
    assert err.code == "InvalidParameter.Password.Reused"
    assert_never_recorded(acct, first, second, third, *weak)


def test_ram_user_changes_its_own_password(acct: Account) -> None:
    ims = acct.ims()
    upn = user_with_profile(acct, "dave", password_reset_required=True)
    other = user_with_profile(acct, "erin")
    key_id, secret = user_key(acct, upn)
    mine = acct.ims(key_id, secret)
    own = mine.get_login_profile(m.GetLoginProfileRequest(user_principal_name=upn)).body.login_profile
    assert own.password_reset_required is True and own.password_status == "InitialValid"
    changed = mine.change_password(
        m.ChangePasswordRequest(old_password=PASSWORD, new_password="Dave-Chose-This-1")
    ).body
    own = mine.get_login_profile(m.GetLoginProfileRequest(user_principal_name=upn)).body.login_profile
    assert own.password_reset_required is False and own.password_status == "NotInitial"
    event = acct.event_for(changed.request_id)
    assert (event["eventName"], event["eventRW"], event["resourceType"], event["resourceName"]) == (
        "ChangePassword",
        "Write",
        "ACS::RAM::User",
        upn,
    )
    assert event["userIdentity"]["type"] == "ram-user" and event["userIdentity"]["accessKeyId"] == key_id
    assert event["requestParameters"] == {"OldPassword": "******", "NewPassword": "******"}

    for call, code, status in [
        (
            lambda: mine.change_password(
                m.ChangePasswordRequest(old_password="Not-My-Pass-1", new_password="Whatever-Pass-2")
            ),
            "InvalidParameter.OldPassword.Mismatch",
            400,
        ),
        (
            lambda: mine.change_password(
                m.ChangePasswordRequest(old_password="Dave-Chose-This-1", new_password="Dave-Chose-This-1")
            ),
            "InvalidParameter.NewPassword.SameAsOld",
            400,
        ),
        (
            lambda: mine.change_password(m.ChangePasswordRequest(old_password="Dave-Chose-This-1")),
            "MissingParameter",
            400,
        ),
        (lambda: mine.get_login_profile(m.GetLoginProfileRequest(user_principal_name=other)), "NoPermission", 403),
        (
            lambda: mine.update_login_profile(m.UpdateLoginProfileRequest(user_principal_name=upn, status="Inactive")),
            "NoPermission",
            403,
        ),
        (
            lambda: mine.create_login_profile(
                m.CreateLoginProfileRequest(user_principal_name=other, password=PASSWORD)
            ),
            "NoPermission",
            403,
        ),
        (
            lambda: ims.change_password(
                m.ChangePasswordRequest(old_password=PASSWORD, new_password="Root-Tries-This-1")
            ),
            "InvalidParameter.Principal.NotRamUser",
            400,
        ),
    ]:
        err = error_of(call)
        assert (err.code, err.statusCode) == (code, status), code
    # a user without console logon has no password to change
    bare = acct.upn("bare")
    ims.create_user(m.CreateUserRequest(user_principal_name=bare, display_name="bare"))
    bare_id, bare_secret = user_key(acct, bare)
    err = error_of(
        lambda: acct.ims(bare_id, bare_secret).change_password(
            m.ChangePasswordRequest(old_password="Anything-123", new_password="Anything-456")
        )
    )
    assert (err.code, err.statusCode) == ("EntityNotExist.User.LoginProfile", 404)
    assert_never_recorded(acct, PASSWORD, "Dave-Chose-This-1", "Not-My-Pass-1", "Whatever-Pass-2", "Root-Tries-This-1")


def test_wrong_old_passwords_lock_the_password(acct: Account) -> None:
    ims = acct.ims()
    ims.set_password_policy(m.SetPasswordPolicyRequest(max_login_attemps=3))
    upn = user_with_profile(acct, "frank")
    key_id, secret = user_key(acct, upn)
    mine = acct.ims(key_id, secret)
    for i in range(3):
        err = error_of(
            lambda: mine.change_password(
                m.ChangePasswordRequest(old_password=f"Guess-Number-{i}", new_password="Frank-New-Pass-1")
            )
        )
        assert err.code == "InvalidParameter.OldPassword.Mismatch"
    # now even the right password is refused until the lockout ends (or an administrator resets it)
    err = error_of(
        lambda: mine.change_password(m.ChangePasswordRequest(old_password=PASSWORD, new_password="Frank-New-Pass-1"))
    )
    assert (err.code, err.statusCode) == ("Forbidden.LoginProfile.Locked", 403)
    failures = [e["errorCode"] for e in acct.events(EventName="ChangePassword")]
    assert failures == ["Forbidden.LoginProfile.Locked"] + ["InvalidParameter.OldPassword.Mismatch"] * 3
    ims.update_login_profile(m.UpdateLoginProfileRequest(user_principal_name=upn, status="Active"))
    mine.change_password(m.ChangePasswordRequest(old_password=PASSWORD, new_password="Frank-New-Pass-1"))
    # below the limit, a success resets the count
    ims.set_password_policy(m.SetPasswordPolicyRequest(max_login_attemps=2))
    error_of(
        lambda: mine.change_password(
            m.ChangePasswordRequest(old_password="Guess-Again-1", new_password="Frank-New-Pass-2")
        )
    )
    mine.change_password(m.ChangePasswordRequest(old_password="Frank-New-Pass-1", new_password="Frank-New-Pass-2"))
    error_of(
        lambda: mine.change_password(
            m.ChangePasswordRequest(old_password="Guess-Again-2", new_password="Frank-New-Pass-3")
        )
    )
    mine.change_password(m.ChangePasswordRequest(old_password="Frank-New-Pass-2", new_password="Frank-New-Pass-3"))
    assert_never_recorded(acct, PASSWORD, "Frank-New-Pass-1", "Frank-New-Pass-2", "Guess-Number-0")


def test_turning_the_lockout_off_lifts_the_locks_it_made(acct: Account) -> None:
    ims = acct.ims()
    ims.set_password_policy(m.SetPasswordPolicyRequest(max_login_attemps=2))
    upn = user_with_profile(acct, "gwen")
    mine = acct.ims(*user_key(acct, upn))
    for i in range(2):
        error_of(
            lambda: mine.change_password(
                m.ChangePasswordRequest(old_password=f"Guess-Number-{i}", new_password="Gwen-New-Pass-1")
            )
        )
    err = error_of(
        lambda: mine.change_password(m.ChangePasswordRequest(old_password=PASSWORD, new_password="Gwen-New-Pass-1"))
    )
    assert err.code == "Forbidden.LoginProfile.Locked"
    # Another setting keeps the lock; MaxLoginAttemps 0 (no lockout) lifts it.
    ims.set_password_policy(m.SetPasswordPolicyRequest(minimum_password_length=10))
    err = error_of(
        lambda: mine.change_password(m.ChangePasswordRequest(old_password=PASSWORD, new_password="Gwen-New-Pass-1"))
    )
    assert err.code == "Forbidden.LoginProfile.Locked"
    ims.set_password_policy(m.SetPasswordPolicyRequest(max_login_attemps=0))
    mine.change_password(m.ChangePasswordRequest(old_password=PASSWORD, new_password="Gwen-New-Pass-1"))

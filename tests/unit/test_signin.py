"""Console sign-in (`openims.signin.ram_user.authenticate_password`) against a real Runtime on a temporary SQLite
data dir: every rule it applies, and the ConsoleSignin event it records with the state it changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from openims import accounts, clock, config, ids
from openims.accounts import NewAccount
from openims.actions.table import ACTIONS
from openims.api import dispatch
from openims.api.protocol import RpcRequest
from openims.params import parse_all
from openims.principal import ROOT, Principal
from openims.runtime import Runtime, open_runtime
from openims.signin import ram_user
from openims.store.schema import events, users

PASSWORD = "Correct-Horse-42"
DAY_S = 24 * 3600


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = open_runtime(
        config.Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 's.db'}"), create=True
    )
    yield runtime
    clock.set_offset(0)
    clock.freeze(None)
    runtime.close()


@pytest.fixture
def acct(rt: Runtime) -> NewAccount:
    return accounts.create_account(rt, "signin-" + ids.request_id()[:8].lower())


def call(rt: Runtime, acct: NewAccount, action: str, params: dict[str, str]) -> dict[str, Any]:
    """An API call by the account's root, the way the server runs it (validated, authorized, audited)."""
    declared = ACTIONS.lookup("2019-08-15", action)
    assert declared is not None
    req = RpcRequest(
        "POST", "/", "", b"", {}, params, action, "2019-08-15", "127.0.0.1", "unit-test", "localhost", ids.request_id()
    )
    root = Principal(acct.account_id, ROOT, acct.account_id, "root", acct.access_key_id)
    return dispatch.run(rt, declared, parse_all(declared.params, params), req, root)


def make_user(rt: Runtime, acct: NewAccount, name: str = "alice", **profile: str) -> str:
    upn = f"{name}@{accounts.default_domain(acct.alias)}"
    call(rt, acct, "CreateUser", {"UserPrincipalName": upn, "DisplayName": name})
    call(rt, acct, "CreateLoginProfile", {"UserPrincipalName": upn, "Password": PASSWORD, **profile})
    return upn


def login(
    rt: Runtime, acct: NewAccount, upn: str, password: str = PASSWORD, code: str | None = None, ip: str = "198.51.100.7"
) -> ram_user.SigninResult:
    return ram_user.authenticate_password(rt, acct.alias, upn, password, code, ip, "Mozilla/5.0 (unit test)")


def event_of(rt: Runtime, result: ram_user.SigninResult) -> dict[str, Any]:
    with rt.db.read() as conn:
        body = conn.execute(select(events.c.body).where(events.c.event_id == result.event_id)).scalar_one()
    return json.loads(body)


def all_event_text(rt: Runtime) -> str:
    with rt.db.read() as conn:
        return "\n".join(conn.execute(select(events.c.body)).scalars())


def test_success_records_the_logon(rt: Runtime, acct: NewAccount) -> None:
    upn = make_user(rt, acct)
    result = login(rt, acct, upn)
    assert result.success and result.user_principal_name == upn and result.account_id == acct.account_id
    assert not (
        result.mfa_checked or result.mfa_bind_required or result.password_change_required or result.mfa_required
    )
    assert result.session_duration_s == 6 * 3600 and result.error_code is None
    event = event_of(rt, result)
    assert (
        event["eventName"] == "ConsoleSignin" and event["eventType"] == "ConsoleSignin" and event["eventRW"] == "Write"
    )
    assert event["serviceName"] == "AasSub" and event["sourceIpAddress"] == "198.51.100.7"
    assert event["userAgent"] == "Mozilla/5.0 (unit test)" and "errorCode" not in event
    assert event["userIdentity"]["type"] == "ram-user" and event["userIdentity"]["userName"] == upn
    assert event["userIdentity"]["principalId"] == result.user_id
    assert event["resourceType"] == "ACS::RAM::User" and event["resourceName"] == upn
    extra = event["additionalEventData"]
    assert extra["loginAccount"] == upn and extra["MFAChecked"] == "false" and extra["isMFAChecked"] == "false"
    assert extra["LoginResult"] == "success"
    assert PASSWORD not in all_event_text(rt)
    profile = call(rt, acct, "GetLoginProfile", {"UserPrincipalName": upn})["LoginProfile"]
    assert profile["LastLoginTime"] == event["eventTime"]
    with rt.db.read() as conn:
        assert conn.execute(select(users.c.last_login_ms).where(users.c.upn == upn)).scalar_one() is not None
    # the account may be named by ID too, and the user by bare name
    assert ram_user.authenticate_password(rt, acct.account_id, "alice", PASSWORD, None, "::1", "ua").success
    principal = result.session_principal()
    assert principal.event_type == "ConsoleOperation" and principal.user_name == upn and not principal.mfa_authenticated


def test_wrong_password_unknown_user_and_unknown_account(rt: Runtime, acct: NewAccount) -> None:
    upn = make_user(rt, acct)
    wrong = login(rt, acct, upn, "Not-The-Password-1")
    assert not wrong.success and wrong.error_code == ram_user.INVALID_CREDENTIALS
    event = event_of(rt, wrong)
    assert (
        event["errorCode"] == "InvalidCredentials"
        and event["errorMessage"] == "The login name or password is incorrect."
    )
    assert event["additionalEventData"]["LoginResult"] == "fail"
    nobody = login(rt, acct, "mallory@" + accounts.default_domain(acct.alias))
    assert nobody.error_code == ram_user.INVALID_CREDENTIALS and nobody.error_message == wrong.error_message
    assert event_of(rt, nobody)["userIdentity"]["userName"].startswith("mallory@")
    other_domain = login(rt, acct, "alice@elsewhere.example.com")
    assert other_domain.error_code == ram_user.INVALID_CREDENTIALS
    # a user without a login profile cannot sign in either
    call(
        rt,
        acct,
        "CreateUser",
        {"UserPrincipalName": "bob@" + accounts.default_domain(acct.alias), "DisplayName": "Bob"},
    )
    assert login(rt, acct, "bob@" + accounts.default_domain(acct.alias)).error_code == ram_user.INVALID_CREDENTIALS
    unknown = ram_user.authenticate_password(rt, "no-such-account", upn, PASSWORD, None, "127.0.0.1", "ua")
    assert not unknown.success and unknown.event_id is None
    text = all_event_text(rt)
    assert "Not-The-Password-1" not in text and PASSWORD not in text


def test_lockout_after_max_login_attempts_within_an_hour(rt: Runtime, acct: NewAccount) -> None:
    upn = make_user(rt, acct)
    call(rt, acct, "SetPasswordPolicy", {"MaxLoginAttemps": "3"})
    clock.freeze(clock.now())  # one-second boundaries below: slow argon2 checks must not move them
    # two failures, then the hour passes: the count starts again
    for _ in range(2):
        assert login(rt, acct, upn, "wrong-password-1").error_code == ram_user.INVALID_CREDENTIALS
    clock.set_offset(3601)
    for _ in range(2):
        assert login(rt, acct, upn, "wrong-password-2").error_code == ram_user.INVALID_CREDENTIALS
    assert login(rt, acct, upn).success  # a success resets the count
    for _ in range(2):
        login(rt, acct, upn, "wrong-password-3")
    third = login(rt, acct, upn, "wrong-password-3")
    assert third.error_code == ram_user.INVALID_CREDENTIALS and "locked" in (third.error_message or "")
    locked = login(rt, acct, upn)
    assert locked.error_code == ram_user.LOCKED and not locked.success
    assert event_of(rt, locked)["errorCode"] == "LoginProfile.Locked"
    clock.set_offset(3601 + 3599)
    assert login(rt, acct, upn).error_code == ram_user.LOCKED
    clock.set_offset(3601 + 3601)
    assert login(rt, acct, upn).success
    # an administrator's password reset lifts a lockout at once
    for _ in range(3):
        login(rt, acct, upn, "wrong-password-4")
    assert login(rt, acct, upn).error_code == ram_user.LOCKED
    call(rt, acct, "UpdateLoginProfile", {"UserPrincipalName": upn, "Password": "Brand-New-Pass-7"})
    assert login(rt, acct, upn, "Brand-New-Pass-7").success


def test_password_expiry_soft_and_hard_and_initial(rt: Runtime, acct: NewAccount) -> None:
    upn = make_user(rt, acct)
    call(rt, acct, "SetPasswordPolicy", {"MaxPasswordAge": "30", "InitialPasswordAge": "0"})
    clock.set_offset(31 * DAY_S)
    soft = login(rt, acct, upn)
    assert soft.success and soft.password_change_required
    assert event_of(rt, soft)["additionalEventData"]["PasswordChangeRequired"] is True
    call(rt, acct, "SetPasswordPolicy", {"HardExpire": "true"})
    hard = login(rt, acct, upn)
    assert not hard.success and hard.error_code == ram_user.PASSWORD_EXPIRED
    # the initial password's own age
    clock.set_offset(0)
    other = make_user(rt, acct, "carol")
    call(rt, acct, "SetPasswordPolicy", {"InitialPasswordAge": "7", "MaxPasswordAge": "0"})
    clock.set_offset(8 * DAY_S)
    assert login(rt, acct, other).error_code == ram_user.INITIAL_EXPIRED
    assert (
        call(rt, acct, "GetLoginProfile", {"UserPrincipalName": other})["LoginProfile"]["PasswordStatus"]
        == "InitialExpired"
    )


def test_forced_reset_inactive_profile_and_idle_users(rt: Runtime, acct: NewAccount) -> None:
    upn = make_user(rt, acct, PasswordResetRequired="true")
    reset = login(rt, acct, upn)
    assert reset.success and reset.password_change_required
    call(rt, acct, "UpdateLoginProfile", {"UserPrincipalName": upn, "Status": "Inactive"})
    assert login(rt, acct, upn).error_code == ram_user.LOGIN_DISABLED
    # a wrong password on an inactive profile says nothing about the profile
    assert login(rt, acct, upn, "guess-guess-1").error_code == ram_user.INVALID_CREDENTIALS
    call(rt, acct, "UpdateLoginProfile", {"UserPrincipalName": upn, "Status": "Active"})
    call(rt, acct, "SetSecurityPreference", {"MaxIdleDaysForUsers": "90"})
    call(rt, acct, "SetPasswordPolicy", {"InitialPasswordAge": "0"})
    clock.set_offset(91 * DAY_S)
    idle = login(rt, acct, upn)
    assert idle.error_code == ram_user.IDLE_DISABLED
    assert call(rt, acct, "GetLoginProfile", {"UserPrincipalName": upn})["LoginProfile"]["Status"] == "Inactive"


def test_login_network_masks_and_session_duration(rt: Runtime, acct: NewAccount) -> None:
    upn = make_user(rt, acct)
    call(
        rt,
        acct,
        "SetSecurityPreference",
        {"LoginNetworkMasks": "10.0.0.0/8;2001:db8::/32", "LoginSessionDuration": "2"},
    )
    outside = login(rt, acct, upn, ip="198.51.100.7")
    assert outside.error_code == ram_user.NETWORK_DENIED
    assert login(rt, acct, upn, "wrong-wrong-1", ip="198.51.100.7").error_code == ram_user.NETWORK_DENIED
    inside = login(rt, acct, upn, ip="10.20.30.40")
    assert inside.success and inside.session_duration_s == 2 * 3600
    assert login(rt, acct, upn, ip="2001:db8::1").success
    assert login(rt, acct, upn, ip="not-an-ip").error_code == ram_user.NETWORK_DENIED


def test_mfa_bind_required_and_mandatory(rt: Runtime, acct: NewAccount) -> None:
    upn = make_user(rt, acct, MFABindRequired="true")
    result = login(rt, acct, upn)
    assert result.success and result.mfa_bind_required and not result.mfa_checked
    other = make_user(rt, acct, "dave")
    assert not login(rt, acct, other).mfa_bind_required
    call(rt, acct, "SetSecurityPreference", {"MFAOperationForLogin": "mandatory"})
    assert login(rt, acct, other).mfa_bind_required


def test_mfa_code_is_required_verified_and_never_replayed(rt: Runtime, acct: NewAccount) -> None:
    upn = make_user(rt, acct)
    device = call(rt, acct, "CreateVirtualMFADevice", {"VirtualMFADeviceName": "phone"})["VirtualMFADevice"]
    seed = device["Base32StringSeed"]
    otp = pyotp.TOTP(seed)
    now = clock.now()
    call(
        rt,
        acct,
        "BindMFADevice",
        {
            "UserPrincipalName": upn,
            "SerialNumber": device["SerialNumber"],
            "AuthenticationCode1": otp.at(now - 30),
            "AuthenticationCode2": otp.at(now),
        },
    )
    ask = login(rt, acct, upn)
    assert not ask.success and ask.mfa_required and ask.error_code == ram_user.MFA_REQUIRED
    assert event_of(rt, ask)["additionalEventData"]["LoginResult"] == "MFARequired"
    # wrong password with MFA: still a wrong password, no hint about MFA
    assert login(rt, acct, upn, "wrong-pass-99", otp.at(now)).error_code == ram_user.INVALID_CREDENTIALS
    wrong_code = "000000" if otp.at(now) != "000000" else "111111"
    assert login(rt, acct, upn, code=wrong_code).error_code == ram_user.MFA_INVALID
    # the code used to bind the device cannot sign in
    replay = login(rt, acct, upn, code=otp.at(now))
    assert replay.error_code == ram_user.MFA_REUSED and not replay.success
    fresh = otp.at(now + 30)
    ok = login(rt, acct, upn, code=fresh)
    assert ok.success and ok.mfa_checked and ok.session_principal().mfa_authenticated
    event = event_of(rt, ok)
    assert (
        event["additionalEventData"]["MFAChecked"] == "true" and event["additionalEventData"]["isMFAChecked"] == "true"
    )
    assert event["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"] == "true"
    again = login(rt, acct, upn, code=fresh)
    assert again.error_code == ram_user.MFA_REUSED
    text = all_event_text(rt)
    assert seed not in text and fresh not in text and PASSWORD not in text


def test_wrong_mfa_codes_count_toward_the_lockout(rt: Runtime, acct: NewAccount) -> None:
    upn = make_user(rt, acct)
    call(rt, acct, "SetPasswordPolicy", {"MaxLoginAttemps": "2"})
    device = call(rt, acct, "CreateVirtualMFADevice", {"VirtualMFADeviceName": "token"})["VirtualMFADevice"]
    otp = pyotp.TOTP(device["Base32StringSeed"])
    now = clock.now()
    call(
        rt,
        acct,
        "BindMFADevice",
        {
            "UserPrincipalName": upn,
            "SerialNumber": device["SerialNumber"],
            "AuthenticationCode1": otp.at(now - 30),
            "AuthenticationCode2": otp.at(now),
        },
    )
    bad = [c for c in ("000000", "111111", "222222") if c not in (otp.at(now - 30), otp.at(now), otp.at(now + 30))][:2]
    for code in bad:
        login(rt, acct, upn, code=code)
    assert login(rt, acct, upn, code=otp.at(now + 30)).error_code == ram_user.LOCKED

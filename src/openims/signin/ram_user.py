"""Console sign-in of RAM users with a password (and a TOTP code when MFA applies).

`authenticate_password` applies, in order: user SSO (an account with SAML SSO on refuses every RAM user's
password, unchecked), LoginNetworkMasks, the MaxLoginAttemps lockout, the password, the login profile's and
user's status, MaxIdleDaysForUsers, the initial password's age, MaxPasswordAge
(HardExpire refuses; otherwise a change is required), PasswordResetRequired, and MFA (a bound device needs
a fresh code, or a saved MFA ticket of that device when EnableSaveMFATicket is on; MFABindRequired or
MFAOperationForLogin=mandatory without a device means the session may only bind one). It records one
`ConsoleSignin` event in the same transaction as the state it changes (failed-attempt counter, lockout,
last logon time).

Lockout: MaxLoginAttemps wrong passwords or MFA codes (and wrong OldPassword in ChangePassword) within
one hour of the first of them lock the password for one hour (signin/lockout.py); a successful sign-in, a
password change or an administrator's UpdateLoginProfile (Password or Status) resets the count.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Row, func, or_, select, update

from openims import accounts, clock
from openims.actions.mfa import bound_device, check_code
from openims.actions.security_preference import load_preferences
from openims.actions.sso import sso_required
from openims.audit import outside_api
from openims.audit.event import Origin
from openims.credentials import passwords
from openims.credentials.totp import Verdict
from openims.crypto import verify_password
from openims.params import has_control
from openims.principal import RAM_USER, Principal
from openims.runtime import Runtime
from openims.signin import lockout, mfa_tickets
from openims.store.schema import accounts as accounts_table
from openims.store.schema import users
from openims.store.tables.credentials import login_profiles

log = logging.getLogger("openims.signin.ram_user")

USER = "ACS::RAM::User"

# Outcome codes (SigninResult.error_code and the event's errorCode).
INVALID_CREDENTIALS = "InvalidCredentials"
NETWORK_DENIED = "LoginNetworkDenied"
LOCKED = "LoginProfile.Locked"
LOGIN_DISABLED = "LoginProfile.Inactive"
USER_DISABLED = "User.Inactive"
IDLE_DISABLED = "LoginProfile.IdleDisabled"
INITIAL_EXPIRED = "Password.InitialExpired"
PASSWORD_EXPIRED = "Password.Expired"
MFA_REQUIRED = "MFA.CodeRequired"
MFA_INVALID = "MFA.InvalidCode"
MFA_REUSED = "MFA.CodeReused"
SSO_REQUIRED = "LoginProfile.SsoRequired"
# One message for an unknown user and a wrong password, so neither reveals which names exist.
_WRONG = "The login name or password is incorrect."


@dataclass(frozen=True)
class SigninResult:
    """What the console needs to start (or refuse) a session."""

    success: bool
    account_id: str | None = None
    user_id: str | None = None
    user_principal_name: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    # The password was right and a device is bound: ask for a code and call again with it.
    mfa_required: bool = False
    mfa_checked: bool = False
    # Signed in, but the session may only bind an MFA device / change the password until that is done.
    mfa_bind_required: bool = False
    password_change_required: bool = False
    session_duration_s: int = 0
    enable_save_mfa_ticket: bool = False
    # The token of the MFA ticket issued by this sign-in, for the browser only: never logged, shown or recorded.
    mfa_ticket: str | None = field(default=None, repr=False)
    event_id: str | None = None

    def session_principal(self, created_ms: int | None = None) -> Principal:
        """The principal of the console session this sign-in opens (its calls are ConsoleOperation events)."""
        if not self.success or not (self.account_id and self.user_id and self.user_principal_name):
            raise ValueError("no session: the sign-in failed")
        return Principal(
            account_id=self.account_id,
            kind=RAM_USER,
            principal_id=self.user_id,
            user_name=self.user_principal_name,
            user_id=self.user_id,
            mfa_authenticated=self.mfa_checked,
            event_type="ConsoleOperation",
            session_created_ms=created_ms or clock.now_ms(),
        )


def record_failed_attempt(conn: Connection, account_id: str, user_id: str, now_ms: int) -> bool:
    """Count a wrong password or code; returns True when this attempt locked the login profile."""
    policy = passwords.load_policy(conn, account_id)
    profile = conn.execute(select(login_profiles).where(login_profiles.c.user_id == user_id).with_for_update()).first()
    if profile is None or policy.max_login_attemps <= 0 or lockout.locked_until(profile, now_ms):
        return False
    values, locked = lockout.RAM_USER.after_failure(profile, now_ms, policy.max_login_attemps)
    conn.execute(update(login_profiles).where(login_profiles.c.user_id == user_id).values(**values))
    return locked


def _account(conn: Connection, account: str) -> Row[Any] | None:
    if has_control(account):
        return None
    return conn.execute(
        select(accounts_table).where(or_(accounts_table.c.id == account, accounts_table.c.alias == account.lower()))
    ).first()


def _user(conn: Connection, account_id: str, login_name: str) -> Row[Any] | None:
    name, at, domain = login_name.partition("@")
    if has_control(login_name):
        return None
    if at and domain.lower() not in [d.lower() for d in accounts.user_domains(conn, account_id)]:
        return None
    return conn.execute(
        select(users).where(
            users.c.account_id == account_id, users.c.deleted_ms.is_(None), func.lower(users.c.name) == name.lower()
        )
    ).first()


@dataclass
class _Attempt:
    """The facts of one sign-in attempt, filled in as the checks run."""

    account_id: str
    login_name: str
    user: Row[Any] | None = None
    mfa_checked: bool = False
    mfa_ticket_used: bool = False


def authenticate_password(
    rt: Runtime,
    account: str,
    login_name: str,
    password: str,
    mfa_code: str | None,
    source_ip: str,
    user_agent: str,
    *,
    scheme: str = "https",
    mfa_tickets_presented: Collection[str] = (),
    save_mfa_ticket: bool = False,
) -> SigninResult:
    """Check a RAM user's console sign-in (account ID or alias, UserPrincipalName or bare user name) and
    record its ConsoleSignin event. Never raises for a wrong credential: the result says what happened.
    `mfa_tickets_presented`: the saved MFA tickets the browser holds (any user's); `save_mfa_ticket`: issue
    one (result.mfa_ticket) when a code is verified and the account's EnableSaveMFATicket allows it."""
    now = clock.now_ms()
    verified_hash, password_ok = _verify_first(rt, account, login_name, password)
    with rt.db.transaction() as conn:
        acct = _account(conn, account)
        if acct is None:
            log.info("console sign-in to unknown account from %s", source_ip)
            return SigninResult(False, error_code=INVALID_CREDENTIALS, error_message=_WRONG)
        # In line with the account's other writes: a DeleteUser or a preference turned off meanwhile either
        # sees the ticket this sign-in issues (and deletes it) or is seen by it.
        rt.db.serialize_account(conn, acct.id)
        attempt = _Attempt(acct.id, login_name[:128])

        def fail(code: str, message: str, **extra: Any) -> SigninResult:
            result = SigninResult(
                False,
                acct.id,
                attempt.user.id if attempt.user else None,
                attempt.user.upn if attempt.user else None,
                code,
                message,
                **extra,
            )
            return _recorded(rt, conn, attempt, result, source_ip, user_agent, scheme, now)

        attempt.user = _user(conn, acct.id, login_name)
        profile = None
        if attempt.user is not None:
            profile = conn.execute(
                select(login_profiles).where(login_profiles.c.user_id == attempt.user.id).with_for_update()
            ).first()
        prefs = load_preferences(conn, acct.id)
        if sso_required(conn, acct.id):
            # Whatever the name and password: neither is checked, so the answer tells nothing about them.
            return fail(
                SSO_REQUIRED,
                "This account signs its RAM users in through its identity provider (SAML SSO): "
                'use "Sign in with your identity provider".',
            )
        if profile is None:
            return fail(INVALID_CREDENTIALS, _WRONG)
        user = attempt.user
        assert user is not None
        if not prefs.allows_login_from(source_ip):
            return fail(NETWORK_DENIED, "Console logon is not allowed from this network (LoginNetworkMasks).")
        until = lockout.locked_until(profile, now)
        if until:
            return fail(LOCKED, f"Too many failed attempts: console logon is locked until {clock.iso(until)}.")
        if profile.password_hash != verified_hash:  # changed since it was checked: check again
            password_ok = verify_password(profile.password_hash, password)
        if not password_ok:
            return fail(INVALID_CREDENTIALS, _wrong_attempt(conn, acct.id, user.id, now))
        if profile.status != "Active":
            return fail(LOGIN_DISABLED, "Console logon is disabled for this user.")
        if user.status != "active":
            return fail(USER_DISABLED, "The user is disabled.")
        last_active = user.last_login_ms or profile.created_ms
        if prefs.max_idle_days_for_users and now - last_active > prefs.max_idle_days_for_users * clock.DAY_MS:
            conn.execute(
                update(login_profiles)
                .where(login_profiles.c.user_id == user.id)
                .values(status="Inactive", updated_ms=now)
            )
            return fail(
                IDLE_DISABLED,
                f"Console logon was disabled: no logon for over {prefs.max_idle_days_for_users} days "
                "(MaxIdleDaysForUsers). An administrator must enable it again.",
            )
        policy = passwords.load_policy(conn, acct.id)
        status = passwords.password_status(policy, profile.password_initial, profile.password_set_ms, now)
        if status == "InitialExpired":
            return fail(
                INITIAL_EXPIRED,
                "The initial password has expired (InitialPasswordAge): an administrator must reset it.",
            )
        expired = passwords.is_expired(policy, profile.password_set_ms, now)
        if expired and policy.hard_expire:
            return fail(
                PASSWORD_EXPIRED,
                "The password has expired (MaxPasswordAge, HardExpire): an administrator must reset it.",
            )
        device = bound_device(conn, user.id)
        bind_required = False
        ticket = None
        if device is not None:
            # Turning the preference off deletes the tickets; checking it here as well closes the race with a
            # sign-in that issued one meanwhile.
            ticket_valid = prefs.enable_save_mfa_ticket and mfa_tickets.holds(
                conn, mfa_tickets_presented, user.id, device, now
            )
            refused = _second_factor(rt, conn, attempt, device, mfa_code, ticket_valid, now)
            if refused is not None:
                return fail(*refused, mfa_required=True)
            if save_mfa_ticket and prefs.enable_save_mfa_ticket and not attempt.mfa_ticket_used:
                ticket = mfa_tickets.issue(conn, acct.id, user.id, device, now)
        else:
            bind_required = profile.mfa_bind_required or prefs.mfa_operation_for_login == "mandatory"
        conn.execute(
            update(login_profiles)
            .where(login_profiles.c.user_id == user.id)
            .values(**lockout.CLEARED, last_login_ms=now)
        )
        conn.execute(update(users).where(users.c.id == user.id).values(last_login_ms=now))
        result = SigninResult(
            True,
            acct.id,
            user.id,
            user.upn,
            mfa_checked=attempt.mfa_checked,
            mfa_bind_required=bind_required,
            password_change_required=bool(expired or profile.password_reset_required),
            session_duration_s=prefs.login_session_duration * 3600,
            enable_save_mfa_ticket=prefs.enable_save_mfa_ticket,
            mfa_ticket=ticket,
        )
        return _recorded(rt, conn, attempt, result, source_ip, user_agent, scheme, now)


def _second_factor(
    rt: Runtime,
    conn: Connection,
    attempt: _Attempt,
    device: Row[Any],
    mfa_code: str | None,
    ticket_valid: bool,
    now: int,
) -> tuple[str, str] | None:
    """The MFA outcome for a user with a bound device: None when passed (a valid saved ticket, or a fresh
    code), else the refusal's (error code, message). Wrong and reused codes count toward the lockout."""
    assert attempt.user is not None
    if ticket_valid:
        attempt.mfa_checked = attempt.mfa_ticket_used = True
        return None
    if not mfa_code:
        return MFA_REQUIRED, "The password is correct; enter the code of your MFA device."
    verdict = check_code(conn, rt.master_key, device, mfa_code)
    if verdict is Verdict.REUSED:
        return MFA_REUSED, _wrong_attempt(
            conn, attempt.account_id, attempt.user.id, now, "The MFA code was already used: wait for the next one."
        )
    if verdict is not Verdict.ACCEPTED:
        return MFA_INVALID, _wrong_attempt(conn, attempt.account_id, attempt.user.id, now, "The MFA code is incorrect.")
    attempt.mfa_checked = True
    return None


def _verify_first(rt: Runtime, account: str, login_name: str, password: str) -> tuple[str | None, bool]:
    """Check the password before the write transaction: argon2 is slow by design and must not hold the
    (SQLite) write lock. Always one hash check, against a dummy when there is no profile, so the time taken
    does not tell whether a user exists."""
    with rt.db.read() as conn:
        acct = _account(conn, account)
        user = _user(conn, acct.id, login_name) if acct is not None else None
        stored = (
            conn.execute(select(login_profiles.c.password_hash).where(login_profiles.c.user_id == user.id)).scalar()
            if user is not None
            else None
        )
    return stored, verify_password(stored or lockout.DUMMY_HASH, password)


def _wrong_attempt(conn: Connection, account_id: str, user_id: str, now: int, message: str = _WRONG) -> str:
    return lockout.RAM_USER.refusal(message, record_failed_attempt(conn, account_id, user_id, now))


def _recorded(
    rt: Runtime,
    conn: Connection,
    attempt: _Attempt,
    result: SigninResult,
    source_ip: str,
    user_agent: str,
    scheme: str,
    now: int,
) -> SigninResult:
    """Record the attempt's ConsoleSignin event in the open transaction; returns the result with its event ID."""
    user = attempt.user
    principal = Principal(
        account_id=attempt.account_id,
        kind=RAM_USER,
        principal_id=user.id if user else "",
        user_name=user.upn if user else attempt.login_name,
        user_id=user.id if user else None,
        mfa_authenticated=attempt.mfa_checked,
        event_type="ConsoleSignin",
        session_created_ms=now if result.success else None,
    )
    extra: dict[str, Any] = {}
    if attempt.mfa_ticket_used:
        # The second factor was a ticket saved after an earlier code, not a code typed now: say which.
        extra["MFATicket"] = "true"
    if result.success:
        extra.update(
            MFABindRequired=result.mfa_bind_required,
            PasswordChangeRequired=result.password_change_required,
            SessionDuration=result.session_duration_s,
        )
    event_id = outside_api.console_signin(
        rt,
        conn,
        principal,
        Origin(source_ip, user_agent, scheme),
        login=user.upn if user else attempt.login_name,
        mfa_checked=attempt.mfa_checked,
        error=None if result.success else (result.error_code or "", result.error_message or ""),
        mfa_required=result.error_code == MFA_REQUIRED,
        resources=[(USER, user.upn)] if user else [],
        extra=extra,
        event_ms=now,
    )
    return replace(result, event_id=event_id)

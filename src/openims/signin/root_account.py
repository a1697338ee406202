"""Console sign-in of an account's root identity: the account alias or ID and the account password (set with
`openims account set-password`). RAM users sign in through `openims.signin.ram_user`; this is its root counterpart
and records the same `ConsoleSignin` event shape, with a root `userIdentity`.

When the root has MFA (`openims account set-mfa`, `openims.signin.root_mfa`), a right password is answered with
MFA_REQUIRED and the console asks for a code, then calls again with the password and the code, as for RAM
users; a code of a time step already used is refused (MFA_REUSED).

Root accounts have no RAM password policy, so a fixed rule guards them against guessing:
ROOT_MAX_ATTEMPTS wrong passwords or MFA codes within an hour lock root console sign-in for a while
(signin/lockout.py). Each attempt costs an argon2id verification, unknown accounts included.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from openims import accounts, clock
from openims.actions.mfa import root_has_mfa
from openims.audit import outside_api
from openims.audit.event import Origin
from openims.credentials.totp import Verdict
from openims.crypto import hash_password, verify_password
from openims.principal import ROOT, Principal
from openims.runtime import Runtime
from openims.signin import lockout, ram_user, root_mfa
from openims.store.schema import accounts as accounts_table
from openims.store.tables.console import console_root_lockouts

log = logging.getLogger("openims.console")

NO_PASSWORD = "LoginProfile.NotSet"
ROOT_SESSION_S = 6 * 3600
WRONG = "The login name or password is incorrect."


def find_account(conn: Connection, ref: str) -> Row[Any] | None:
    return accounts.find(conn, ref)


def authenticate_root(
    rt: Runtime,
    ref: str,
    password: str,
    source_ip: str,
    user_agent: str,
    scheme: str = "https",
    mfa_code: str | None = None,
) -> ram_user.SigninResult:
    """Check the root password (and, when the root has MFA, `mfa_code`) of the account named by alias or ID;
    records a ConsoleSignin event when the account exists. Never raises for a wrong credential."""
    now = clock.now_ms()
    with rt.db.transaction() as conn:
        acct = find_account(conn, ref)
        if acct is None:
            verify_password(lockout.DUMMY_HASH, password)
            log.info("console root sign-in to unknown account from %s", source_ip)
            return ram_user.SigninResult(False, error_code=ram_user.INVALID_CREDENTIALS, error_message=WRONG)

        mfa_checked = False

        def outcome(result: ram_user.SigninResult) -> ram_user.SigninResult:
            # The account's own name, not what was typed: both steps of one sign-in (the password by alias
            # or ID, the MFA code by ID) then record the same loginAccount.
            return _record(
                rt, conn, acct.id, acct.alias or acct.id, result, mfa_checked, source_ip, user_agent, scheme, now
            )

        lock = conn.execute(
            select(console_root_lockouts).where(console_root_lockouts.c.account_id == acct.id).with_for_update()
        ).first()
        locked_until = lockout.locked_until(lock, now)
        if locked_until:
            verify_password(lockout.DUMMY_HASH, password)
            return outcome(
                ram_user.SigninResult(
                    False,
                    acct.id,
                    error_code=ram_user.LOCKED,
                    error_message=(
                        f"Too many failed attempts: root console sign-in is locked until {clock.iso(locked_until)}."
                    ),
                )
            )
        if not acct.password_hash:
            verify_password(lockout.DUMMY_HASH, password)
            return outcome(
                ram_user.SigninResult(
                    False,
                    acct.id,
                    error_code=NO_PASSWORD,
                    error_message=("The account has no console password: set one with `openims account set-password`."),
                )
            )
        if not verify_password(acct.password_hash, password):
            return outcome(
                ram_user.SigninResult(
                    False,
                    acct.id,
                    error_code=ram_user.INVALID_CREDENTIALS,
                    error_message=_count_failure(conn, acct.id, lock, now),
                )
            )
        if root_has_mfa(acct):
            if not mfa_code:
                return outcome(
                    ram_user.SigninResult(
                        False,
                        acct.id,
                        error_code=ram_user.MFA_REQUIRED,
                        mfa_required=True,
                        error_message="The password is correct; enter the code of your MFA device.",
                    )
                )
            verdict = root_mfa.check_code(conn, rt.master_key, acct, mfa_code)
            if verdict is not Verdict.ACCEPTED:
                reused = verdict is Verdict.REUSED
                message = (
                    "The MFA code was already used: wait for the next one." if reused else "The MFA code is incorrect."
                )
                return outcome(
                    ram_user.SigninResult(
                        False,
                        acct.id,
                        error_code=ram_user.MFA_REUSED if reused else ram_user.MFA_INVALID,
                        mfa_required=True,
                        error_message=_count_failure(conn, acct.id, lock, now, message),
                    )
                )
            mfa_checked = True
        if lock is not None:
            conn.execute(
                update(console_root_lockouts)
                .where(console_root_lockouts.c.account_id == acct.id)
                .values(**lockout.CLEARED)
            )
        return outcome(
            ram_user.SigninResult(
                True, acct.id, user_principal_name="root", mfa_checked=mfa_checked, session_duration_s=ROOT_SESSION_S
            )
        )


def _count_failure(conn: Connection, account_id: str, lock: Row[Any] | None, now: int, message: str = WRONG) -> str:
    """Count a wrong password or MFA code; returns `message`, saying so when this attempt locked sign-in."""
    values, locked = lockout.ROOT.after_failure(lock, now, lockout.ROOT_MAX_ATTEMPTS)
    if lock is None:
        conn.execute(insert(console_root_lockouts).values(account_id=account_id, **values))
    else:
        conn.execute(
            update(console_root_lockouts).where(console_root_lockouts.c.account_id == account_id).values(**values)
        )
    return lockout.ROOT.refusal(message, locked)


def _record(
    rt: Runtime,
    conn: Connection,
    account_id: str,
    login: str,
    result: ram_user.SigninResult,
    mfa_checked: bool,
    source_ip: str,
    user_agent: str,
    scheme: str,
    now: int,
) -> ram_user.SigninResult:
    principal = Principal(
        account_id,
        ROOT,
        account_id,
        "root",
        mfa_authenticated=mfa_checked,
        event_type="ConsoleSignin",
        session_created_ms=now if result.success else None,
    )
    event_id = outside_api.console_signin(
        rt,
        conn,
        principal,
        Origin(source_ip, user_agent, scheme),
        login=login[:128],
        mfa_checked=mfa_checked,
        error=None if result.success else (result.error_code or "", result.error_message or ""),
        mfa_required=result.error_code == ram_user.MFA_REQUIRED,
        extra={"SessionDuration": result.session_duration_s} if result.success else None,
        event_ms=now,
    )
    return replace(result, event_id=event_id)


MIN_PASSWORD = 10
MAX_PASSWORD = 128


SET_PASSWORD_EVENT = "SetAccountPassword"


def check_root_password(password: str) -> None:
    """Refuse (ConfigError, the operator's one-line error) a root console password out of the rules."""
    from openims.config import ConfigError

    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD or not all(" " <= ch <= "~" for ch in password):
        raise ConfigError(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} printable ASCII characters")


def set_root_password(rt: Runtime, ref: str | None, password: str) -> str:
    """Store the argon2id hash of the account's root console password (and lift any lockout); returns the
    account ID. `ref` is an account ID or alias; None means the first account created."""
    check_root_password(password)
    with rt.db.transaction() as conn:
        acct = accounts.named(conn, ref or None)
        conn.execute(
            update(accounts_table).where(accounts_table.c.id == acct.id).values(password_hash=hash_password(password))
        )
        conn.execute(
            update(console_root_lockouts).where(console_root_lockouts.c.account_id == acct.id).values(**lockout.CLEARED)
        )
        outside_api.operator_event(rt, conn, acct.id, SET_PASSWORD_EVENT)
        return str(acct.id)

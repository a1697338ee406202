"""Reports computed from the account's real state: the user credential report (a CSV snapshot, generated
on request) and the account security practice report."""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select

from openims import clock
from openims.actions.context import CallContext
from openims.actions.mfa import root_has_mfa
from openims.actions.registry import WRITE, action
from openims.credentials import key_usage, passwords
from openims.errors import ApiError
from openims.params import Int, Str
from openims.store.schema import access_keys, accounts, users
from openims.store.tables.credentials import login_profiles, mfa_devices
from openims.store.tables.keys import credential_reports

# A key older than this is due for rotation; one not used for this long (and at least this old) is unused.
STALE_DAYS = 90
ROOT_ROW = "<root>"
NA = "N/A"
KEY_COLUMNS = ("exist", "active", "last_rotated", "last_used", "last_used_service")
COLUMNS = (
    "user",
    "user_creation_time",
    "user_last_logon",
    "password_exist",
    "password_active",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    *(f"access_key_{n}_{c}" for n in (1, 2) for c in KEY_COLUMNS),
    "additional_access_key",
)
MAX_ROWS = 3501


@dataclass(frozen=True)
class Key:
    created_ms: int
    active: bool
    last_used: key_usage.Use | None


@dataclass(frozen=True)
class Password:
    active: bool
    # When it was last set; unknown (None) for the root account's password, which no policy governs.
    set_ms: int | None


@dataclass(frozen=True)
class Subject:
    """One line of the reports: the root account or a RAM user."""

    name: str
    created_ms: int
    last_logon_ms: int | None
    password: Password | None
    mfa: bool
    keys: list[Key]


def _subjects(ctx: CallContext) -> list[Subject]:
    """The root account and every live RAM user, with their passwords, MFA and live keys (oldest first)."""
    conn, account_id = ctx.conn, ctx.account_id
    key_rows = conn.execute(
        select(access_keys)
        .where(access_keys.c.account_id == account_id, access_keys.c.deleted_ms.is_(None))
        .order_by(access_keys.c.created_ms, access_keys.c.id)
    ).all()
    uses = key_usage.last_used(ctx.runtime, conn, [r.id for r in key_rows])
    keys: dict[str | None, list[Key]] = {}
    for r in key_rows:
        keys.setdefault(r.user_id, []).append(Key(r.created_ms, r.status == "Active", uses.get(r.id)))
    profiles = {
        r.user_id: r for r in conn.execute(select(login_profiles).where(login_profiles.c.account_id == account_id))
    }
    with_mfa = set(
        conn.execute(
            select(mfa_devices.c.user_id).where(
                mfa_devices.c.account_id == account_id, mfa_devices.c.user_id.is_not(None)
            )
        ).scalars()
    )
    acct = conn.execute(select(accounts).where(accounts.c.id == account_id)).one()
    root_password = Password(True, None) if acct.password_hash else None
    found = [Subject(ROOT_ROW, acct.created_ms, None, root_password, root_has_mfa(acct), keys.get(None, []))]
    for u in conn.execute(
        select(users)
        .where(users.c.account_id == account_id, users.c.deleted_ms.is_(None))
        .order_by(users.c.created_ms, users.c.id)
    ):
        profile = profiles.get(u.id)
        password = Password(profile.status == "Active", profile.password_set_ms) if profile is not None else None
        found.append(Subject(u.upn, u.created_ms, u.last_login_ms, password, u.id in with_mfa, keys.get(u.id, [])))
    return found


# Credential report


def _iso(ms: int | None) -> str:
    return clock.iso(ms) if ms is not None else NA


def _flag(value: bool) -> str:
    return "TRUE" if value else "FALSE"


def _line(p: Subject, policy: passwords.PasswordPolicy) -> list[str]:
    if p.password is None:
        password = [_flag(False), NA, NA, NA]
    else:
        set_ms = p.password.set_ms
        rotation = (
            set_ms + policy.max_password_age * clock.DAY_MS if policy.max_password_age and set_ms is not None else None
        )
        password = [_flag(True), _flag(p.password.active), _iso(set_ms), _iso(rotation)]
    line = [p.name, _iso(p.created_ms), _iso(p.last_logon_ms), *password, _flag(p.mfa)]
    for n in (0, 1):
        if n < len(p.keys):
            key = p.keys[n]
            line += [
                _flag(True),
                _flag(key.active),
                _iso(key.created_ms),
                _iso(key.last_used.ms if key.last_used else None),
                key.last_used.service if key.last_used else NA,
            ]
        else:
            line += [_flag(False), NA, NA, NA, NA]
    return line + [_flag(len(p.keys) > 2)]


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


@action("GenerateCredentialReport", rw=WRITE)
def generate_credential_report(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Generate the user credential report from the account's current state. OpenIMS generates it within the
    call, so the state is always COMPLETED."""
    policy = passwords.load_policy(ctx.conn, ctx.account_id)
    content = _csv([_line(subject, policy) for subject in _subjects(ctx)])
    ctx.conn.execute(delete(credential_reports).where(credential_reports.c.account_id == ctx.account_id))
    ctx.conn.execute(
        insert(credential_reports).values(account_id=ctx.account_id, generated_ms=ctx.now_ms, content=content)
    )
    return {"State": "COMPLETED"}


def _token(generated_ms: int, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{generated_ms}:{offset}".encode()).decode()


def _offset(token: str, generated_ms: int) -> int:
    """Where a page starts; a token of an older report (regenerated since) is refused."""
    try:
        made, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if int(made) == generated_ms and int(offset) > 0:
            return int(offset)
    except (ValueError, UnicodeDecodeError):
        pass
    raise ApiError(
        "InvalidParameter.NextToken",
        'The parameter - "NextToken" is not valid: pass the NextToken of the previous '
        "page unchanged; a token expires when the report is generated again.",
    )


@action(
    "GetCredentialReport",
    params=(Int("MaxItems", min=1, max=MAX_ROWS, default=MAX_ROWS), Str("NextToken", max_len=256)),
)
def get_credential_report(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The last generated user credential report: Base64 of a CSV with a header line and one line per user
    (the root account first), MaxItems lines per page, each page with the header."""
    report = ctx.conn.execute(
        select(credential_reports).where(credential_reports.c.account_id == ctx.account_id)
    ).first()
    if report is None:
        raise ApiError(
            "EntityNotExist.CredentialReport",
            "No credential report has been generated: call GenerateCredentialReport first.",
        )
    header, *lines = report.content.splitlines(keepends=True)
    start = _offset(p["NextToken"], report.generated_ms) if p["NextToken"] else 0
    end = start + p["MaxItems"]
    page = header + "".join(lines[start:end])
    out = {
        "Content": base64.b64encode(page.encode()).decode(),
        "GeneratedTime": clock.iso(report.generated_ms),
        "IsTruncated": "true" if end < len(lines) else "false",
    }  # a string, as the SDK model declares
    if end < len(lines):
        out["NextToken"] = _token(report.generated_ms, end)
    return out


# Security practice report


def password_level(policy: passwords.PasswordPolicy) -> str:
    """How strong the password policy makes RAM users' passwords: high, mid or low."""
    classes = sum(
        (
            policy.require_lowercase_characters,
            policy.require_uppercase_characters,
            policy.require_numbers,
            policy.require_symbols,
        )
    )
    if policy.minimum_password_length >= 12 and classes >= 3:
        return "high"
    if policy.minimum_password_length >= 8 and classes >= 2:
        return "mid"
    return "low"


def _old(key: Key, now_ms: int) -> bool:
    return key.created_ms <= now_ms - STALE_DAYS * clock.DAY_MS


def _unused(key: Key, now_ms: int) -> bool:
    return _old(key, now_ms) and (key.last_used is None or key.last_used.ms <= now_ms - STALE_DAYS * clock.DAY_MS)


def _score(info: dict[str, Any]) -> int:
    """100 minus a weighted deduction per bad practice (documented in docs/recycle-bin-and-keys.md)."""
    users_count = info["SubUser"]
    deduction = 25.0 if info["RootWithAccessKey"] else 0.0
    deduction += 0.0 if info["BindMfa"] else 15.0
    if users_count:
        deduction += 20.0 * (users_count - info["SubUserBindMfa"]) / users_count
    deduction += 15.0 * (info["SubUserWithOldAccessKey"] + (1 if info["OldAkNum"] else 0)) / (users_count + 1)
    deduction += 15.0 * (info["SubUserWithUnusedAccessKey"] + (1 if info["UnusedAkNum"] else 0)) / (users_count + 1)
    deduction += {"low": 10.0, "mid": 5.0, "high": 0.0}[info["SubUserPwdLevel"]]
    return int(max(0, min(100, round(100 - deduction))))


@action("GetAccountSecurityPracticeReport")
def get_account_security_practice_report(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The account's security practices, computed now: root AccessKeys and MFA, RAM users with MFA, keys
    older than 90 days and keys unused for 90 days, the password policy's strength, and a score out of 100."""
    root, *ram_users = _subjects(ctx)
    now = ctx.now_ms
    info = {
        "BindMfa": root.mfa,
        "RootWithAccessKey": len(root.keys),
        "OldAkNum": sum(_old(k, now) for k in root.keys),
        "UnusedAkNum": sum(_unused(k, now) for k in root.keys),
        "SubUser": len(ram_users),
        "SubUserBindMfa": sum(u.mfa for u in ram_users),
        "SubUserPwdLevel": password_level(passwords.load_policy(ctx.conn, ctx.account_id)),
        "SubUserWithOldAccessKey": sum(any(_old(k, now) for k in u.keys) for u in ram_users),
        "SubUserWithUnusedAccessKey": sum(any(_unused(k, now) for k in u.keys) for u in ram_users),
    }
    return {"AccountSecurityPracticeInfo": {"AccountSecurityPracticeUserInfo": info, "Score": _score(info)}}

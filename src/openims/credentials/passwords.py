"""Console passwords: the account's password policy, the strength rules it sets, the history that
PasswordReusePrevention checks, and expiry. Passwords are kept only as argon2id hashes.

Errors name the rule broken (`InvalidParameter.<Param>.<Rule>`, e.g. `InvalidParameter.NewPassword.Length`)
and never echo the password.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from openims import clock
from openims.crypto import hash_password, verify_password
from openims.errors import ApiError
from openims.store.tables.credentials import password_history, password_policies

MAX_LENGTH = 32
SYMBOLS = frozenset(string.punctuation)
# Common passwords and the bases of their variants ("Password123!"), refused when InterceptRiskPasswordOnApi is on.
RISKY_BASES = (
    "password",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "qwerty",
    "qwertyuiop",
    "asdfghjkl",
    "1qaz2wsx",
    "zxcvbnm",
    "admin",
    "administrator",
    "root",
    "welcome",
    "letmein",
    "iloveyou",
    "abc123",
    "abcd1234",
    "aliyun",
    "alibaba",
    "changeme",
    "default",
    "secret",
    "test",
    "guest",
    "master",
    "dragon",
    "monkey",
    "football",
    "baseball",
    "superman",
    "trustno1",
    "sunshine",
    "princess",
    "starwars",
    "hello",
)


@dataclass(frozen=True)
class PasswordPolicy:
    """The account's password policy; the defaults are Alibaba's (the SDK's SetPasswordPolicy docs)."""

    minimum_password_length: int = 8
    require_lowercase_characters: bool = False
    require_uppercase_characters: bool = False
    require_numbers: bool = False
    require_symbols: bool = False
    password_reuse_prevention: int = 0
    max_password_age: int = 0
    hard_expire: bool = False
    max_login_attemps: int = 0
    password_not_contain_user_name: bool = False
    minimum_password_different_character: int = 0
    initial_password_age: int = 14
    intercept_risk_password_on_api: bool = False

    def view(self) -> dict[str, Any]:
        """The `PasswordPolicy` object of GetPasswordPolicy / SetPasswordPolicy."""
        return {WIRE_NAMES[k]: v for k, v in asdict(self).items()}


# Column / field name -> the API's parameter name (Alibaba spells MaxLoginAttemps so).
WIRE_NAMES = {f.name: "".join(part.capitalize() for part in f.name.split("_")) for f in fields(PasswordPolicy)}


def load_policy(conn: Connection, account_id: str) -> PasswordPolicy:
    row = conn.execute(select(password_policies).where(password_policies.c.account_id == account_id)).first()
    if row is None:
        return PasswordPolicy()
    return PasswordPolicy(**{name: getattr(row, name) for name in WIRE_NAMES})


def save_policy(conn: Connection, account_id: str, changes: dict[str, Any], now_ms: int) -> PasswordPolicy:
    """Apply `changes` (field name -> value) to the stored policy; fields not named keep their value."""
    policy = replace(load_policy(conn, account_id), **changes)
    values = {**asdict(policy), "updated_ms": now_ms}
    done = conn.execute(update(password_policies).where(password_policies.c.account_id == account_id).values(**values))
    if not done.rowcount:
        conn.execute(insert(password_policies).values(account_id=account_id, **values))
    return policy


def _broken(param: str, rule: str, why: str) -> ApiError:
    return ApiError(
        f"InvalidParameter.{param}.{rule}", f'The parameter "{param}" does not meet the password policy: {why}.'
    )


def check_strength(policy: PasswordPolicy, password: str, user_name: str, param: str = "Password") -> None:
    """Raise on the first rule of the policy (and of OpenIMS's fixed limits) the password breaks."""
    if not all(" " <= ch <= "~" for ch in password):
        raise _broken(param, "InvalidChars", "it may contain only printable ASCII letters, digits, spaces and symbols")
    if not policy.minimum_password_length <= len(password) <= MAX_LENGTH:
        raise _broken(param, "Length", f"it must be {policy.minimum_password_length} to {MAX_LENGTH} characters long")
    classes = (
        (policy.require_lowercase_characters, "Lowercase", str.islower, "lowercase letter"),
        (policy.require_uppercase_characters, "Uppercase", str.isupper, "uppercase letter"),
        (policy.require_numbers, "Numbers", str.isdigit, "digit"),
        (policy.require_symbols, "Symbols", SYMBOLS.__contains__, "symbol such as ! @ # $ %"),
    )
    for required, rule, test, what in classes:
        if required and not any(test(ch) for ch in password):
            raise _broken(param, rule, f"it must contain at least one {what}")
    if len(set(password)) < policy.minimum_password_different_character:
        raise _broken(
            param,
            "DifferentCharacters",
            f"it must contain at least {policy.minimum_password_different_character} different characters",
        )
    if policy.password_not_contain_user_name and user_name and user_name.lower() in password.lower():
        raise _broken(param, "ContainsUserName", "it must not contain the user name")
    if policy.intercept_risk_password_on_api and is_risky(password):
        raise _broken(param, "Risky", "it is a commonly used password that attackers try first")


def is_risky(password: str) -> bool:
    """A well-known password, or one of them with only digits and symbols added around it."""
    core = password.lower().strip(string.digits + string.punctuation + " ")
    if not core:
        return True  # digits and symbols only, such as 12345678 or !@#$%^&*
    return core in RISKY_BASES or password.lower() in RISKY_BASES


class Argon2Work:
    """argon2id results for one call, computed ahead by the action's prepare step (before the write
    transaction, off the event loop), so hashing never holds the write lock. A result depends only on its
    inputs, so a memoized one is always right; whatever was not computed ahead is computed when asked."""

    def __init__(self) -> None:
        self._hashes: dict[str, str] = {}
        self._verified: dict[tuple[str, str], bool] = {}

    def hash(self, password: str) -> str:
        if password not in self._hashes:
            self._hashes[password] = hash_password(password)
        return self._hashes[password]

    def verify(self, stored_hash: str, password: str) -> bool:
        key = (stored_hash, password)
        if key not in self._verified:
            self._verified[key] = verify_password(stored_hash, password)
        return self._verified[key]


def _history(conn: Connection, policy: PasswordPolicy, user_id: str) -> list[str]:
    if policy.password_reuse_prevention <= 0:
        return []
    return list(
        conn.execute(
            select(password_history.c.password_hash)
            .where(password_history.c.user_id == user_id)
            .order_by(password_history.c.seq.desc())
            .limit(policy.password_reuse_prevention)
        ).scalars()
    )


def check_reuse(
    conn: Connection,
    policy: PasswordPolicy,
    user_id: str,
    password: str,
    param: str = "Password",
    work: Argon2Work | None = None,
) -> None:
    """Refuse a password among the user's last PasswordReusePrevention passwords."""
    work = work or Argon2Work()
    if any(work.verify(h, password) for h in _history(conn, policy, user_id)):
        raise _broken(
            param, "Reused", f"it must differ from the last {policy.password_reuse_prevention} passwords of the user"
        )


def hash_ahead(conn: Connection, policy: PasswordPolicy, user: Row[Any], password: str, work: Argon2Work) -> None:
    """The argon2 part of `new_password_hash`, done before the transaction; nothing for a password the
    policy refuses anyway, so a refused request costs no hashing."""
    try:
        check_strength(policy, password, user.name)
        check_reuse(conn, policy, user.id, password, work=work)
    except ApiError:
        return
    work.hash(password)


def remember(conn: Connection, policy: PasswordPolicy, user_id: str, password_hash: str, now_ms: int) -> None:
    """Add a hash to the user's history and keep only the newest PasswordReusePrevention of them."""
    keep = max(policy.password_reuse_prevention, 0)
    if keep:
        conn.execute(insert(password_history).values(user_id=user_id, password_hash=password_hash, created_ms=now_ms))
    newest = (
        select(password_history.c.seq)
        .where(password_history.c.user_id == user_id)
        .order_by(password_history.c.seq.desc())
        .limit(keep)
    )
    conn.execute(
        delete(password_history).where(
            password_history.c.user_id == user_id, password_history.c.seq.not_in(newest.scalar_subquery())
        )
    )


def new_password_hash(
    conn: Connection,
    policy: PasswordPolicy,
    user: Row[Any],
    password: str,
    now_ms: int,
    param: str = "Password",
    work: Argon2Work | None = None,
) -> str:
    """Validate a password being set for `user` against every rule, record it in the history, return its hash."""
    work = work or Argon2Work()
    check_strength(policy, password, user.name, param)
    check_reuse(conn, policy, user.id, password, param, work)
    hashed = work.hash(password)
    remember(conn, policy, user.id, hashed, now_ms)
    return hashed


def password_status(policy: PasswordPolicy, initial: bool, set_ms: int, now_ms: int) -> str:
    """GetLoginProfile's PasswordStatus: NotInitial, InitialValid or InitialExpired."""
    if not initial:
        return "NotInitial"
    if policy.initial_password_age and now_ms >= set_ms + policy.initial_password_age * clock.DAY_MS:
        return "InitialExpired"
    return "InitialValid"


def is_expired(policy: PasswordPolicy, set_ms: int, now_ms: int) -> bool:
    """Past MaxPasswordAge (0: passwords never expire)."""
    return bool(policy.max_password_age) and now_ms >= set_ms + policy.max_password_age * clock.DAY_MS

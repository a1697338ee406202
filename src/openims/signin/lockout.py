"""The sign-in lockout rule, one for RAM users and the root identity: wrong passwords or MFA codes within
WINDOW_MS of the first of them lock sign-in for a time. RAM users are counted on their login profile, up to
their account's MaxLoginAttemps (0: no lockout); the root identity, which has no password policy, in
console_root_lockouts, by the fixed ROOT rule. Both tables hold the same three columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openims.crypto import hash_password

WINDOW_MS = 3600 * 1000
# Verified when there is nothing to verify against (an unknown name, a locked or password-less identity),
# so every refusal takes as long as a wrong password.
DUMMY_HASH = hash_password("openims-dummy-password")
# The columns the rule keeps, as they are once the count starts over.
CLEARED: dict[str, Any] = {"failed_attempts": 0, "first_failed_ms": None, "locked_until_ms": None}


@dataclass(frozen=True)
class Rule:
    lockout_ms: int
    # How the lock is named in the refusal: "console logon", "root console sign-in".
    what: str

    def after_failure(self, row: Any | None, now_ms: int, max_attempts: int) -> tuple[dict[str, Any], bool]:
        """The counter's new columns after one more failure (`row` holds the current ones, or None), and
        whether this failure locked sign-in."""
        first = row.first_failed_ms if row is not None else None
        count = row.failed_attempts if row is not None else 0
        if first is None or now_ms - first > WINDOW_MS:
            first, count = now_ms, 0
        count += 1
        if count >= max_attempts:
            return {**CLEARED, "locked_until_ms": now_ms + self.lockout_ms}, True
        return {**CLEARED, "failed_attempts": count, "first_failed_ms": first}, False

    def refusal(self, message: str, locked_now: bool) -> str:
        """`message`, saying so when this failure locked sign-in."""
        if not locked_now:
            return message
        return message + f" Too many failed attempts: {self.what} is locked for {self.lockout_ms // 60000} minutes."


RAM_USER = Rule(lockout_ms=3600 * 1000, what="console logon")
ROOT = Rule(lockout_ms=15 * 60 * 1000, what="root console sign-in")
ROOT_MAX_ATTEMPTS = 10


def locked_until(row: Any | None, now_ms: int) -> int | None:
    """When the lockout recorded in `row` ends, or None if it does not lock now."""
    until = row.locked_until_ms if row is not None else None
    return until if until is not None and until > now_ms else None

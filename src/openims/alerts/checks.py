"""Named checks: what a rule needs to know about an event that LookupAttributes cannot say. A rule names at
most one; it runs only for events that met the rule's attributes, so its cost falls on rare events.

- `ForRootIdentity`: the call acted on the caller's own identity (no UserPrincipalName or UserName parameter),
  e.g. a CreateAccessKey by root for root itself.
- `Weakened`: SetPasswordPolicy or SetSecurityPreference left the setting weaker than it was before the call
  (than the previous successful change's result, or the defaults when there was none) in at least one field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, select

from openims.store.schema import events

FOR_ROOT_IDENTITY, WEAKENED = "ForRootIdentity", "Weakened"
CHECKS = (FOR_ROOT_IDENTITY, WEAKENED)

Weaker = Callable[[Any, Any], bool]


def _lower(old: Any, new: Any) -> bool:
    return isinstance(old, int) and isinstance(new, int) and new < old


def _turned_off(old: Any, new: Any) -> bool:
    return old is True and new is False


def _turned_on(old: Any, new: Any) -> bool:
    return old is False and new is True


def _longer_or_unlimited(old: Any, new: Any) -> bool:
    """A limit where 0 means none: raising it, or lifting it, weakens."""
    if not (isinstance(old, int) and isinstance(new, int)):
        return False
    return (new == 0 and old > 0) or (old > 0 and new > old)


def _higher(old: Any, new: Any) -> bool:
    return isinstance(old, int) and isinstance(new, int) and new > old


def _wider_masks(old: Any, new: Any) -> bool:
    """Sign-in network masks removed (an empty list allows every address) or added to."""
    before = {m for m in str(old or "").split(";") if m}
    after = {m for m in str(new or "").split(";") if m}
    return bool(before) and (not after or not after <= before)


_MFA_STRENGTH = {"mandatory": 2, "adaptive": 1, "independent": 0}


def _less_mfa(old: Any, new: Any) -> bool:
    return _MFA_STRENGTH.get(str(new), 0) < _MFA_STRENGTH.get(str(old), 0)


# Event name -> (the responseElements field holding the whole setting, {path within it: what weakens it}).
_FIELDS: dict[str, tuple[str, dict[tuple[str, ...], Weaker]]] = {
    "SetPasswordPolicy": (
        "PasswordPolicy",
        {
            ("MinimumPasswordLength",): _lower,
            ("RequireLowercaseCharacters",): _turned_off,
            ("RequireUppercaseCharacters",): _turned_off,
            ("RequireNumbers",): _turned_off,
            ("RequireSymbols",): _turned_off,
            ("PasswordReusePrevention",): _lower,
            ("MaxPasswordAge",): _longer_or_unlimited,
            ("HardExpire",): _turned_off,
            ("MaxLoginAttemps",): _longer_or_unlimited,
            ("PasswordNotContainUserName",): _turned_off,
            ("MinimumPasswordDifferentCharacter",): _lower,
            ("InterceptRiskPasswordOnApi",): _turned_off,
        },
    ),
    "SetSecurityPreference": (
        "SecurityPreference",
        {
            ("AccessKeyPreference", "AllowUserToManageAccessKeys"): _turned_on,
            ("LoginProfilePreference", "EnableSaveMFATicket"): _turned_on,
            ("LoginProfilePreference", "LoginNetworkMasks"): _wider_masks,
            ("LoginProfilePreference", "LoginSessionDuration"): _higher,
            ("LoginProfilePreference", "MFAOperationForLogin"): _less_mfa,
            ("MaxIdleDays", "MaxIdleDaysForAccessKeys"): _higher,
            ("MaxIdleDays", "MaxIdleDaysForUsers"): _higher,
        },
    ),
}


def _defaults(name: str) -> dict[str, Any]:
    """The setting before any change: the handlers' own defaults (Alibaba's)."""
    if name == "SetPasswordPolicy":
        from openims.credentials.passwords import PasswordPolicy

        return PasswordPolicy().view()
    from openims.actions.security_preference import Preferences

    return Preferences().view()


def _field(setting: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = setting
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def weakened(conn: Connection, event: Mapping[str, Any]) -> list[str]:
    """The fields a successful SetPasswordPolicy/SetSecurityPreference weakened (empty: none)."""
    name = str(event.get("eventName"))
    if name not in _FIELDS or event.get("errorCode"):
        return []
    key, rules = _FIELDS[name]
    new = (event.get("responseElements") or {}).get(key)
    if not isinstance(new, Mapping):
        return []
    previous = conn.execute(
        select(events.c.body)
        .where(
            events.c.account_id == event["recipientAccountId"],
            events.c.event_name == name,
            events.c.error_code.is_(None),
            events.c.event_id != event["eventId"],
        )
        .order_by(events.c.seq.desc())
        .limit(1)
    ).scalar()
    old = (json.loads(previous).get("responseElements") or {}).get(key) if previous else None
    if not isinstance(old, Mapping):
        old = _defaults(name)
    return [".".join(path) for path, weaker in rules.items() if weaker(_field(old, path), _field(new, path))]


def passes(conn: Connection, check: str, event: Mapping[str, Any]) -> bool:
    """Whether the event passes the named check (an empty name passes)."""
    if not check:
        return True
    if check == FOR_ROOT_IDENTITY:
        params = event.get("requestParameters") or {}
        return not params.get("UserPrincipalName") and not params.get("UserName")
    if check == WEAKENED:
        return bool(weakened(conn, event))
    return False

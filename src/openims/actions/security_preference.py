"""Security preferences of the account: what RAM users may manage themselves, and console sign-in rules.

The self-service switches are named by the actions they gate (`self_service=` in the declaration) and enforced by
`openims.authz.rules.authorize`; LoginNetworkMasks,
LoginSessionDuration, MFAOperationForLogin, MaxIdleDaysForUsers and EnableSaveMFATicket by `openims.signin.ram_user`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from sqlalchemy import Connection, insert, select, update

from openims.actions.context import CallContext
from openims.actions.registry import WRITE, Action, action
from openims.credentials import passwords
from openims.errors import ApiError, invalid
from openims.params import Bool, Int, Str, StrList
from openims.signin import mfa_tickets
from openims.store.tables.credentials import login_profiles, security_preferences

MAX_MASKS = 40
IDLE_DAY_CHOICES = (90, 180, 365, 730)
VERIFICATION_TYPES = ("sms", "email")


@dataclass(frozen=True)
class Preferences:
    """The stored preferences; the defaults are Alibaba's (the SDK's SetSecurityPreference docs)."""

    allow_user_to_change_password: bool = True
    allow_user_to_login_with_passkey: bool = True
    allow_user_to_manage_access_keys: bool = False
    allow_user_to_manage_mfa_devices: bool = True
    allow_user_to_manage_personal_ding_talk: bool = True
    allow_user_to_manage_service_credentials: bool = False
    enable_save_mfa_ticket: bool = False
    login_network_masks: str = ""
    login_session_duration: int = 6
    mfa_operation_for_login: str = "independent"
    operation_for_risk_login: str = "autonomous"
    max_idle_days_for_access_keys: int = 730
    max_idle_days_for_users: int = 730
    verification_types: str = ""

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(m, strict=False) for m in self.login_network_masks.split(";") if m]

    def allows_login_from(self, source_ip: str) -> bool:
        """True when no mask is set or `source_ip` is inside one of them."""
        nets = self.networks()
        if not nets:
            return True
        try:
            address = ipaddress.ip_address(source_ip)
        except ValueError:
            return False
        return any(address in net for net in nets)

    def view(self) -> dict[str, Any]:
        """GetSecurityPreference's `SecurityPreference` object."""
        return {
            "AccessKeyPreference": {
                "AllowUserToManageAccessKeys": self.allow_user_to_manage_access_keys,
                "AllowUserToManageServiceCredentials": self.allow_user_to_manage_service_credentials,
            },
            "LoginProfilePreference": {
                "AllowUserToChangePassword": self.allow_user_to_change_password,
                "AllowUserToLoginWithPasskey": self.allow_user_to_login_with_passkey,
                "EnableSaveMFATicket": self.enable_save_mfa_ticket,
                "LoginNetworkMasks": self.login_network_masks,
                "LoginSessionDuration": self.login_session_duration,
                "MFAOperationForLogin": self.mfa_operation_for_login,
                "OperationForRiskLogin": self.operation_for_risk_login,
                "EnforceMFAForLogin": self.mfa_operation_for_login == "mandatory",
            },
            "MFAPreference": {"AllowUserToManageMFADevices": self.allow_user_to_manage_mfa_devices},
            "MaxIdleDays": {
                "MaxIdleDaysForAccessKeys": self.max_idle_days_for_access_keys,
                "MaxIdleDaysForUsers": self.max_idle_days_for_users,
            },
            "PersonalInfoPreference": {
                "AllowUserToManagePersonalDingTalk": self.allow_user_to_manage_personal_ding_talk
            },
            "VerificationPreference": {"VerificationTypes": [v for v in self.verification_types.split(",") if v]},
        }


_COLUMNS = [f.name for f in fields(Preferences)]


def load_preferences(conn: Connection, account_id: str) -> Preferences:
    row = conn.execute(select(security_preferences).where(security_preferences.c.account_id == account_id)).first()
    if row is None:
        return Preferences()
    return Preferences(**{name: getattr(row, name) for name in _COLUMNS})


def _save(conn: Connection, account_id: str, changes: dict[str, Any], now_ms: int) -> Preferences:
    prefs = replace(load_preferences(conn, account_id), **changes)
    values = {**asdict(prefs), "updated_ms": now_ms}
    done = conn.execute(
        update(security_preferences).where(security_preferences.c.account_id == account_id).values(**values)
    )
    if not done.rowcount:
        conn.execute(insert(security_preferences).values(account_id=account_id, **values))
    return prefs


@dataclass(frozen=True)
class ClearableStr(Str):
    """A string that an empty value clears: "" when sent empty, None when absent."""

    def extract(self, raw: Mapping[str, str]) -> Any:
        if raw.get(self.name) == "":
            return ""
        return super().extract(raw)


@dataclass(frozen=True)
class OptionalList(StrList):
    """A list that is None when absent, so an empty JSON array `[]` can clear it."""

    def extract(self, raw: Mapping[str, str]) -> Any:
        if self.name not in raw and not any(k.startswith(self.name + ".") for k in raw):
            return None
        return super().extract(raw)


def _normalize_masks(value: str) -> str:
    masks = [m.strip() for m in value.split(";") if m.strip()]
    if len(masks) > MAX_MASKS:
        raise invalid(
            "LoginNetworkMasks", "Length", f'The parameter "LoginNetworkMasks" may hold at most {MAX_MASKS} masks.'
        )
    for mask in masks:
        try:
            ipaddress.ip_network(mask, strict=False)
        except ValueError:
            raise invalid(
                "LoginNetworkMasks",
                "Format",
                f'The parameter "LoginNetworkMasks" must be IP addresses or CIDR '
                f"blocks separated by semicolons, such as 192.168.0.0/16;10.0.0.0/8; {mask[:64]!r} is neither.",
            ) from None
    return ";".join(masks)


# Parameter -> the Preferences field it sets.
BOOL_PARAMS = {
    "AllowUserToChangePassword": "allow_user_to_change_password",
    "AllowUserToLoginWithPasskey": "allow_user_to_login_with_passkey",
    "AllowUserToManageAccessKeys": "allow_user_to_manage_access_keys",
    "AllowUserToManageMFADevices": "allow_user_to_manage_mfa_devices",
    "AllowUserToManagePersonalDingTalk": "allow_user_to_manage_personal_ding_talk",
    "AllowUserToManageServiceCredentials": "allow_user_to_manage_service_credentials",
    "EnableSaveMFATicket": "enable_save_mfa_ticket",
}
SET_PARAMS = (
    *(Bool(name) for name in BOOL_PARAMS),
    ClearableStr("LoginNetworkMasks", max_len=512),
    Int("LoginSessionDuration", min=1, max=24),
    Str("MFAOperationForLogin", choices=("mandatory", "independent", "adaptive")),
    # The older spelling of MFAOperationForLogin (true: mandatory, false: independent); still accepted by Alibaba.
    Bool("EnforceMFAForLogin"),
    Str("OperationForRiskLogin", choices=("autonomous", "enforceVerify")),
    Int("MaxIdleDaysForAccessKeys"),
    Int("MaxIdleDaysForUsers"),
    OptionalList("VerificationTypes", max_items=len(VERIFICATION_TYPES), item=Str("item", choices=VERIFICATION_TYPES)),
)


@action("SetSecurityPreference", rw=WRITE, params=SET_PARAMS, sensitive=True)
def set_security_preference(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Configure the account's security preferences; parameters not sent keep their current value."""
    changes: dict[str, Any] = {field: p[name] for name, field in BOOL_PARAMS.items() if p[name] is not None}
    if p["LoginNetworkMasks"] is not None:
        changes["login_network_masks"] = _normalize_masks(p["LoginNetworkMasks"])
    if p["LoginSessionDuration"] is not None:
        changes["login_session_duration"] = p["LoginSessionDuration"]
    if p["EnforceMFAForLogin"] is not None:
        changes["mfa_operation_for_login"] = "mandatory" if p["EnforceMFAForLogin"] else "independent"
    if p["MFAOperationForLogin"] is not None:
        changes["mfa_operation_for_login"] = p["MFAOperationForLogin"]
    if p["OperationForRiskLogin"] == "enforceVerify":
        raise ApiError(
            "InvalidParameter.OperationForRiskLogin.Unsupported",
            'The parameter "OperationForRiskLogin" cannot be enforceVerify: OpenIMS does not judge logons risky, so '
            "it could not verify them; only autonomous is supported. Require MFA for every logon with "
            "MFAOperationForLogin=mandatory instead.",
        )
    if p["OperationForRiskLogin"] is not None:
        changes["operation_for_risk_login"] = p["OperationForRiskLogin"]
    for name, field in (
        ("MaxIdleDaysForAccessKeys", "max_idle_days_for_access_keys"),
        ("MaxIdleDaysForUsers", "max_idle_days_for_users"),
    ):
        if p[name] is not None:
            if p[name] not in IDLE_DAY_CHOICES:
                raise ApiError(
                    f"InvalidParameter.{name}",
                    f'The parameter "{name}" must be one of {", ".join(map(str, IDLE_DAY_CHOICES))}.',
                )
            changes[field] = p[name]
    if p["VerificationTypes"]:
        raise ApiError(
            "InvalidParameter.VerificationTypes.Unsupported",
            'The parameter "VerificationTypes" must be empty: OpenIMS sends no text messages or emails, so it '
            "cannot verify by sms or email. Bind an MFA device instead.",
        )
    if p["VerificationTypes"] is not None:
        changes["verification_types"] = ""
    if changes.get("enable_save_mfa_ticket") is False:
        # Turning it off ends every saved ticket for good, not only while it stays off.
        mfa_tickets.revoke_account(ctx.conn, ctx.account_id)
    return {"SecurityPreference": _save(ctx.conn, ctx.account_id, changes, ctx.now_ms).view()}


@action("GetSecurityPreference")
def get_security_preference(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query the account's security preferences."""
    return {"SecurityPreference": load_preferences(ctx.conn, ctx.account_id).view()}


def _must_change_password(conn: Connection, ctx: CallContext) -> bool:
    """A user whose password must be changed (reset required, or expired softly) may always change it,
    or it could never sign in again."""
    row = conn.execute(select(login_profiles).where(login_profiles.c.user_id == ctx.principal.user_id)).first()
    if row is None:
        return False
    policy = passwords.load_policy(conn, ctx.account_id)
    return row.password_reset_required or passwords.is_expired(policy, row.password_set_ms, ctx.now_ms)


def self_service_closed_by(ctx: CallContext, act: Action) -> str | None:
    """The security preference (its SetSecurityPreference name, as the action declares it) that keeps a RAM
    user from calling `act` on itself, or None when nothing does."""
    name = act.self_service
    if not isinstance(name, str) or getattr(load_preferences(ctx.conn, ctx.account_id), BOOL_PARAMS[name]):
        return None
    if act.name == "ChangePassword" and _must_change_password(ctx.conn, ctx):
        return None
    return name

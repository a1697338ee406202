"""Account settings: the password policy and the security preferences (GetX to show, SetX to save)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from openims.console.web import Page, endpoint
from openims.errors import ApiError

# (parameter, label, kind, help): kind "bool", or ("int", min, max).
POLICY_FIELDS: tuple[tuple[str, str, Any, str], ...] = (
    ("MinimumPasswordLength", "Minimum length", ("int", 8, 32), "8 to 32 characters"),
    ("RequireLowercaseCharacters", "Require a lowercase letter", "bool", ""),
    ("RequireUppercaseCharacters", "Require an uppercase letter", "bool", ""),
    ("RequireNumbers", "Require a digit", "bool", ""),
    ("RequireSymbols", "Require a symbol", "bool", ""),
    ("MinimumPasswordDifferentCharacter", "Minimum different characters", ("int", 0, 8), "0 to 8"),
    ("PasswordNotContainUserName", "Must not contain the user name", "bool", ""),
    ("PasswordReusePrevention", "Remembered previous passwords", ("int", 0, 24), "0 (off) to 24"),
    ("MaxPasswordAge", "Password expires after (days)", ("int", 0, 1095), "0: never"),
    ("HardExpire", "An expired password cannot be changed at sign-in (an administrator must reset it)", "bool", ""),
    ("InitialPasswordAge", "Initial password valid for (days)", ("int", 0, 90), "0: no limit"),
    (
        "MaxLoginAttemps",
        "Wrong passwords before a one-hour lockout",
        ("int", 0, 32),
        "0 (the default, as in Alibaba Cloud): no lockout, passwords may be guessed endlessly. 5 is a good value.",
    ),
    ("InterceptRiskPasswordOnApi", "Refuse commonly used passwords", "bool", ""),
)

# (parameter, section in GetSecurityPreference, label, kind)
IDLE_DAYS = ("90", "180", "365", "730")
PREFERENCE_FIELDS: tuple[tuple[str, str, str, Any], ...] = (
    ("AllowUserToChangePassword", "LoginProfilePreference", "RAM users may change their own password", "bool"),
    ("AllowUserToManageMFADevices", "MFAPreference", "RAM users may manage their own MFA device", "bool"),
    ("AllowUserToManageAccessKeys", "AccessKeyPreference", "RAM users may manage their own AccessKeys", "bool"),
    (
        "AllowUserToManageServiceCredentials",
        "AccessKeyPreference",
        "RAM users may manage their own service credentials",
        "bool",
    ),
    ("AllowUserToLoginWithPasskey", "LoginProfilePreference", "RAM users may sign in with a passkey", "bool"),
    (
        "AllowUserToManagePersonalDingTalk",
        "PersonalInfoPreference",
        "RAM users may manage their personal DingTalk",
        "bool",
    ),
    (
        "EnableSaveMFATicket",
        "LoginProfilePreference",
        "RAM users may have a browser remember their MFA device for 7 days",
        "bool",
    ),
    (
        "MFAOperationForLogin",
        "LoginProfilePreference",
        "MFA at console sign-in",
        ("choice", ("independent", "mandatory", "adaptive")),
    ),
    ("LoginSessionDuration", "LoginProfilePreference", "Console session duration (hours)", ("int", 1, 24)),
    (
        "LoginNetworkMasks",
        "LoginProfilePreference",
        "Console sign-in allowed only from (CIDR blocks, separated by ;)",
        "text",
    ),
    ("MaxIdleDaysForUsers", "MaxIdleDays", "Disable console access after idle days", ("choice", IDLE_DAYS)),
    ("MaxIdleDaysForAccessKeys", "MaxIdleDays", "Disable AccessKeys after idle days", ("choice", IDLE_DAYS)),
)


def _form_values(page: Page, fields: list[tuple[str, Any]]) -> dict[str, Any]:
    """Form fields as action parameters; an unticked checkbox is sent as false."""
    out: dict[str, Any] = {}
    for name, kind in fields:
        if kind == "bool":
            out[name] = page.form.get(name) == "on"
        elif kind == "text":
            out[name] = page.form.get(name, "").strip()
        else:
            out[name] = page.f(name) or None
    return out


@endpoint()
def password_policy_page(page: Page) -> Response:
    policy = page.call("GetPasswordPolicy")["PasswordPolicy"]
    return page.render(
        "password_policy.html", section="settings", title="Password policy", policy=policy, fields=POLICY_FIELDS
    )


@endpoint()
def password_policy_save(page: Page) -> Response:
    params = _form_values(page, [(name, kind) for name, _, kind, _ in POLICY_FIELDS])
    try:
        page.call("SetPasswordPolicy", params)
    except ApiError as err:
        return page.render(
            "password_policy.html",
            status=err.status,
            section="settings",
            title="Password policy",
            policy=params,
            fields=POLICY_FIELDS,
            error=err,
        )
    return page.redirect("/settings/password-policy", "Password policy saved.")


def _flatten(pref: dict[str, Any]) -> dict[str, Any]:
    return {name: (pref.get(section) or {}).get(name) for name, section, _, _ in PREFERENCE_FIELDS}


@endpoint()
def security_page(page: Page) -> Response:
    pref = page.call("GetSecurityPreference")["SecurityPreference"]
    return page.render(
        "security.html",
        section="settings",
        title="Security preferences",
        values=_flatten(pref),
        fields=PREFERENCE_FIELDS,
    )


@endpoint()
def security_save(page: Page) -> Response:
    params = _form_values(page, [(name, kind) for name, _, _, kind in PREFERENCE_FIELDS])
    try:
        page.call("SetSecurityPreference", params)
    except ApiError as err:
        return page.render(
            "security.html",
            status=err.status,
            section="settings",
            title="Security preferences",
            values=params,
            fields=PREFERENCE_FIELDS,
            error=err,
        )
    return page.redirect("/settings/security", "Security preferences saved.")


routes = [
    Route("/settings/password-policy", password_policy_page, methods=["GET"]),
    Route("/settings/password-policy", password_policy_save, methods=["POST"]),
    Route("/settings/security", security_page, methods=["GET"]),
    Route("/settings/security", security_save, methods=["POST"]),
]

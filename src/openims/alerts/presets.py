"""Ready-made rules: each preset is a condition (and severity) that CreateAlertRule fills in when given
`Preset`; the caller adds the destinations. docs/alerts.md lists them with the events that trigger them."""

from __future__ import annotations

from dataclasses import dataclass

from openims.alerts.checks import FOR_ROOT_IDENTITY, WEAKENED


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    severity: str
    attributes: tuple[tuple[str, str], ...]
    check: str = ""
    threshold: int = 1
    window_s: int = 0
    group_by: str = ""


SUCCESS = ("Result", "Success")

PRESETS = {
    p.name: p
    for p in (
        Preset(
            "RootSignin",
            "The root identity signed in to the console",
            "high",
            (("EventName", "ConsoleSignin"), ("User", "root"), SUCCESS),
        ),
        Preset(
            "SigninWithoutMFA",
            "A console sign-in succeeded without MFA",
            "medium",
            (("EventName", "ConsoleSignin"), SUCCESS, ("MFAUsed", "false")),
        ),
        Preset(
            "TrailChanged",
            "A trail was stopped, deleted or changed",
            "high",
            (
                ("ServiceName", "Actiontrail"),
                ("EventName", "StopLogging"),
                ("EventName", "DeleteTrail"),
                ("EventName", "UpdateTrail"),
                SUCCESS,
            ),
        ),
        Preset(
            "AdministratorAccessAttached",
            "AdministratorAccess was attached to a user, group or role",
            "high",
            (("EventName", "AttachPolicyTo*"), ("ResourceName", "AdministratorAccess"), SUCCESS),
        ),
        Preset(
            "RootAccessKeyCreated",
            "An AccessKey was created for the root identity",
            "high",
            (("EventName", "CreateAccessKey"), ("User", "root"), SUCCESS),
            check=FOR_ROOT_IDENTITY,
        ),
        Preset(
            "SecuritySettingsWeakened",
            "The password policy or the security preference was weakened",
            "high",
            (("EventName", "SetPasswordPolicy"), ("EventName", "SetSecurityPreference"), SUCCESS),
            check=WEAKENED,
        ),
        Preset(
            "MFAUnbound",
            "An MFA device was unbound from a user or from root",
            "medium",
            (
                ("EventName", "UnbindMFADevice"),
                ("EventName", "DisableVirtualMFA"),
                ("EventName", "UnsetAccountMFA"),
                SUCCESS,
            ),
        ),
        Preset(
            "NoPermissionBurst",
            "10 or more calls were refused with NoPermission within a minute",
            "medium",
            (("ErrorCode", "NoPermission"),),
            threshold=10,
            window_s=60,
        ),
        Preset(
            "SigninFailureBurst",
            "5 or more console sign-ins failed from one IP address within 5 minutes",
            "medium",
            # Wrong passwords and MFA codes, and attempts while locked; not the password step of an MFA sign-in
            # (MFA.CodeRequired), which is a refusal only until the code is given.
            (
                ("EventName", "ConsoleSignin"),
                ("ErrorCode", "InvalidCredentials"),
                ("ErrorCode", "MFA.InvalidCode"),
                ("ErrorCode", "MFA.CodeReused"),
                ("ErrorCode", "LoginProfile.Locked"),
            ),
            threshold=5,
            window_s=300,
            group_by="SourceIpAddress",
        ),
    )
}

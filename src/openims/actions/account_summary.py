"""Account-wide facts: the summary of usage and quotas, and the default domain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, func, select

from openims import accounts, quotas
from openims.actions import mfa, policies
from openims.actions.context import CallContext
from openims.actions.registry import action
from openims.credentials import network_policy
from openims.store.schema import groups, users

# What SummaryMap counts: name -> counter(conn, account_id).
SUMMARY_COUNTERS: dict[str, Callable[[Connection, str], int]] = {
    "Users": lambda conn, acct: conn.execute(
        select(func.count()).select_from(users).where(users.c.account_id == acct, users.c.deleted_ms.is_(None))
    ).scalar_one(),
    "Groups": lambda conn, acct: conn.execute(
        select(func.count()).select_from(groups).where(groups.c.account_id == acct)
    ).scalar_one(),
    "MFADevices": mfa.count_devices,
    "MFADevicesInUse": lambda conn, acct: mfa.count_devices(conn, acct, bound=True),
    "Policies": policies.count_policies,
}

QUOTAS = {
    "UsersQuota": quotas.USERS,
    "GroupsQuota": quotas.GROUPS,
    "GroupsPerUserQuota": quotas.GROUPS_PER_USER,
    "AccessKeysPerUserQuota": quotas.ACCESS_KEYS_PER_USER,
    "AccountAccessKeysPerAccountQuota": quotas.ACCESS_KEYS_PER_ACCOUNT,
    "VirtualMFADevicesQuota": quotas.MFA_DEVICES,
    "PoliciesQuota": quotas.POLICIES,
    "VersionsPerPolicyQuota": quotas.VERSIONS_PER_POLICY,
    "PolicySizeQuota": quotas.POLICY_SIZE,
    "AttachedPoliciesPerUserQuota": quotas.ATTACHED_POLICIES_PER_USER,
    "AttachedPoliciesPerGroupQuota": quotas.ATTACHED_POLICIES_PER_GROUP,
    "RolesQuota": quotas.ROLES,
    "AttachedPoliciesPerRoleQuota": quotas.ATTACHED_POLICIES_PER_ROLE,
    "AttachedSystemPoliciesPerUserQuota": quotas.ATTACHED_SYSTEM_POLICIES_PER_USER,
    "AttachedSystemPoliciesPerGroupQuota": quotas.ATTACHED_SYSTEM_POLICIES_PER_GROUP,
    "AttachedSystemPoliciesPerRoleQuota": quotas.ATTACHED_SYSTEM_POLICIES_PER_ROLE,
    "ConditionsPerAKPolicyQuota": network_policy.MAX_CONDITIONS,
    "IPItemsPerAKPolicyQuota": network_policy.MAX_IP_ITEMS,
}


@action("GetAccountSummary")
def get_account_summary(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Usage counts and quotas of the account."""
    counts = {"Users": 0, "Groups": 0, "MFADevices": 0, "MFADevicesInUse": 0, "Policies": 0, "Roles": 0}
    counts.update({name: count(ctx.conn, ctx.account_id) for name, count in SUMMARY_COUNTERS.items()})
    return {"SummaryMap": {**counts, **QUOTAS}}


@action("GetDefaultDomain")
def get_default_domain(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The account's default domain, used in UserPrincipalNames."""
    return {"DefaultDomainName": accounts.user_domains(ctx.conn, ctx.account_id)[0]}

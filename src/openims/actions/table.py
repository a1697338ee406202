"""The action table: the handler modules, listed, and every action they declare. Routing, authorization,
auditing and docs/api.md read it; a module left out here is not served (a unit test checks none is)."""

from __future__ import annotations

from openims.actions import (
    access_key_policy,
    access_key_usage,
    access_keys,
    account_summary,
    applications,
    batch_users,
    directories,
    domains,
    groups,
    lifecycle_events,
    login_profiles,
    lookup,
    mfa,
    oidc,
    password_policy,
    policies,
    recycle_bin,
    reports,
    saml,
    security_preference,
    sso,
    tags,
    trails,
    user_groups_legacy,
    users,
)
from openims.actions.registry import ActionTable

HANDLER_MODULES = (
    access_key_policy,
    access_key_usage,
    access_keys,
    account_summary,
    applications,
    batch_users,
    directories,
    domains,
    groups,
    lifecycle_events,
    login_profiles,
    lookup,
    mfa,
    oidc,
    password_policy,
    policies,
    recycle_bin,
    reports,
    saml,
    security_preference,
    sso,
    tags,
    trails,
    user_groups_legacy,
    users,
)

ACTIONS = ActionTable(HANDLER_MODULES)

"""The state of one resource as its history records it: per resource type, a function that reads the
resource's rows and returns its attributes (None when it does not exist), in the caller's transaction.

Secrets never enter a snapshot: a secret attribute holds a digest of the stored (hashed or sealed) value, which
only serves to tell that it changed, and the diff (openims.lifecycle.tracker) writes "changed" in its place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, LargeBinary, Table, bindparam, func, select

from openims import accounts
from openims.actions.access_keys import ACCESS_KEY
from openims.actions.applications import APPLICATION
from openims.actions.groups import GROUP
from openims.actions.mfa import MFA_DEVICE
from openims.actions.oidc import OIDC
from openims.actions.policies import POLICY
from openims.actions.saml import SAML
from openims.actions.tagging import tags_of
from openims.actions.trails import TRAIL
from openims.actions.users import USER
from openims.store.prepared import Prepared
from openims.store.schema import access_keys, group_members, groups, users
from openims.store.tables.apps_domains import app_secrets, applications
from openims.store.tables.credentials import login_profiles, mfa_devices
from openims.store.tables.federation import oidc_providers, saml_providers
from openims.store.tables.policies import group_policies, policies, policy_versions, user_policies
from openims.store.tables.trails import trails

Attributes = dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """A resource's identity (stable across renames) and its attributes."""

    identity: str
    name: str
    attributes: Attributes
    # Attributes that stand for secrets (digests): their changes are recorded as "changed", never as values.
    secret: frozenset[str] = frozenset()


def _digest(value: Any) -> str | None:
    """A stand-in for a stored secret: equal when the secret is, and telling nothing about it."""
    if value is None:
        return None
    raw = value if isinstance(value, bytes) else str(value).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


# A user is what most writes touch, and its snapshot is read before and after each: prepared statements
# (store/prepared.py).
_USER = Prepared(
    select(users).where(
        users.c.account_id == bindparam("account_id"),
        func.lower(users.c.name) == bindparam("name"),
        users.c.deleted_ms.is_(None),
    )
)
_USER_GROUPS = Prepared(
    select(groups.c.name)
    .join(group_members, group_members.c.group_id == groups.c.id)
    .where(group_members.c.user_id == bindparam("id"))
)
_USER_POLICIES = Prepared(
    select(user_policies.c.policy_type, user_policies.c.policy_name).where(user_policies.c.user_id == bindparam("id"))
)
_USER_KEYS = Prepared(
    select(access_keys.c.id, access_keys.c.status).where(
        access_keys.c.user_id == bindparam("id"), access_keys.c.deleted_ms.is_(None)
    )
)
_USER_DEVICE = Prepared(select(mfa_devices.c.serial_number).where(mfa_devices.c.user_id == bindparam("id")))
_USER_PROFILE = Prepared(select(login_profiles).where(login_profiles.c.user_id == bindparam("id")))


def _user(conn: Connection, account_id: str, name: str) -> Snapshot | None:
    row = _USER.first(conn, {"account_id": account_id, "name": name.partition("@")[0].lower()})
    if row is None:
        return None
    by_id = {"id": row.id}
    member_of = [r.name for r in _USER_GROUPS.all(conn, by_id)]
    attached = _USER_POLICIES.all(conn, by_id)
    keys = _USER_KEYS.all(conn, by_id)
    device = _USER_DEVICE.scalar(conn, by_id)
    profile = _USER_PROFILE.first(conn, by_id)
    return Snapshot(
        row.id,
        row.upn,
        {
            "UserPrincipalName": row.upn,
            "DisplayName": row.display_name,
            "Email": row.email,
            "MobilePhone": row.mobile_phone,
            "Comments": row.comments,
            "Status": row.status,
            "Groups": sorted(member_of),
            "Policies": sorted(f"{t}:{n}" for t, n in attached),
            "AccessKeys": sorted(f"{k}:{s}" for k, s in keys),
            "MFADevice": device or "",
            "LoginProfile": profile.status if profile else "",
            "PasswordResetRequired": bool(profile and profile.password_reset_required),
            "MFABindRequired": bool(profile and profile.mfa_bind_required),
            "Password": _digest(profile.password_hash if profile else None),
            "Tags": _tags(conn, "user", row.id),
        },
        frozenset({"Password"}),
    )


def _tags(conn: Connection, kind: str, resource_id: str) -> list[str]:
    return sorted(f"{t['TagKey']}={t['TagValue']}" for t in tags_of(conn, kind, [resource_id])[resource_id])


def _group(conn: Connection, account_id: str, name: str) -> Snapshot | None:
    row = conn.execute(select(groups).where(groups.c.account_id == account_id, groups.c.name == name)).first()
    if row is None:
        return None
    members = conn.execute(
        select(users.c.upn)
        .join(group_members, group_members.c.user_id == users.c.id)
        .where(group_members.c.group_id == row.id)
    ).scalars()
    attached = conn.execute(
        select(group_policies.c.policy_type, group_policies.c.policy_name).where(group_policies.c.group_id == row.id)
    ).all()
    return Snapshot(
        row.id,
        row.name,
        {
            "GroupName": row.name,
            "DisplayName": row.display_name,
            "Comments": row.comments,
            "Members": sorted(members),
            "Policies": sorted(f"{t}:{n}" for t, n in attached),
        },
    )


def _policy(conn: Connection, account_id: str, name: str) -> Snapshot | None:
    """A custom policy (system policies never change)."""
    row = conn.execute(select(policies).where(policies.c.account_id == account_id, policies.c.name == name)).first()
    if row is None:
        return None
    versions = conn.execute(
        select(policy_versions.c.version_id, policy_versions.c.document).where(policy_versions.c.policy_id == row.id)
    ).all()
    holders = conn.execute(
        select(users.c.upn)
        .join(user_policies, user_policies.c.user_id == users.c.id)
        .where(user_policies.c.policy_id == row.id)
    ).scalars()
    group_holders = conn.execute(
        select(groups.c.name)
        .join(group_policies, group_policies.c.group_id == groups.c.id)
        .where(group_policies.c.policy_id == row.id)
    ).scalars()
    documents = dict(versions)
    return Snapshot(
        row.id,
        row.name,
        {
            "PolicyName": row.name,
            "Description": row.description,
            "DefaultVersion": row.default_version,
            "Versions": sorted(documents, key=lambda v: int(v.lstrip("v") or 0)),
            "PolicyDocument": documents.get(row.default_version, ""),
            "AttachedUsers": sorted(holders),
            "AttachedGroups": sorted(group_holders),
        },
    )


def _access_key(conn: Connection, account_id: str, name: str) -> Snapshot | None:
    row = conn.execute(
        select(access_keys.c.id, access_keys.c.status, users.c.upn)
        .select_from(access_keys.outerjoin(users, users.c.id == access_keys.c.user_id))
        .where(access_keys.c.account_id == account_id, access_keys.c.id == name, access_keys.c.deleted_ms.is_(None))
    ).first()
    if row is None:
        return None
    return Snapshot(row.id, row.id, {"AccessKeyId": row.id, "Status": row.status, "User": row.upn or "root"})


def _mfa_device(conn: Connection, account_id: str, name: str) -> Snapshot | None:
    row = conn.execute(
        select(mfa_devices.c.serial_number, mfa_devices.c.name, users.c.upn)
        .select_from(mfa_devices.outerjoin(users, users.c.id == mfa_devices.c.user_id))
        .where(mfa_devices.c.account_id == account_id, mfa_devices.c.serial_number == name)
    ).first()
    if row is None:
        return None
    return Snapshot(
        row.serial_number,
        row.serial_number,
        {"SerialNumber": row.serial_number, "Name": row.name, "User": row.upn or ""},
    )


# Columns a generic row snapshot leaves out: keys and bookkeeping, not the resource's settings.
_SKIPPED = {"id", "account_id", "created_ms", "updated_ms", "start_logging_ms", "stop_logging_ms"}
# Column names that hold secrets (besides every binary column, which holds sealed ones).
_SECRET_WORDS = ("secret", "password", "seed")


def _row_snapshot(table: Table, key: str) -> Callable[[Connection, str, str], Snapshot | None]:
    """A snapshot of a resource that is one row of `table`, found by its `key` column."""
    secret = {
        c.name
        for c in table.columns
        if isinstance(c.type, LargeBinary) or any(w in c.name.lower() for w in _SECRET_WORDS)
    }

    def snapshot(conn: Connection, account_id: str, name: str) -> Snapshot | None:
        row = conn.execute(select(table).where(table.c.account_id == account_id, table.c[key] == name)).first()
        if row is None:
            return None
        attributes = {c: (_digest(v) if c in secret else v) for c, v in row._mapping.items() if c not in _SKIPPED}
        return Snapshot(str(row._mapping.get("id", name)), name, attributes, frozenset(secret))

    return snapshot


def _application(conn: Connection, account_id: str, name: str) -> Snapshot | None:
    found = _row_snapshot(applications, "id")(conn, account_id, name)
    if found is not None:
        ids = conn.execute(select(app_secrets.c.id).where(app_secrets.c.app_id == name)).scalars()
        found.attributes["AppSecretIds"] = sorted(ids)
    return found


SNAPSHOTS: dict[str, Callable[[Connection, str, str], Snapshot | None]] = {
    USER: _user,
    GROUP: _group,
    POLICY: _policy,
    ACCESS_KEY: _access_key,
    MFA_DEVICE: _mfa_device,
    OIDC: _row_snapshot(oidc_providers, "name"),
    SAML: _row_snapshot(saml_providers, "name"),
    APPLICATION: _application,
    TRAIL: _row_snapshot(trails, "name"),
}


def user_upn(conn: Connection, account_id: str, name: str) -> str:
    """A user named by its RAM `UserName` as the UserPrincipalName events name it (in the default domain)."""
    if "@" in name:
        return name
    return f"{name}@{accounts.user_domains(conn, account_id)[0]}"

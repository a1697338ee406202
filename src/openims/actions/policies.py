"""RAM policies (RAM API 2015-05-01): custom policies and their versions, the system policies every account
has, attachments to users and groups, and decoding the diagnostic message of a denial.

RAM names a user by `UserName`, its login name (the part of the UserPrincipalName before the @); a full
UserPrincipalName is accepted too. The documents are checked by `openims.authz.document` on every write.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update

from openims import accounts, clock, ids, quotas
from openims.actions.context import CallContext
from openims.actions.groups import GROUP, NAME_RULE, find_group
from openims.actions.paging import MARKER, max_items
from openims.actions.registry import RAM, WRITE, action
from openims.actions.tagging import MAX_TAGS, TAG_KEY, TAG_VALUE, has_all_tags, set_tags, tags_of
from openims.actions.users import USER, find_user
from openims.authz import decide, document, system
from openims.authz.system import CUSTOM, SYSTEM
from openims.errors import ApiError, already_exists, not_found
from openims.params import Bool, Param, Str, load_json
from openims.store.schema import groups, resource_tags, users
from openims.store.tables.policies import group_policies, policies, policy_versions, user_policies

POLICY = "ACS::RAM::Policy"
TAG_TYPE = "policy"
ROTATE = "DeleteOldestNonDefaultVersionWhenLimitExceeded"

POLICY_NAME = Str(
    "PolicyName",
    required=True,
    min_len=1,
    max_len=128,
    pattern=r"[A-Za-z0-9-]+",
    pattern_doc="can contain only letters, digits and hyphens (-)",
)
POLICY_TYPE = Str("PolicyType", choices=(SYSTEM, CUSTOM), doc="System or Custom; inferred from the name when omitted")
POLICY_DOCUMENT = Str(
    "PolicyDocument", required=True, doc=f"a RAM policy document of at most {quotas.POLICY_SIZE} bytes"
)
VERSION_ID = Str(
    "VersionId",
    required=True,
    max_len=16,
    pattern=r"v[1-9][0-9]{0,8}",
    pattern_doc="is v followed by the version number, such as v3",
)
USER_NAME = Str(
    "UserName",
    required=True,
    min_len=1,
    max_len=128,
    pattern=r"[A-Za-z0-9._-]{1,64}(@[A-Za-z0-9.-]+)?",
    pattern_doc="is the user's login name (the part of its UserPrincipalName before the @) or its UserPrincipalName",
)
GROUP_NAME = Str("GroupName", required=True, **NAME_RULE)  # type: ignore[arg-type]
RESOURCE_GROUP = Str("ResourceGroupId", max_len=64, doc="not supported: OpenIMS has no resource groups")


@dataclass(frozen=True)
class JsonTags(Param):
    """Tags sent as one JSON array `[{"Key": "k", "Value": "v"}]`, as the RAM SDK serializes them."""

    def extract(self, raw: Mapping[str, str]) -> Any:
        text = raw.get(self.name)
        if not text:
            return []
        try:
            items = load_json(text)
        except ValueError:
            items = None
        if not isinstance(items, list) or not all(isinstance(i, dict) and set(i) <= {"Key", "Value"} for i in items):
            raise ApiError(
                f"InvalidParameter.{self.name}.Format",
                f'The parameter - "{self.name}" is not valid: it must be a JSON array of '
                f'{{"Key": ..., "Value": ...}} objects.',
            )
        if len(items) > MAX_TAGS:
            raise ApiError(
                f"InvalidParameter.{self.name}.Length",
                f'The parameter - "{self.name}" is beyond the length limit: at most {MAX_TAGS} tags.',
            )
        out = []
        for item in items:
            if not isinstance(item.get("Key"), str) or not isinstance(item.get("Value", ""), str):
                raise ApiError(
                    f"InvalidParameter.{self.name}.Format",
                    f'The parameter - "{self.name}" is not valid: each tag needs a string Key (and a string Value).',
                )
            key = replace(TAG_KEY, name=f"{self.name}.Key").convert(item["Key"])
            value = replace(TAG_VALUE, name=f"{self.name}.Value").convert(item["Value"]) if item.get("Value") else ""
            out.append({"Key": key, "Value": value})
        return out

    def type_name(self) -> str:
        return "String (JSON array of {Key, Value})"

    def limits(self) -> str:
        return f"at most {MAX_TAGS} tags"


TAGS = JsonTags("Tag")


@dataclass(frozen=True)
class Policy:
    """A policy as the actions see it: a custom row or a system policy, with its default version."""

    name: str
    policy_type: str
    description: str
    default_version: str
    created: str
    updated: str
    policy_id: str | None = None  # custom policies only

    @property
    def is_system(self) -> bool:
        return self.policy_type == SYSTEM


def _system_policy(sp: system.SystemPolicy) -> Policy:
    return Policy(sp.name, SYSTEM, sp.description, system.VERSION, system.CREATED, system.CREATED)


def _custom_policy(row: Row[Any]) -> Policy:
    return Policy(
        row.name,
        CUSTOM,
        row.description,
        row.default_version,
        clock.iso(row.created_ms),
        clock.iso(row.updated_ms),
        row.id,
    )


def _custom_row(ctx: CallContext, name: str) -> Row[Any] | None:
    return ctx.conn.execute(
        select(policies).where(policies.c.account_id == ctx.account_id, func.lower(policies.c.name) == name.lower())
    ).first()


def _named(ctx: CallContext, name: str, policy_type: str | None) -> Policy | None:
    """The named policy of the given type; of either type when omitted, a system policy first."""
    if policy_type in (None, SYSTEM) and (sp := system.find(name)) is not None:
        return _system_policy(sp)
    if policy_type in (None, CUSTOM) and (row := _custom_row(ctx, name)) is not None:
        return _custom_policy(row)
    return None


def find_policy(ctx: CallContext, name: str, policy_type: str | None = None) -> Policy:
    """The named policy of the given type (or of either type when omitted); EntityNotExist.Policy otherwise."""
    found = _named(ctx, name, policy_type)
    if found is None:
        raise not_found("Policy", name)
    ctx.reference(POLICY, found.name)
    return found


def resolve_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The policy a call names, as find_policy will find it: its type (a name given without PolicyType is the
    system policy of that name when there is one) and its name as stored. Authorization then sees
    `acs:ram:*:system:policy/AdministratorAccess`, never the account's `policy/AdministratorAccess`."""
    found = _named(ctx, p["PolicyName"], p["PolicyType"]) if p.get("PolicyName") else None
    if found is None:
        return p
    return {**p, "PolicyName": found.name, "PolicyType": found.policy_type}


def find_custom(ctx: CallContext, name: str) -> Policy:
    """The custom policy to change; a system policy is refused, being the same in every account."""
    sp = system.find(name)
    if sp is not None:
        raise ApiError(
            "Forbidden.SystemPolicy",
            f"{sp.name} is a system policy: it cannot be changed or deleted. Create a custom policy instead.",
        )
    return find_policy(ctx, name, CUSTOM)


def _policy_row(ctx: CallContext, policy: Policy) -> Row[Any]:
    return ctx.conn.execute(select(policies).where(policies.c.id == policy.policy_id)).one()


def policy_view(p: Policy, attachments: int | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "PolicyName": p.name,
        "PolicyType": p.policy_type,
        "Description": p.description,
        "DefaultVersion": p.default_version,
        "CreateDate": p.created,
        "UpdateDate": p.updated,
    }
    if attachments is not None:
        view["AttachmentCount"] = attachments
    return view


def version_view(version_id: str, text: str, created: str, is_default: bool) -> dict[str, Any]:
    return {"VersionId": version_id, "IsDefaultVersion": is_default, "PolicyDocument": text, "CreateDate": created}


def _versions(ctx: CallContext, p: Policy) -> list[dict[str, Any]]:
    """The policy's versions, newest first."""
    if p.is_system:
        return [version_view(system.VERSION, system.POLICIES[p.name].document, p.created, True)]
    rows = ctx.conn.execute(
        select(policy_versions)
        .where(policy_versions.c.policy_id == p.policy_id)
        .order_by(policy_versions.c.number.desc())
    ).all()
    return [
        version_view(r.version_id, r.document, clock.iso(r.created_ms), r.version_id == p.default_version) for r in rows
    ]


def _version(ctx: CallContext, p: Policy, version_id: str) -> dict[str, Any]:
    for v in _versions(ctx, p):
        if v["VersionId"] == version_id:
            return v
    raise ApiError("EntityNotExist.Policy.Version", f"The policy {p.name} has no version {version_id}.")


def attachment_counts(ctx: CallContext) -> dict[tuple[str, str], int]:
    """How many live users and groups each policy of the account is attached to, by (type, name)."""
    counts: dict[tuple[str, str], int] = {}
    user_rows = ctx.conn.execute(
        select(user_policies.c.policy_type, user_policies.c.policy_name, func.count())
        .join(users, users.c.id == user_policies.c.user_id)
        .where(user_policies.c.account_id == ctx.account_id, users.c.deleted_ms.is_(None))
        .group_by(user_policies.c.policy_type, user_policies.c.policy_name)
    ).all()
    group_rows = ctx.conn.execute(
        select(group_policies.c.policy_type, group_policies.c.policy_name, func.count())
        .where(group_policies.c.account_id == ctx.account_id)
        .group_by(group_policies.c.policy_type, group_policies.c.policy_name)
    ).all()
    for ptype, name, count in [*user_rows, *group_rows]:
        counts[(ptype, name)] = counts.get((ptype, name), 0) + count
    return counts


def _attached_users(ctx: CallContext, p: Policy) -> Sequence[Any]:
    return ctx.conn.execute(
        select(users.c.id, users.c.name, users.c.display_name, user_policies.c.attached_ms)
        .join(user_policies, user_policies.c.user_id == users.c.id)
        .where(
            user_policies.c.account_id == ctx.account_id,
            user_policies.c.policy_type == p.policy_type,
            user_policies.c.policy_name == p.name,
            users.c.deleted_ms.is_(None),
        )
        .order_by(users.c.name)
    ).all()


def _attached_groups(ctx: CallContext, p: Policy) -> Sequence[Any]:
    return ctx.conn.execute(
        select(groups.c.id, groups.c.name, groups.c.comments, group_policies.c.attached_ms)
        .join(group_policies, group_policies.c.group_id == groups.c.id)
        .where(
            group_policies.c.account_id == ctx.account_id,
            group_policies.c.policy_type == p.policy_type,
            group_policies.c.policy_name == p.name,
        )
        .order_by(groups.c.name)
    ).all()


# --- policies -------------------------------------------------------------------------------------------


@action(
    "CreatePolicy",
    service=RAM,
    rw=WRITE,
    resource=(POLICY, "PolicyName"),
    arn="policy/{PolicyName}",
    params=(
        POLICY_NAME,
        POLICY_DOCUMENT,
        Str("Description", min_len=1, max_len=1024),
        TAGS,
    ),
    sensitive=True,
)
def create_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create a custom policy; its document becomes version v1, the default version."""
    name = p["PolicyName"]
    if system.find(name) is not None or _custom_row(ctx, name) is not None:
        raise already_exists("Policy", name)
    document.parse(p["PolicyDocument"])
    if count_policies(ctx.conn, ctx.account_id) >= quotas.POLICIES:
        raise ApiError("LimitExceeded.Policy", f"An account can have at most {quotas.POLICIES} custom policies.")
    policy_id = ids.user_id()
    ctx.conn.execute(
        insert(policies).values(
            id=policy_id,
            account_id=ctx.account_id,
            name=name,
            description=p["Description"] or "",
            default_version="v1",
            next_version=2,
            created_ms=ctx.now_ms,
            updated_ms=ctx.now_ms,
        )
    )
    ctx.conn.execute(
        insert(policy_versions).values(
            policy_id=policy_id, version_id="v1", number=1, document=p["PolicyDocument"], created_ms=ctx.now_ms
        )
    )
    set_tags(ctx.conn, ctx.account_id, TAG_TYPE, policy_id, p["Tag"])
    created = find_policy(ctx, name, CUSTOM)
    view = policy_view(created)
    del view["UpdateDate"]
    return {"Policy": view}


def count_policies(conn: Any, account_id: str) -> int:
    return int(
        conn.execute(select(func.count()).select_from(policies).where(policies.c.account_id == account_id)).scalar_one()
    )


@action(
    "GetPolicy",
    service=RAM,
    resource=(POLICY, "PolicyName"),
    arn="policy/{PolicyName}",
    params=(POLICY_NAME, POLICY_TYPE),
    resolve=resolve_policy,
)
def get_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query a policy with its default version's document."""
    policy = find_policy(ctx, p["PolicyName"], p["PolicyType"])
    default = _version(ctx, policy, policy.default_version)
    count = attachment_counts(ctx).get((policy.policy_type, policy.name), 0)
    return {
        "Policy": {**policy_view(policy, count), "PolicyDocument": default["PolicyDocument"]},
        "DefaultPolicyVersion": default,
    }


@action(
    "DeletePolicy",
    service=RAM,
    rw=WRITE,
    resource=(POLICY, "PolicyName"),
    arn="policy/{PolicyName}",
    params=(POLICY_NAME, Bool("CascadingDelete", default=False)),
    sensitive=True,
)
def delete_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete a custom policy that is attached to nobody. Its non-default versions must be deleted first,
    unless CascadingDelete is true."""
    policy = find_custom(ctx, p["PolicyName"])
    if _attached_users(ctx, policy):
        raise ApiError("DeleteConflict.Policy.User", f"The policy {policy.name} is attached to users; detach it first.")
    if _attached_groups(ctx, policy):
        raise ApiError(
            "DeleteConflict.Policy.Group", f"The policy {policy.name} is attached to groups; detach it first."
        )
    if not p["CascadingDelete"] and len(_versions(ctx, policy)) > 1:
        raise ApiError(
            "DeleteConflict.Policy.Version",
            f"The policy {policy.name} has versions besides the default one; "
            "delete them first, or set CascadingDelete to true.",
        )
    ctx.conn.execute(
        delete(resource_tags).where(
            resource_tags.c.resource_type == TAG_TYPE, resource_tags.c.resource_id == policy.policy_id
        )
    )
    # Versions go with the policy (and so do attachments left on users in the recycle bin).
    ctx.conn.execute(delete(policies).where(policies.c.id == policy.policy_id))
    return {}


@action(
    "ListPolicies",
    service=RAM,
    arn="policy/*",
    params=(
        MARKER,
        max_items(1000, 100),
        POLICY_TYPE,
        TAGS,
    ),
)
def list_policies(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the account's policies: the system policies, then the custom ones, each by name."""
    found: list[tuple[str, Policy]] = []
    if p["PolicyType"] in (None, SYSTEM) and not p["Tag"]:
        found += [
            (f"0{name.lower()}", _system_policy(sp))
            for name, sp in sorted(system.POLICIES.items(), key=lambda kv: kv[0].lower())
        ]
    if p["PolicyType"] in (None, CUSTOM):
        query = select(policies).where(policies.c.account_id == ctx.account_id)
        if p["Tag"]:
            query = query.where(has_all_tags(TAG_TYPE, policies.c.id, p["Tag"]))
        rows = sorted(ctx.conn.execute(query).all(), key=lambda r: r.name.lower())
        found += [(f"1{r.name.lower()}", _custom_policy(r)) for r in rows]
    if p["Marker"]:
        after = _decode_marker(p["Marker"])
        found = [f for f in found if f[0] > after]
    page, rest = found[: p["MaxItems"]], found[p["MaxItems"] :]
    counts = attachment_counts(ctx)
    tags = tags_of(ctx.conn, TAG_TYPE, [x.policy_id for _, x in page if x.policy_id])
    items = []
    for _, policy in page:
        view = policy_view(policy, counts.get((policy.policy_type, policy.name), 0))
        if policy.policy_id:
            view["Tags"] = {"Tag": tags[policy.policy_id]}
        items.append(view)
    out: dict[str, Any] = {"Policies": {"Policy": items}, "IsTruncated": bool(rest)}
    if rest:
        out["Marker"] = base64.urlsafe_b64encode(page[-1][0].encode()).decode()
    return out


def _decode_marker(marker: str) -> str:
    try:
        decoded = base64.b64decode(marker.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        decoded = ""
    if decoded[:1] in ("0", "1"):
        return decoded
    raise ApiError(
        "InvalidParameter.Marker",
        'The parameter - "Marker" is not valid: pass the Marker of the previous page unchanged.',
    )


# --- versions -------------------------------------------------------------------------------------------


@action(
    "CreatePolicyVersion",
    service=RAM,
    rw=WRITE,
    resource=(POLICY, "PolicyName"),
    arn="policy/{PolicyName}",
    params=(
        POLICY_NAME,
        POLICY_DOCUMENT,
        Bool("SetAsDefault", default=False),
        Str("RotateStrategy", choices=("None", ROTATE), default="None"),
    ),
    sensitive=True,
)
def create_policy_version(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Add a version to a custom policy (at most 5; with RotateStrategy DeleteOldestNonDefaultVersionWhenLimitExceeded
    the oldest non-default version makes room). With SetAsDefault it takes effect from the next call."""
    policy = find_custom(ctx, p["PolicyName"])
    document.parse(p["PolicyDocument"])
    row = _policy_row(ctx, policy)
    existing = (
        ctx.conn.execute(
            select(policy_versions.c.version_id)
            .where(policy_versions.c.policy_id == row.id)
            .order_by(policy_versions.c.number)
        )
        .scalars()
        .all()
    )
    if len(existing) >= quotas.VERSIONS_PER_POLICY:
        oldest = next((v for v in existing if v != row.default_version), None)
        if p["RotateStrategy"] != ROTATE or oldest is None:
            raise ApiError(
                "LimitExceeded.Policy.Version",
                f"A policy can have at most {quotas.VERSIONS_PER_POLICY} versions; "
                "delete one, or set RotateStrategy to DeleteOldestNonDefaultVersionWhenLimitExceeded.",
            )
        ctx.conn.execute(
            delete(policy_versions).where(policy_versions.c.policy_id == row.id, policy_versions.c.version_id == oldest)
        )
    number = row.next_version
    version_id = f"v{number}"
    ctx.conn.execute(
        insert(policy_versions).values(
            policy_id=row.id, version_id=version_id, number=number, document=p["PolicyDocument"], created_ms=ctx.now_ms
        )
    )
    changes: dict[str, Any] = {"next_version": number + 1, "updated_ms": ctx.now_ms}
    if p["SetAsDefault"]:
        changes["default_version"] = version_id
    ctx.conn.execute(update(policies).where(policies.c.id == row.id).values(**changes))
    return {
        "PolicyVersion": version_view(version_id, p["PolicyDocument"], clock.iso(ctx.now_ms), bool(p["SetAsDefault"]))
    }


@action(
    "GetPolicyVersion",
    service=RAM,
    resource=(POLICY, "PolicyName"),
    arn="policy/{PolicyName}",
    params=(POLICY_NAME, POLICY_TYPE, VERSION_ID),
    resolve=resolve_policy,
)
def get_policy_version(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query one version of a policy."""
    return {"PolicyVersion": _version(ctx, find_policy(ctx, p["PolicyName"], p["PolicyType"]), p["VersionId"])}


@action(
    "ListPolicyVersions",
    service=RAM,
    resource=(POLICY, "PolicyName"),
    arn="policy/{PolicyName}",
    params=(POLICY_NAME, POLICY_TYPE),
    resolve=resolve_policy,
)
def list_policy_versions(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List a policy's versions, newest first."""
    return {"PolicyVersions": {"PolicyVersion": _versions(ctx, find_policy(ctx, p["PolicyName"], p["PolicyType"]))}}


@action(
    "DeletePolicyVersion",
    service=RAM,
    rw=WRITE,
    resource=(POLICY, "PolicyName"),
    arn="policy/{PolicyName}",
    params=(POLICY_NAME, VERSION_ID),
    sensitive=True,
)
def delete_policy_version(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete a version of a custom policy other than its default version."""
    policy = find_custom(ctx, p["PolicyName"])
    row = _policy_row(ctx, policy)
    _version(ctx, policy, p["VersionId"])
    if p["VersionId"] == row.default_version:
        raise ApiError(
            "DeleteConflict.Policy.DefaultVersion",
            f"{p['VersionId']} is the default version of {policy.name}; "
            "make another version the default first, or delete the policy.",
        )
    ctx.conn.execute(
        delete(policy_versions).where(
            policy_versions.c.policy_id == row.id, policy_versions.c.version_id == p["VersionId"]
        )
    )
    ctx.conn.execute(update(policies).where(policies.c.id == row.id).values(updated_ms=ctx.now_ms))
    return {}


@action(
    "SetDefaultPolicyVersion",
    service=RAM,
    rw=WRITE,
    resource=(POLICY, "PolicyName"),
    arn="policy/{PolicyName}",
    params=(POLICY_NAME, VERSION_ID),
    sensitive=True,
)
def set_default_policy_version(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Make a version the one in force, from the next call on."""
    policy = find_custom(ctx, p["PolicyName"])
    row = _policy_row(ctx, policy)
    _version(ctx, policy, p["VersionId"])
    ctx.conn.execute(
        update(policies).where(policies.c.id == row.id).values(default_version=p["VersionId"], updated_ms=ctx.now_ms)
    )
    return {}


# --- attachments ----------------------------------------------------------------------------------------


def find_user_by_name(ctx: CallContext, name: str) -> Any:
    """The live user of a RAM `UserName` (login name, or a full UserPrincipalName)."""
    if "@" in name:
        return find_user(ctx, name)
    return find_user(ctx, f"{name}@{accounts.user_domains(ctx.conn, ctx.account_id)[0]}")


def _no_resource_group(p: dict[str, Any]) -> None:
    if p.get("ResourceGroupId"):
        raise ApiError(
            "InvalidParameter.ResourceGroupId",
            'The parameter - "ResourceGroupId" is not supported: OpenIMS has '
            "no resource groups, so policies are attached for the whole account. Omit it.",
        )


@dataclass(frozen=True)
class _Holder:
    """Users or groups as holders of attachments: their table, key column, error names and quota."""

    table: Any
    key: str
    entity: str  # User or Group, as in the error codes
    limits: dict[str, int]  # by policy type


_USERS = _Holder(
    user_policies,
    "user_id",
    "User",
    {system.CUSTOM: quotas.ATTACHED_POLICIES_PER_USER, system.SYSTEM: quotas.ATTACHED_SYSTEM_POLICIES_PER_USER},
)
_GROUPS = _Holder(
    group_policies,
    "group_id",
    "Group",
    {system.CUSTOM: quotas.ATTACHED_POLICIES_PER_GROUP, system.SYSTEM: quotas.ATTACHED_SYSTEM_POLICIES_PER_GROUP},
)


def _attach(ctx: CallContext, holder: _Holder, holder_id: str, holder_name: str, p: dict[str, Any]) -> None:
    _no_resource_group(p)
    policy = find_policy(ctx, p["PolicyName"], p["PolicyType"])
    t, key = holder.table, holder.table.c[holder.key]
    exists = ctx.conn.execute(
        select(key).where(key == holder_id, t.c.policy_type == policy.policy_type, t.c.policy_name == policy.name)
    ).first()
    if exists:
        raise ApiError(
            f"EntityAlreadyExists.{holder.entity}.Policy",
            f"The policy {policy.name} is already attached to the {holder.entity.lower()} {holder_name}.",
        )
    count = ctx.conn.execute(
        select(func.count()).select_from(t).where(key == holder_id, t.c.policy_type == policy.policy_type)
    ).scalar_one()
    limit = holder.limits[policy.policy_type]
    if count >= limit:
        raise ApiError(
            f"LimitExceeded.{holder.entity}.Policy",
            f"A {holder.entity.lower()} can have at most {limit} {policy.policy_type.lower()} policies attached.",
        )
    ctx.conn.execute(
        insert(t).values(
            {
                holder.key: holder_id,
                "policy_type": policy.policy_type,
                "policy_name": policy.name,
                "policy_id": policy.policy_id,
                "account_id": ctx.account_id,
                "attached_ms": ctx.now_ms,
            }
        )
    )


def _detach(ctx: CallContext, holder: _Holder, holder_id: str, holder_name: str, p: dict[str, Any]) -> None:
    _no_resource_group(p)
    policy = find_policy(ctx, p["PolicyName"], p["PolicyType"])
    t, key = holder.table, holder.table.c[holder.key]
    gone = ctx.conn.execute(
        delete(t).where(key == holder_id, t.c.policy_type == policy.policy_type, t.c.policy_name == policy.name)
    ).rowcount
    if not gone:
        raise ApiError(
            f"EntityNotExist.{holder.entity}.Policy",
            f"The policy {policy.name} is not attached to the {holder.entity.lower()} {holder_name}.",
        )


ATTACH_USER_PARAMS = (POLICY_NAME, POLICY_TYPE, USER_NAME, RESOURCE_GROUP)
ATTACH_GROUP_PARAMS = (POLICY_NAME, POLICY_TYPE, GROUP_NAME, RESOURCE_GROUP)


@action(
    "AttachPolicyToUser",
    service=RAM,
    rw=WRITE,
    resource=(POLICY, "PolicyName"),
    arn="policy/{PolicyName},user/{UserName}",
    params=ATTACH_USER_PARAMS,
    resolve=resolve_policy,
    resources=((USER, "UserName"),),
    sensitive=True,
)
def attach_policy_to_user(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Attach a policy to a RAM user; it applies from the user's next call."""
    user = find_user_by_name(ctx, p["UserName"])
    _attach(ctx, _USERS, user.id, user.upn, p)
    return {}


@action(
    "DetachPolicyFromUser",
    service=RAM,
    rw=WRITE,
    resource=(POLICY, "PolicyName"),
    arn="policy/{PolicyName},user/{UserName}",
    params=ATTACH_USER_PARAMS,
    resolve=resolve_policy,
    resources=((USER, "UserName"),),
    sensitive=True,
)
def detach_policy_from_user(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Detach a policy from a RAM user; it stops applying from the user's next call."""
    user = find_user_by_name(ctx, p["UserName"])
    _detach(ctx, _USERS, user.id, user.upn, p)
    return {}


@action(
    "AttachPolicyToGroup",
    service=RAM,
    rw=WRITE,
    resource=(POLICY, "PolicyName"),
    arn="policy/{PolicyName},group/{GroupName}",
    params=ATTACH_GROUP_PARAMS,
    resolve=resolve_policy,
    resources=((GROUP, "GroupName"),),
    sensitive=True,
)
def attach_policy_to_group(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Attach a policy to a user group; it applies to every member from their next call."""
    group = find_group(ctx, p["GroupName"])
    _attach(ctx, _GROUPS, group.id, group.name, p)
    return {}


@action(
    "DetachPolicyFromGroup",
    service=RAM,
    rw=WRITE,
    resource=(POLICY, "PolicyName"),
    arn="policy/{PolicyName},group/{GroupName}",
    params=ATTACH_GROUP_PARAMS,
    resolve=resolve_policy,
    resources=((GROUP, "GroupName"),),
    sensitive=True,
)
def detach_policy_from_group(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Detach a policy from a user group."""
    group = find_group(ctx, p["GroupName"])
    _detach(ctx, _GROUPS, group.id, group.name, p)
    return {}


def _policies_of(ctx: CallContext, holder: _Holder, holder_id: str) -> list[dict[str, Any]]:
    t = holder.table
    rows = ctx.conn.execute(
        select(t.c.policy_type, t.c.policy_name, t.c.attached_ms, policies.c.description, policies.c.default_version)
        .select_from(t.outerjoin(policies, policies.c.id == t.c.policy_id))
        .where(t.c[holder.key] == holder_id)
        .order_by(t.c.attached_ms, t.c.policy_name)
    ).all()
    out = []
    for r in rows:
        sp = system.find(r.policy_name) if r.policy_type == SYSTEM else None
        out.append(
            {
                "PolicyName": r.policy_name,
                "PolicyType": r.policy_type,
                "Description": sp.description if sp else (r.description or ""),
                "DefaultVersion": system.VERSION if sp else (r.default_version or ""),
                "AttachDate": clock.iso(r.attached_ms),
            }
        )
    return out


@action(
    "ListPoliciesForUser",
    service=RAM,
    resource=(USER, None),
    arn="user/{UserName}",
    params=(USER_NAME,),
    resources=((USER, "UserName"),),
)
def list_policies_for_user(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the policies attached directly to a RAM user (not those it has through its groups)."""
    user = find_user_by_name(ctx, p["UserName"])
    return {"Policies": {"Policy": _policies_of(ctx, _USERS, user.id)}}


@action(
    "ListPoliciesForGroup", service=RAM, resource=(GROUP, "GroupName"), arn="group/{GroupName}", params=(GROUP_NAME,)
)
def list_policies_for_group(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the policies attached to a user group."""
    group = find_group(ctx, p["GroupName"])
    return {"Policies": {"Policy": _policies_of(ctx, _GROUPS, group.id)}}


@action(
    "ListEntitiesForPolicy",
    service=RAM,
    resource=(POLICY, "PolicyName"),
    arn="policy/{PolicyName}",
    params=(POLICY_NAME, POLICY_TYPE),
    resolve=resolve_policy,
)
def list_entities_for_policy(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the users and groups a policy is attached to (OpenIMS has no roles: Roles is always empty)."""
    policy = find_policy(ctx, p["PolicyName"], p["PolicyType"])
    user_items = [
        {"UserId": r.id, "UserName": r.name, "DisplayName": r.display_name, "AttachDate": clock.iso(r.attached_ms)}
        for r in _attached_users(ctx, policy)
    ]
    group_items = [
        {"GroupName": r.name, "Comments": r.comments, "AttachDate": clock.iso(r.attached_ms)}
        for r in _attached_groups(ctx, policy)
    ]
    return {"Users": {"User": user_items}, "Groups": {"Group": group_items}, "Roles": {"Role": []}}


# --- diagnostics ----------------------------------------------------------------------------------------


@action("DecodeDiagnosticMessage", service=RAM, params=(Str("EncodedDiagnosticMessage", required=True, max_len=16384),))
def decode_diagnostic_message(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Decode the EncodedDiagnosticMessage of a NoPermission error of this account: the action, resource,
    principal and condition values that were judged, and the policies behind an explicit deny."""
    return {"DecodedDiagnosticMessage": decide.decode(ctx, p["EncodedDiagnosticMessage"])}

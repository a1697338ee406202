"""RAM policies: custom policies with their versions, and policy attachments to users and groups.

Tables (all times integer ms, UTC):
- `policies`: custom policies. `name` is unique per account (compared case-insensitively by the code);
  `default_version` is the version in force (`v<N>`); `next_version` is N for the next version created,
  so a version ID is never reused, even after its deletion (compiled policies are cached by it).
- `policy_versions`: the immutable documents, `number` N of `v<N>` for ordering.
- `user_policies` / `group_policies`: attachments. `policy_type` is System or Custom and `policy_name`
  the policy's name; `policy_id` references the custom policy (NULL for a system policy, which lives in
  code). Attachments go with their user or group; a user in the recycle bin keeps them (restored with it).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from openims.store.constraints import register
from openims.store.schema import metadata

policies = Table(
    "policies",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("description", String(1024), nullable=False, server_default=""),
    Column("default_version", String(16), nullable=False),
    Column("next_version", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
Index("uq_policies_account_name", policies.c.account_id, policies.c.name, unique=True)

policy_versions = Table(
    "policy_versions",
    metadata,
    Column("policy_id", String(24), ForeignKey("policies.id", ondelete="CASCADE"), primary_key=True),
    Column("version_id", String(16), primary_key=True),
    Column("number", Integer, nullable=False),
    Column("document", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)


def _attachments(name: str, entity: str, entity_table: str) -> Table:
    table = Table(
        name,
        metadata,
        Column(entity, String(24), ForeignKey(f"{entity_table}.id", ondelete="CASCADE"), primary_key=True),
        Column("policy_type", String(8), primary_key=True),
        Column("policy_name", String(128), primary_key=True),
        Column("policy_id", String(24), ForeignKey("policies.id", ondelete="CASCADE")),
        Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        Column("attached_ms", BigInteger, nullable=False),
    )
    # ListEntitiesForPolicy and AttachmentCount look attachments up by policy.
    Index(f"ix_{name}_policy", table.c.account_id, table.c.policy_type, table.c.policy_name)
    Index(f"ix_{name}_policy_id", table.c.policy_id)
    return table


user_policies = _attachments("user_policies", "user_id", "users")
group_policies = _attachments("group_policies", "group_id", "groups")

register(
    "uq_policies_account_name",
    "EntityAlreadyExists.Policy",
    "The policy already exists.",
    "policies.account_id, policies.name",
)
register(
    "pk_user_policies",
    "EntityAlreadyExists.User.Policy",
    "The policy is already attached to the user.",
    "user_policies.user_id, user_policies.policy_type, user_policies.policy_name",
)
register(
    "pk_group_policies",
    "EntityAlreadyExists.Group.Policy",
    "The policy is already attached to the group.",
    "group_policies.group_id, group_policies.policy_type, group_policies.policy_name",
)
register(
    "pk_policy_versions",
    "Conflict.Policy.Version",
    "Another policy version was created at the same time; retry.",
    "policy_versions.policy_id, policy_versions.version_id",
)

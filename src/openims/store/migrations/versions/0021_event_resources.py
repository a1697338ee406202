"""event_resources: every resource of every event, indexed; events.principal_id, event_type and sensitive

LookupEvents matched ResourceName/ResourceType against one stored resource per event, so "everything that
happened to alice" missed the events that name her second (AddUserToGroup names the group first). Each event's
referencedResources now has one row per resource in event_resources, and the two single-resource indexes on
events go. Existing events are indexed here from the referencedResources of their JSON (or, for bodies without
it, from the one resource stored in their columns).

PrincipalId, EventType and SensitiveAction lookups get columns: the first two are filled from each event's JSON;
`sensitive` from the names of the actions declared sensitive at this revision (docs/resources.md).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 14:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

SENSITIVE = (
    "CreateAccessKey",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "SetAccessKeyPolicy",
    "SetAccessKeyPolicyForAccount",
    "RestoreAccessKeyFromRecycleBin",
    "DeleteAccessKeyInRecycleBin",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "DeleteLoginProfile",
    "ChangePassword",
    "SetPasswordPolicy",
    "CreateVirtualMFADevice",
    "BindMFADevice",
    "UnbindMFADevice",
    "DisableVirtualMFA",
    "DeleteVirtualMFADevice",
    "CreatePolicy",
    "DeletePolicy",
    "CreatePolicyVersion",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "AttachPolicyToUser",
    "DetachPolicyFromUser",
    "AttachPolicyToGroup",
    "DetachPolicyFromGroup",
    "SetSecurityPreference",
    "SetUserSsoSettings",
    "CreateAppSecret",
    "DeleteAppSecret",
    "StopLogging",
    "DeleteTrail",
)

_SQLITE_RESOURCES = """
INSERT INTO event_resources (event_seq, resource_type, resource_name, account_id, event_ms)
SELECT e.seq, substr(t.key, 1, 64), substr(n.value, 1, 255), e.account_id, e.event_ms
FROM events e,
     json_each(CASE WHEN json_valid(e.body) THEN e.body ELSE '{}' END, '$.referencedResources') t,
     json_each(CASE WHEN json_valid(t.value) THEN t.value ELSE '[]' END) n
WHERE t.key <> '' AND n.type = 'text' AND n.value <> ''
UNION
SELECT seq, resource_type, resource_name, account_id, event_ms FROM events
WHERE resource_type <> '' AND resource_name <> ''
  AND (NOT json_valid(body) OR json_type(body, '$.referencedResources') IS NULL)
"""

_POSTGRESQL_RESOURCES = """
INSERT INTO event_resources (event_seq, resource_type, resource_name, account_id, event_ms)
SELECT e.seq, left(t.key, 64), left(n.value, 255), e.account_id, e.event_ms
FROM events e
CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(e.body::jsonb -> 'referencedResources') = 'object'
                                   THEN e.body::jsonb -> 'referencedResources' ELSE '{}'::jsonb END) t
CROSS JOIN LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(t.value) = 'array'
                                                  THEN t.value ELSE '[]'::jsonb END) n
WHERE t.key <> '' AND n.value <> ''
UNION
SELECT seq, resource_type, resource_name, account_id, event_ms FROM events
WHERE resource_type <> '' AND resource_name <> '' AND NOT (body::jsonb ? 'referencedResources')
"""


def upgrade() -> None:
    # Plain ADD COLUMN (see Database.migrate); the defaults make it instant on both backends.
    op.add_column("events", sa.Column("principal_id", sa.String(length=64), server_default="", nullable=False))
    op.add_column("events", sa.Column("event_type", sa.String(length=32), server_default="ApiCall", nullable=False))
    op.add_column("events", sa.Column("sensitive", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "UPDATE events SET "
            "principal_id = "
            "COALESCE(substr(CAST(json_extract(body, '$.userIdentity.principalId') AS TEXT), 1, 64), ''), "
            "event_type = COALESCE(substr(json_extract(body, '$.eventType'), 1, 32), '') "
            "WHERE json_valid(body)"
        )
    else:
        op.execute(
            "UPDATE events SET "
            "principal_id = COALESCE(left(body::jsonb #>> '{userIdentity,principalId}', 64), ''), "
            "event_type = COALESCE(left(body::jsonb ->> 'eventType', 32), '')"
        )
    names = ", ".join(f"'{n}'" for n in SENSITIVE)
    op.execute(f"UPDATE events SET sensitive = true WHERE event_name IN ({names})")
    op.create_table(
        "event_resources",
        sa.Column(
            "event_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_name", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("event_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_seq"], ["events.seq"], name=op.f("fk_event_resources_event_seq_events"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("event_seq", "resource_type", "resource_name", name=op.f("pk_event_resources")),
    )
    op.execute(_SQLITE_RESOURCES if dialect == "sqlite" else _POSTGRESQL_RESOURCES)
    op.create_index(
        "ix_event_resources_name",
        "event_resources",
        ["account_id", "resource_name", "event_ms", "event_seq"],
        unique=False,
    )
    op.create_index(
        "ix_event_resources_type",
        "event_resources",
        ["account_id", "resource_type", "event_ms", "event_seq"],
        unique=False,
    )
    op.drop_index("ix_events_resource_type", table_name="events")
    op.drop_index("ix_events_resource_name", table_name="events")
    op.create_index("ix_events_principal_id", "events", ["account_id", "principal_id", "event_ms", "seq"])
    op.create_index("ix_events_event_type", "events", ["account_id", "event_type", "event_ms", "seq"])
    op.create_index(
        "ix_events_sensitive",
        "events",
        ["account_id", "event_ms", "seq"],
        unique=False,
        sqlite_where=sa.text("sensitive = 1"),
        postgresql_where=sa.text("sensitive"),
    )


def downgrade() -> None:
    op.drop_index("ix_events_sensitive", table_name="events")
    op.drop_index("ix_events_event_type", table_name="events")
    op.drop_index("ix_events_principal_id", table_name="events")
    op.create_index("ix_events_resource_name", "events", ["account_id", "resource_name", "event_ms", "seq"])
    op.create_index("ix_events_resource_type", "events", ["account_id", "resource_type", "event_ms", "seq"])
    op.drop_index("ix_event_resources_type", table_name="event_resources")
    op.drop_index("ix_event_resources_name", table_name="event_resources")
    op.drop_table("event_resources")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("sensitive")
        batch_op.drop_column("event_type")
        batch_op.drop_column("principal_id")

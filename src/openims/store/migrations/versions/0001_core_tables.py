"""core tables

Revision ID: 0001
Revises:
Create Date: 2026-11-26 03:18:38.138165
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("alias", name=op.f("uq_accounts_alias")),
    )
    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("event_ms", sa.BigInteger(), nullable=False),
        sa.Column("event_name", sa.String(length=64), nullable=False),
        sa.Column("event_rw", sa.String(length=8), nullable=False),
        sa.Column("service_name", sa.String(length=32), nullable=False),
        sa.Column("user_name", sa.String(length=160), server_default="", nullable=False),
        sa.Column("access_key_id", sa.String(length=32), server_default="", nullable=False),
        sa.Column("resource_type", sa.String(length=64), server_default="", nullable=False),
        sa.Column("resource_name", sa.String(length=255), server_default="", nullable=False),
        sa.Column("error_code", sa.String(length=128), nullable=True),
        sa.Column("source_ip", sa.String(length=64), server_default="", nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_access_key_id", ["account_id", "access_key_id", "event_ms", "seq"], unique=False
        )
        batch_op.create_index("ix_events_error_code", ["account_id", "error_code", "event_ms", "seq"], unique=False)
        batch_op.create_index("ix_events_event_name", ["account_id", "event_name", "event_ms", "seq"], unique=False)
        batch_op.create_index("ix_events_event_rw", ["account_id", "event_rw", "event_ms", "seq"], unique=False)
        batch_op.create_index(
            "ix_events_resource_name", ["account_id", "resource_name", "event_ms", "seq"], unique=False
        )
        batch_op.create_index(
            "ix_events_resource_type", ["account_id", "resource_type", "event_ms", "seq"], unique=False
        )
        batch_op.create_index("ix_events_service_name", ["account_id", "service_name", "event_ms", "seq"], unique=False)
        batch_op.create_index("ix_events_source_ip", ["account_id", "source_ip", "event_ms", "seq"], unique=False)
        batch_op.create_index("ix_events_time", ["account_id", "event_ms", "seq"], unique=False)
        batch_op.create_index("ix_events_user_name", ["account_id", "user_name", "event_ms", "seq"], unique=False)

    op.create_table(
        "signature_nonces",
        sa.Column("access_key_id", sa.String(length=32), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("access_key_id", "nonce", name=op.f("pk_signature_nonces")),
    )
    with op.batch_alter_table("signature_nonces", schema=None) as batch_op:
        batch_op.create_index("ix_signature_nonces_expires", ["expires_ms"], unique=False)

    op.create_table(
        "groups",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=128), server_default="", nullable=False),
        sa.Column("comments", sa.String(length=256), server_default="", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_groups_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
    )
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.create_index("uq_groups_account_name", ["account_id", "name"], unique=True)

    op.create_table(
        "resource_tags",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("tag_key", sa.String(length=128), nullable=False),
        sa.Column("tag_value", sa.String(length=128), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_resource_tags_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("resource_type", "resource_id", "tag_key", name=op.f("pk_resource_tags")),
    )
    with op.batch_alter_table("resource_tags", schema=None) as batch_op:
        batch_op.create_index("ix_resource_tags_lookup", ["account_id", "tag_key", "tag_value"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("upn", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column("email", sa.String(length=128), server_default="", nullable=False),
        sa.Column("mobile_phone", sa.String(length=32), server_default="", nullable=False),
        sa.Column("comments", sa.String(length=256), server_default="", nullable=False),
        sa.Column("provision_type", sa.String(length=32), server_default="Manual", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_login_ms", sa.BigInteger(), nullable=True),
        sa.Column("deleted_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_users_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(
            "uq_users_account_name",
            ["account_id", sa.text("lower(name)")],
            unique=True,
            sqlite_where=sa.text("deleted_ms IS NULL"),
            postgresql_where=sa.text("deleted_ms IS NULL"),
        )

    op.create_table(
        "access_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=True),
        sa.Column("secret_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="Active", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("deleted_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_access_keys_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_access_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_keys")),
    )
    with op.batch_alter_table("access_keys", schema=None) as batch_op:
        batch_op.create_index("ix_access_keys_account_user", ["account_id", "user_id"], unique=False)

    op.create_table(
        "group_members",
        sa.Column("group_id", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=False),
        sa.Column("joined_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_group_members_group_id_groups"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_group_members_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_group_members")),
    )
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.create_index("ix_group_members_user", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.drop_index("ix_group_members_user")

    op.drop_table("group_members")
    with op.batch_alter_table("access_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_access_keys_account_user")

    op.drop_table("access_keys")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_users_account_name",
            sqlite_where=sa.text("deleted_ms IS NULL"),
            postgresql_where=sa.text("deleted_ms IS NULL"),
        )

    op.drop_table("users")
    with op.batch_alter_table("resource_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_tags_lookup")

    op.drop_table("resource_tags")
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_index("uq_groups_account_name")

    op.drop_table("groups")
    with op.batch_alter_table("signature_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_signature_nonces_expires")

    op.drop_table("signature_nonces")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_user_name")
        batch_op.drop_index("ix_events_time")
        batch_op.drop_index("ix_events_source_ip")
        batch_op.drop_index("ix_events_service_name")
        batch_op.drop_index("ix_events_resource_type")
        batch_op.drop_index("ix_events_resource_name")
        batch_op.drop_index("ix_events_event_rw")
        batch_op.drop_index("ix_events_event_name")
        batch_op.drop_index("ix_events_error_code")
        batch_op.drop_index("ix_events_access_key_id")

    op.drop_table("events")
    op.drop_table("accounts")

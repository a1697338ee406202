"""alerts: alert rules, their generations, threshold state, and the alerts queued for delivery

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 13:05:26.250079
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_generations",
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_alert_generations_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_alert_generations")),
    )
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=256), server_default="", nullable=False),
        sa.Column("preset", sa.String(length=32), server_default="", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("(true)"), nullable=False),
        sa.Column("severity", sa.String(length=8), server_default="medium", nullable=False),
        sa.Column("conditions", sa.Text(), server_default="[]", nullable=False),
        sa.Column("check_name", sa.String(length=32), server_default="", nullable=False),
        sa.Column("insight_type", sa.String(length=64), server_default="", nullable=False),
        sa.Column("insight_state", sa.String(length=8), server_default="", nullable=False),
        sa.Column("threshold", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("window_s", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("group_by", sa.String(length=32), server_default="", nullable=False),
        sa.Column("webhook_url", sa.String(length=2048), server_default="", nullable=False),
        sa.Column("webhook_secret_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("syslog_address", sa.String(length=262), server_default="", nullable=False),
        sa.Column("syslog_tls", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("syslog_format", sa.String(length=8), server_default="json", nullable=False),
        sa.Column("email_to", sa.String(length=1024), server_default="", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_alert_rules_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
    )
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.create_index("uq_alert_rules_account_name", ["account_id", "name"], unique=True)

    op.create_table(
        "alert_rule_state",
        sa.Column("rule_id", sa.String(length=32), nullable=False),
        sa.Column("group_key", sa.String(length=255), nullable=False),
        sa.Column("last_fired_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("touched_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alert_rules.id"], name=op.f("fk_alert_rule_state_rule_id_alert_rules"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("rule_id", "group_key", name=op.f("pk_alert_rule_state")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("rule_id", sa.String(length=32), nullable=True),
        sa.Column("rule_name", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=36), server_default="", nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("test", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), server_default="", nullable=False),
        sa.Column("lease_until_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("done_targets", sa.String(length=32), server_default="", nullable=False),
        sa.Column("last_attempt_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_alerts_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alert_rules.id"], name=op.f("fk_alerts_rule_id_alert_rules"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_account_created", ["account_id", "created_ms"], unique=False)
        batch_op.create_index(
            "ix_alerts_due",
            ["next_attempt_ms"],
            unique=False,
            sqlite_where=sa.text("finished_ms IS NULL"),
            postgresql_where=sa.text("finished_ms IS NULL"),
        )
        batch_op.create_index("ix_alerts_rule_created", ["rule_id", "created_ms"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_rule_created")
        batch_op.drop_index(
            "ix_alerts_due",
            sqlite_where=sa.text("finished_ms IS NULL"),
            postgresql_where=sa.text("finished_ms IS NULL"),
        )
        batch_op.drop_index("ix_alerts_account_created")

    op.drop_table("alerts")
    op.drop_table("alert_rule_state")
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.drop_index("uq_alert_rules_account_name")

    op.drop_table("alert_rules")
    op.drop_table("alert_generations")

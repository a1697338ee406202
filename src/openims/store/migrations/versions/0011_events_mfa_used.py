"""events_mfa_used: whether each event's caller had passed MFA, as a column with a partial index

The console's MFA filter and LookupEvents' `MFAUsed` attribute used to read each event's JSON after the
indexed query, so a page could come back with fewer rows than asked. Existing events are filled in from
their JSON with the same rule as `openims.audit.event.mfa_used`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_PATHS = (
    "userIdentity.sessionContext.attributes.mfaAuthenticated",
    "additionalEventData.MFAChecked",
    "additionalEventData.isMFAChecked",
)


def _flag(dialect: str, path: str) -> str:
    if dialect == "sqlite":
        return f"lower(CAST(json_extract(body, '$.{path}') AS TEXT)) IN ('true', '1')"
    return f"lower(CAST(body AS jsonb) #>> '{{{','.join(path.split('.'))}}}') = 'true'"


def upgrade() -> None:
    # Plain ADD COLUMN (see Database.migrate); the default makes it instant on both backends.
    op.add_column("events", sa.Column("mfa_used", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    dialect = op.get_bind().dialect.name
    # Bodies are compact JSON (audit.event.record), so the LIKEs skip every body without a "true" flag
    # unparsed; the JSON test then decides.
    op.execute(
        "UPDATE events SET mfa_used = true WHERE "
        '(body LIKE \'%"mfaAuthenticated":"true"%\' OR body LIKE \'%MFAChecked":"true"%\') AND '
        f"({' OR '.join(_flag(dialect, p) for p in _PATHS)})"
    )
    op.create_index(
        "ix_events_mfa_used",
        "events",
        ["account_id", "event_ms", "seq"],
        unique=False,
        sqlite_where=sa.text("mfa_used = 1"),
        postgresql_where=sa.text("mfa_used"),
    )


def downgrade() -> None:
    op.drop_index("ix_events_mfa_used", table_name="events")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("mfa_used")

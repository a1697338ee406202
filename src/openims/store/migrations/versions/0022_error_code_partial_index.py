"""events.ix_events_error_code only over failed calls

Most events have no error code, yet each one was written into the error-code index as well. The index now
holds failed calls only (a partial index), which is all ErrorCode lookups read: an equality, a prefix and
"any error" each imply error_code IS NOT NULL, on SQLite and PostgreSQL alike.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 17:15:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_COLUMNS = ["account_id", "error_code", "event_ms", "seq"]


def upgrade() -> None:
    op.drop_index("ix_events_error_code", table_name="events")
    op.create_index(
        "ix_events_error_code",
        "events",
        _COLUMNS,
        sqlite_where=sa.text("error_code IS NOT NULL"),
        postgresql_where=sa.text("error_code IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_events_error_code", table_name="events")
    op.create_index("ix_events_error_code", "events", _COLUMNS)

"""root_mfa: the root identity's virtual MFA on its accounts row

The seed is sealed with the master key (`openims.signin.root_mfa`); NULL means the root has no MFA.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs, never a batch copy of `accounts` (see Database.migrate).
    op.add_column("accounts", sa.Column("mfa_seed_sealed", sa.LargeBinary(), nullable=True))
    op.add_column("accounts", sa.Column("mfa_bound_ms", sa.BigInteger(), nullable=True))
    op.add_column("accounts", sa.Column("mfa_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("mfa_last_step")
        batch_op.drop_column("mfa_bound_ms")
        batch_op.drop_column("mfa_seed_sealed")

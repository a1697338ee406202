"""authz_version: a per-account counter the database bumps on every change to what authorizes a call

Triggers, not application code, keep it: every policy attachment, group membership, default-version and
AccessKey network-policy change, by any family or server process (cascades included), moves it, so a
per-process cache keyed by it (a user's policies in force, a key's network ACLs) is never stale for a call
authenticated after the change committed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 06:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Which account a changed row belongs to. group_members has no account column: its group, or (when a
# cascade has already removed the group) its user, says.
_ACCOUNT_OF = {
    "user_policies": "{row}.account_id",
    "group_policies": "{row}.account_id",
    "access_key_policies": "{row}.account_id",
    "group_members": "COALESCE((SELECT account_id FROM groups WHERE id = {row}.group_id), "
    "(SELECT account_id FROM users WHERE id = {row}.user_id))",
}
_BUMP = "UPDATE accounts SET authz_version = authz_version + 1 WHERE id = {account}"

_PG_FUNCTION = """
CREATE FUNCTION openims_bump_authz_version() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    IF TG_TABLE_NAME = 'group_members' THEN
        UPDATE accounts SET authz_version = authz_version + 1
         WHERE id = COALESCE((SELECT account_id FROM groups WHERE id = r.group_id),
                             (SELECT account_id FROM users WHERE id = r.user_id));
    ELSE
        UPDATE accounts SET authz_version = authz_version + 1 WHERE id = r.account_id;
    END IF;
    RETURN NULL;
END $$
"""


def _sqlite_triggers() -> list[str]:
    out = []
    for table, account in _ACCOUNT_OF.items():
        for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            out.append(
                f"CREATE TRIGGER authz_version_{table}_{event.lower()} AFTER {event} ON {table} "
                f"BEGIN {_BUMP.format(account=account.format(row=row))}; END"
            )
    out.append(
        "CREATE TRIGGER authz_version_policies_default AFTER UPDATE OF default_version ON policies "
        "WHEN NEW.default_version <> OLD.default_version "
        f"BEGIN {_BUMP.format(account='NEW.account_id')}; END"
    )
    return out


def _pg_triggers() -> list[str]:
    out = [_PG_FUNCTION]
    for table in _ACCOUNT_OF:
        out.append(
            f"CREATE TRIGGER authz_version AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION openims_bump_authz_version()"
        )
    out.append(
        "CREATE TRIGGER authz_version AFTER UPDATE OF default_version ON policies FOR EACH ROW "
        "WHEN (OLD.default_version IS DISTINCT FROM NEW.default_version) "
        "EXECUTE FUNCTION openims_bump_authz_version()"
    )
    return out


def upgrade() -> None:
    # A plain ADD COLUMN, never a batch copy of `accounts` (see Database.migrate).
    op.add_column("accounts", sa.Column("authz_version", sa.BigInteger(), server_default=sa.text("0"), nullable=False))
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _sqlite_triggers() if sqlite else _pg_triggers():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in _ACCOUNT_OF:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER authz_version_{table}_{event}")
        op.execute("DROP TRIGGER authz_version_policies_default")
    else:
        for table in (*_ACCOUNT_OF, "policies"):
            op.execute(f"DROP TRIGGER authz_version ON {table}")
        op.execute("DROP FUNCTION openims_bump_authz_version()")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("authz_version")

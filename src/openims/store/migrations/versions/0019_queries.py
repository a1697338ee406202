"""queries: query_history and query_templates; on PostgreSQL the query engine's role, view and binding table

SQL over the trail (openims.query). On PostgreSQL a query runs as the role `openims_query`, whose one privilege
is SELECT on the view `query_events`; the view shows the rows of the account bound in `query_binding`, which only
ever holds a row inside a query's own (rolled back) transaction. Creating the role needs CREATEROLE (or a DBA
creates `openims_query` beforehand and grants it to the server's user); roles belong to the cluster, so several
OpenIMS databases on one server share it, each granting it its own view only.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 13:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# The columns of the `events` table a query sees (openims.query.columns), as of this revision.
_VIEW = """
CREATE VIEW query_events WITH (security_barrier) AS
SELECT e.event_id AS "eventId",
       to_char(to_timestamp(e.event_ms / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS "eventTime",
       e.event_ms AS "eventTimeMs",
       e.event_name AS "eventName",
       e.event_rw AS "eventRW",
       e.service_name AS "serviceName",
       e.user_name AS "userName",
       e.access_key_id AS "accessKeyId",
       e.resource_type AS "resourceType",
       e.resource_name AS "resourceName",
       e.error_code AS "errorCode",
       e.source_ip AS "sourceIpAddress",
       e.mfa_used AS "mfaUsed",
       CAST(e.body AS jsonb) ->> 'eventType' AS "eventType",
       CAST(e.body AS jsonb) ->> 'eventSource' AS "eventSource",
       CAST(e.body AS jsonb) ->> 'userAgent' AS "userAgent",
       CAST(e.body AS jsonb) #>> '{userIdentity,type}' AS "userType",
       CAST(e.body AS jsonb) #>> '{userIdentity,principalId}' AS "principalId",
       CAST(e.body AS jsonb) ->> 'requestId' AS "requestId",
       CAST(e.body AS jsonb) ->> 'errorMessage' AS "errorMessage",
       CAST(e.body AS jsonb) AS "event"
FROM events e
WHERE e.account_id = (SELECT b.account_id FROM query_binding b WHERE b.pid = pg_backend_pid())
"""


def upgrade() -> None:
    op.create_table(
        "query_history",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("query_sql", sa.Text(), nullable=False),
        sa.Column("simple_query", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_query_history_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_query_history")),
    )
    op.create_index("ix_query_history_account", "query_history", ["account_id", "created_ms"], unique=False)
    op.create_table(
        "query_templates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("template_sql", sa.Text(), nullable=False),
        sa.Column("simple_query", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_query_templates_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_query_templates")),
    )
    op.create_index("uq_query_templates_account_name", "query_templates", ["account_id", "name"], unique=True)
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite needs no objects: each query gets its own read-only connection and TEMP views.
    # Never committed to (see the module docstring). No unique key: concurrent queries each insert a row that only
    # they see, and a key would make them wait for each other.
    op.execute("CREATE TABLE query_binding (pid integer NOT NULL, account_id varchar(16) NOT NULL)")
    op.execute(_VIEW)
    # Two databases of one cluster may migrate at once (tests, several deployments): whoever loses the race to
    # create the role or grant it finds it done.
    op.execute(
        "DO $$ BEGIN "
        "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'openims_query') THEN "
        "BEGIN CREATE ROLE openims_query NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END; END IF; "
        "IF NOT pg_has_role(current_user, 'openims_query', 'MEMBER') THEN "
        "BEGIN EXECUTE format('GRANT openims_query TO %I', current_user); "
        "EXCEPTION WHEN unique_violation THEN NULL; END; END IF; "
        "END $$"
    )
    op.execute("REVOKE ALL ON query_binding FROM PUBLIC")
    op.execute("GRANT SELECT ON query_events TO openims_query")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("REVOKE ALL ON query_events FROM openims_query")
        op.execute("DROP VIEW query_events")
        op.execute("DROP TABLE query_binding")
    op.drop_index("uq_query_templates_account_name", table_name="query_templates")
    op.drop_table("query_templates")
    op.drop_index("ix_query_history_account", table_name="query_history")
    op.drop_table("query_history")

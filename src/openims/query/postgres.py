"""Runs a query over one account's events on PostgreSQL.

What the database enforces (objects of migration 0019):
- the query runs as the role `openims_query` (SET LOCAL ROLE), which holds one privilege: SELECT on the view
  `query_events`. The stored tables, pg_read_file and the other file and server functions are refused to it;
- `query_events` (security_barrier, so no predicate of the query runs on a row before the account filter) shows
  only the rows of the account in `query_binding`, a table nobody commits to: the server inserts the account
  into it inside the query's own transaction, which always rolls back, so only that transaction sees a row, and
  the role cannot write the table;
- the transaction is READ ONLY and has a statement_timeout.

A role set with SET ROLE can be reset by SQL (`set_config('role', 'none', ...)`), and custom settings can be
changed by anyone, so neither is relied on alone: before it runs, the query is parsed (sqlglot) and must be one
SELECT whose tables are `events` (or its own WITH names) and whose functions are all on an allow-list, and it is
regenerated from the parse, so the database runs exactly what was checked: comments, a second statement or a
function outside the list never reach it.
"""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from openims.query.columns import NAMES
from openims.query.errors import bad_sql, timed_out
from openims.runtime import Runtime

ROLE = "openims_query"
VIEW = "query_events"

# Functions a query may call, by sqlglot's name for them (unknown functions keep their own name).
FUNCTIONS = frozenset(
    [
        "AND",
        "OR",
        "XOR",
        "ARRAY",
        "EXISTS",
        "REGEXP_LIKE",
        "COUNT",
        "SUM",
        "AVG",
        "MIN",
        "MAX",
        "LOWER",
        "UPPER",
        "LENGTH",
        "SUBSTRING",
        "TRIM",
        "COALESCE",
        "NULLIF",
        "ABS",
        "ROUND",
        "CAST",
        "TRY_CAST",
        "JSON_EXTRACT_SCALAR",
        "JSON_EXTRACT",
        "JSONB_EXTRACT_SCALAR",
        "JSONB_EXTRACT",
        "GROUP_CONCAT",
        "TIMESTAMP_TRUNC",
        "DATE_TRUNC",
        "TIME_TO_STR",
        "SPLIT_PART",
        "ROW_NUMBER",
        "RANK",
        "DENSE_RANK",
        "NTILE",
        "LAG",
        "LEAD",
        "FIRST_VALUE",
        "LAST_VALUE",
        "CONCAT",
        "CURRENT_TIMESTAMP",
        "EXTRACT",
        "LEFT",
        "RIGHT",
        "STR_POSITION",
        "ARRAY_AGG",
        "LOGICAL_OR",
        "LOGICAL_AND",
        "IF",
        "CASE",
        "REPLACE",
        "STARTS_WITH",
        "UNIX_TO_TIME",
        "STR_TO_TIME",
        "TO_TIMESTAMP",
        "TO_CHAR",
        "POSITION",
        "STRPOS",
        "INITCAP",
        "ANY_VALUE",
        "APPROX_DISTINCT",
        "COUNT_IF",
        "STDDEV",
        "VARIANCE",
        "DATE_PART",
    ]
)
_CANONICAL = {name.lower(): name for name in NAMES}


class Rejected(ValueError):
    """The query is not one this engine runs; the message says why."""


def checked(sql: str) -> str:
    """The query regenerated from its parse, with `events` read through the account's view, once it is known to
    be a single SELECT over `events` with allowed functions only; Rejected otherwise."""
    try:
        statements = [s for s in sqlglot.parse(sql, dialect="postgres") if s is not None]
    except SqlglotError as exc:
        raise Rejected(f"it is not valid SQL ({str(exc).splitlines()[0][:200]}).") from None
    if len(statements) != 1:
        raise Rejected("it must be exactly one statement.")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise Rejected("only a SELECT may run.")
    if tree.find(exp.Into, exp.Lock) is not None:
        raise Rejected("SELECT INTO and row locks are not allowed.")
    # PostgreSQL has no per-query cap on a value's size (SQLite's engine sets one): a recursive WITH doubling a
    # string would make the server allocate up to a gigabyte within the time limit.
    if any(w.args.get("recursive") for w in tree.find_all(exp.With)):
        raise Rejected("WITH RECURSIVE is not allowed on PostgreSQL.")
    own = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    if "events" in own:
        raise Rejected("a WITH name may not be `events`.")
    for node in tree.find_all(exp.Func):
        name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
        if name.upper() not in FUNCTIONS:
            raise Rejected(f"the function {name} is not allowed.")
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier) or table.args.get("db") or table.args.get("catalog"):
            raise Rejected("only the table `events` may be read.")
        name = table.name.lower()
        if name in own:
            continue
        if name != "events":
            raise Rejected(f"only the table `events` may be read, not {table.name}.")
        alias = table.alias or "events"
        table.replace(exp.Table(this=exp.to_identifier(VIEW), alias=exp.TableAlias(this=exp.to_identifier(alias))))
    for column in tree.find_all(exp.Column):
        canonical = _CANONICAL.get(column.name.lower())
        if canonical is not None:
            column.set("this", exp.to_identifier(canonical, quoted=True))
    return tree.sql(dialect="postgres", comments=False)


def grant_access(url: str) -> None:
    """Give the role its one privilege again (and the server's user the role) after `pg_restore --no-privileges`
    restored the view without its grants (migration 0019 made them first). Needs CREATEROLE where the role is
    missing, as the migration did."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        if conn.execute(f"SELECT to_regclass('{VIEW}')").fetchone() == (None,):
            return  # a backup from before migration 0019: migrating it makes the view and its grant
        conn.execute(
            "DO $$ BEGIN "
            f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN "
            f"BEGIN CREATE ROLE {ROLE} NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END; "
            "END IF; "
            f"IF NOT pg_has_role(current_user, '{ROLE}', 'MEMBER') THEN "
            f"BEGIN EXECUTE format('GRANT {ROLE} TO %I', current_user); "
            "EXCEPTION WHEN unique_violation THEN NULL; END; END IF; "
            "END $$"
        )
        conn.execute(f"GRANT SELECT ON {VIEW} TO {ROLE}")


def run(rt: Runtime, account_id: str, sql: str, limit: int, seconds: float) -> tuple[list[str], list[Any]]:
    try:
        text = checked(sql)
    except Rejected as exc:
        raise bad_sql(str(exc)) from None
    import psycopg

    with rt.db.engine.connect() as conn:
        raw: Any = conn.connection.dbapi_connection
        try:
            with raw.cursor() as cur:
                # Bound in this transaction only (rolled back below), then no more writes, a time limit, and the
                # role that can read nothing but the view.
                cur.execute("INSERT INTO query_binding (pid, account_id) VALUES (pg_backend_pid(), %s)", (account_id,))
                cur.execute("SET LOCAL transaction_read_only = on")
                cur.execute("SELECT set_config('statement_timeout', %s, true)", (str(int(seconds * 1000)),))
                cur.execute(f"SET LOCAL ROLE {ROLE}")
                try:
                    cur.execute(text)
                except psycopg.errors.QueryCanceled:
                    raise timed_out(seconds) from None
                except psycopg.Error as exc:
                    message = (exc.diag.message_primary or str(exc)).strip()
                    raise bad_sql(message + ".") from None
                columns = [d.name for d in cur.description or ()]
                rows = cur.fetchmany(limit + 1)
        finally:
            raw.rollback()
    return columns, rows

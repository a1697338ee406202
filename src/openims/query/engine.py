"""Runs one read-only SQL query over one account's events, as a table named `events`, on the store's own database.

The limits are the database engine's, not string checks:
- SQLite: a connection of its own opened read-only (`mode=ro`), so nothing can be written; a TEMP view `events`
  over a TEMP view with a random name per connection, which holds the account filter; an authorizer that allows
  SELECT, reads of the `events` view, reads of the stored table only from inside the random-named view (the
  authorizer is told the innermost view of each read, and a query cannot name a view it cannot learn), and calls
  of allow-listed functions; everything else (PRAGMA, ATTACH, other tables, sqlite_master, load_extension,
  writes) is refused while the statement is prepared. A progress handler ends it at the time limit.
- PostgreSQL: see openims.query.postgres.
"""

from __future__ import annotations

import json
import math
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import make_url

from openims.query import postgres
from openims.query.columns import COLUMNS
from openims.query.errors import bad_sql, timed_out
from openims.runtime import Runtime

MAX_SQL_CHARS = 8192
MAX_VALUE_BYTES = 16 * 1024 * 1024

# Functions a query may call on SQLite, by the name the authorizer reports (LIKE and GLOB are functions there,
# `->`/`->>` too). Nothing that reads files, loads code, sleeps, or reports on the database or the process.
SQLITE_FUNCTIONS = frozenset(
    [
        "count",
        "sum",
        "total",
        "avg",
        "min",
        "max",
        "group_concat",
        "string_agg",
        "lower",
        "upper",
        "length",
        "substr",
        "substring",
        "trim",
        "ltrim",
        "rtrim",
        "replace",
        "instr",
        "coalesce",
        "ifnull",
        "nullif",
        "iif",
        "abs",
        "round",
        "date",
        "time",
        "datetime",
        "julianday",
        "strftime",
        "unixepoch",
        "printf",
        "format",
        "like",
        "glob",
        "json_extract",
        "json",
        "json_array_length",
        "json_type",
        "json_valid",
        "->",
        "->>",
        "row_number",
        "rank",
        "dense_rank",
        "ntile",
        "lag",
        "lead",
        "first_value",
        "last_value",
        "percent_rank",
        "cume_dist",
        "typeof",
        "char",
        "unicode",
    ]
)


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[list[Any]]
    # More rows matched than the row limit let through.
    truncated: bool
    elapsed_ms: int


def run(rt: Runtime, account_id: str, sql: str, max_rows: int) -> Result:
    """Run `sql` over `account_id`'s events; at most `max_rows` rows (the server's limit caps it)."""
    if not sql.strip():
        raise bad_sql("it is empty.")
    if len(sql) > MAX_SQL_CHARS:
        raise bad_sql(f"it is longer than {MAX_SQL_CHARS} characters.")
    if not account_id.isascii() or not account_id.isdigit():
        raise bad_sql("the account is not valid.")  # never reached by callers: account IDs are digits
    limit = max(1, min(max_rows, rt.settings.query_max_rows))
    seconds = rt.settings.query_timeout_seconds
    started = time.monotonic()
    if rt.db.is_sqlite:
        columns, rows = _run_sqlite(rt, account_id, sql, limit, seconds)
    else:
        columns, rows = postgres.run(rt, account_id, sql, limit, seconds)
    return Result(
        columns=columns,
        rows=[[_plain(v) for v in row] for row in rows[:limit]],
        truncated=len(rows) > limit,
        elapsed_ms=int((time.monotonic() - started) * 1000),
    )


def _sqlite_path(rt: Runtime) -> str:
    database = make_url(rt.db.url).database
    if not database or database == ":memory:":
        raise bad_sql("the store is not a database file.")
    return database


def _run_sqlite(rt: Runtime, account_id: str, sql: str, limit: int, seconds: float) -> tuple[list[str], list[Any]]:
    from urllib.parse import quote

    conn = sqlite3.connect(f"file:{quote(_sqlite_path(rt))}?mode=ro", uri=True, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        # A query that reads the events themselves (a column outside one index) reads pages all over the file:
        # mapped, they come from the OS page cache without a read() each, about twice as fast here (docs/query.md).
        conn.execute("PRAGMA mmap_size=2147483648")
        conn.execute("PRAGMA cache_size=-65536")
        # No value beyond 16 MB (SQLite's own limit is 1 GB): a query cannot make the server allocate gigabytes by
        # doubling a string in a recursive WITH within its time limit.
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        inner = "q_" + secrets.token_hex(16)
        exprs = ", ".join(f'{expr} AS "{name}"' for name, expr, _ in COLUMNS)
        own = f"account_id = '{account_id}'"  # digits only (checked above)
        conn.execute(f'CREATE TEMP VIEW "{inner}" AS SELECT {exprs} FROM main.events WHERE {own}')
        conn.execute(f'CREATE TEMP VIEW events AS SELECT * FROM "{inner}"')
        conn.set_authorizer(_authorizer(inner))
        deadline = time.monotonic() + seconds
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 20_000)
        try:
            cursor = conn.execute(sql)
            rows = cursor.fetchmany(limit + 1)
        except sqlite3.Warning as exc:  # "You can only execute one statement at a time."
            raise bad_sql(f"{exc}") from None
        except (sqlite3.DatabaseError, sqlite3.ProgrammingError) as exc:
            if "interrupted" in str(exc):
                raise timed_out(seconds) from None
            raise bad_sql(_sqlite_message(exc)) from None
        columns = [d[0] for d in cursor.description or ()]
        return columns, rows
    finally:
        conn.close()


def _sqlite_message(exc: Exception) -> str:
    text = str(exc)
    if text == "not authorized" or "is prohibited" in text:
        return "only a SELECT over the table `events`, with the functions listed in docs/query.md, may run."
    return text + "."


def _authorizer(inner: str) -> Any:
    def decide(action: int, arg1: str | None, arg2: str | None, database: str | None, view: str | None) -> int:
        if action == sqlite3.SQLITE_SELECT or action == sqlite3.SQLITE_RECURSIVE:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            if database is None:
                return sqlite3.SQLITE_OK  # a WITH table's own rows (count(*) over it), built by allowed reads
            # The `events` view itself, and its own view's columns (the account filter's view reads the table).
            if database == "temp" and arg1 in ("events", inner):
                return sqlite3.SQLITE_OK if arg1 == "events" or view == "events" else sqlite3.SQLITE_DENY
            if database == "main" and arg1 == "events" and view == inner:
                return sqlite3.SQLITE_OK
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION:
            return sqlite3.SQLITE_OK if (arg2 or "").lower() in SQLITE_FUNCTIONS else sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_DENY

    return decide


def _plain(value: Any) -> Any:
    """A value every response format carries: numbers, strings, booleans and NULL as they are; JSON as text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo is not None else value
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return json.dumps(value, ensure_ascii=False, default=str)

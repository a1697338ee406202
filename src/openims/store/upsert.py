"""INSERT ... ON CONFLICT for either backend: both dialects spell it the same way once the insert is built by
the connection's own dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection


def dialect_insert(conn: Connection, table: Any) -> Any:
    """An INSERT of `table` with `on_conflict_do_update` / `on_conflict_do_nothing`, for `conn`'s database."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)

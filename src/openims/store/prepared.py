"""The statements every call runs (the AccessKey read, the nonce, the event and its queue rows), run straight on
the DB-API cursor under a SQLAlchemy `Connection`.

Where the line is: SQLAlchemy Core builds these statements (from the schema, for either backend) and owns the
connection, its pool and its transaction; only their execution skips Core's pipeline (cache key, compiled
cache, parameter processing, result object, event dispatch), which costs 20-30 µs a statement against 5-7 µs
for the statement itself on SQLite. A statement qualifies when its types need no conversion on either backend
(strings, integers, booleans) and its shape is fixed (no expanding IN). Everything else, the long tail of
handlers included, stays on Core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable


class Prepared:
    """A Core statement compiled once per dialect. `columns` names the parameters of an INSERT (the others
    take their defaults); other statements name theirs with `bindparam`."""

    def __init__(self, statement: Executable, columns: Sequence[str] = ()) -> None:
        self.statement = statement
        self.columns = list(columns)
        self._by_dialect: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    def _sql(self, conn: Connection) -> tuple[str, tuple[str, ...] | None]:
        found = self._by_dialect.get(conn.dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=conn.dialect, column_keys=self.columns or None)  # type: ignore[attr-defined]
            order = tuple(compiled.positiontup) if compiled.positional else None
            found = self._by_dialect[conn.dialect.name] = (compiled.string, order)
        return found

    def _cursor(self, conn: Connection, params: Mapping[str, Any] | Sequence[Mapping[str, Any]], many: bool) -> Any:
        sql, order = self._sql(conn)
        rows: Sequence[Mapping[str, Any]] = params if many else [params]  # type: ignore[assignment,list-item]
        args: list[Any] = [tuple(r[name] for name in order) for r in rows] if order is not None else list(rows)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                cursor.executemany(sql, args)
            else:
                cursor.execute(sql, args[0])
        except conn.dialect.loaded_dbapi.Error as exc:
            cursor.close()
            # The error SQLAlchemy would raise (IntegrityError, OperationalError, ...), so callers catch one kind.
            raise DBAPIError.instance(sql, args, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect) from exc
        return cursor

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> None:
        self._cursor(conn, params, many=False).close()

    def execute_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._cursor(conn, rows, many=True).close()

    def first(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        cursor = self._cursor(conn, params, many=False)
        try:
            row = cursor.fetchone()
            return None if row is None else tuple(row)
        finally:
            cursor.close()

    def scalar(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        row = self.first(conn, params)
        return None if row is None else row[0]

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

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable


@dataclass(frozen=True)
class _Compiled:
    sql: str
    order: tuple[str, ...] | None  # parameter names in order, for a positional paramstyle (SQLite's)
    row: Callable[..., tuple[Any, ...]]  # a named tuple of the selected (or returned) columns
    convert: tuple[tuple[int, Callable[[Any], Any]], ...]  # the result conversions the types need (SQLite's bool)


class Prepared:
    """A Core statement compiled once per dialect. `columns` names the parameters of an INSERT (the others
    take their defaults); other statements name theirs with `bindparam`. Rows come back as named tuples."""

    def __init__(self, statement: Executable, columns: Sequence[str] = ()) -> None:
        self.statement = statement
        self.columns = list(columns)
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, conn: Connection) -> _Compiled:
        found = self._by_dialect.get(conn.dialect.name)
        if found is None:
            dialect = conn.dialect
            compiled = self.statement.compile(dialect=dialect, column_keys=self.columns or None)  # type: ignore[attr-defined]
            selected = list(getattr(self.statement, "exported_columns", ()))
            convert = []
            for i, column in enumerate(selected):
                process = column.type.result_processor(dialect, None)
                if process is not None:
                    convert.append((i, process))
            found = self._by_dialect[dialect.name] = _Compiled(
                compiled.string,
                tuple(compiled.positiontup) if compiled.positional else None,
                namedtuple("Row", [c.key for c in selected] or ["value"], rename=True),
                tuple(convert),
            )
        return found

    def _cursor(
        self, conn: Connection, params: Mapping[str, Any] | Sequence[Mapping[str, Any]], many: bool
    ) -> tuple[Any, _Compiled]:
        compiled = self._compiled(conn)
        order = compiled.order
        rows: Sequence[Mapping[str, Any]] = params if many else [params]  # type: ignore[assignment,list-item]
        args: list[Any] = [tuple(r[name] for name in order) for r in rows] if order is not None else list(rows)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                cursor.executemany(compiled.sql, args)
            else:
                cursor.execute(compiled.sql, args[0])
        except conn.dialect.loaded_dbapi.Error as exc:
            cursor.close()
            # The error SQLAlchemy would raise (IntegrityError, OperationalError, ...), so callers catch one kind.
            raise DBAPIError.instance(
                compiled.sql, args, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
            ) from exc
        return cursor, compiled

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> None:
        self._cursor(conn, params, many=False)[0].close()

    def execute_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._cursor(conn, rows, many=True)[0].close()

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        cursor, compiled = self._cursor(conn, params, many=False)
        try:
            return [_row(compiled, r) for r in cursor.fetchall()]
        finally:
            cursor.close()

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        cursor, compiled = self._cursor(conn, params, many=False)
        try:
            found = cursor.fetchone()
            return None if found is None else _row(compiled, found)
        finally:
            cursor.close()

    def scalar(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        row = self.first(conn, params)
        return None if row is None else row[0]


def _row(compiled: _Compiled, values: Sequence[Any]) -> Any:
    if compiled.convert:
        values = list(values)
        for i, process in compiled.convert:
            values[i] = process(values[i])
    return compiled.row(*values)

"""An account's recorded queries (CreateAdvancedQueryHistory), newest first; the oldest beyond the cap go."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Connection, select

from openims.errors import not_found
from openims.store.tables.queries import query_history

MAX_PER_ACCOUNT = 100


def record(conn: Connection, account_id: str, sql: str, simple: bool, now_ms: int) -> str:
    query_id = "aqh-" + secrets.token_hex(12)
    conn.execute(
        query_history.insert().values(
            id=query_id, account_id=account_id, query_sql=sql, simple_query=simple, created_ms=now_ms
        )
    )
    stale = (
        conn.execute(
            select(query_history.c.id)
            .where(query_history.c.account_id == account_id)
            .order_by(query_history.c.created_ms.desc(), query_history.c.id.desc())
            .offset(MAX_PER_ACCOUNT)
        )
        .scalars()
        .all()
    )
    if stale:
        conn.execute(query_history.delete().where(query_history.c.id.in_(stale)))
    return query_id


def listing(conn: Connection, account_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(query_history)
        .where(query_history.c.account_id == account_id)
        .order_by(query_history.c.created_ms.desc(), query_history.c.id.desc())
    ).all()
    return [
        {
            "QueryId": r.id,
            "QuerySql": r.query_sql,
            "SimpleQuery": bool(r.simple_query),
            # Milliseconds since the epoch, as ActionTrail's console sorts its history by.
            "TimeStamp": str(r.created_ms),
        }
        for r in rows
    ]


def delete(conn: Connection, account_id: str, query_id: str) -> None:
    done = conn.execute(
        query_history.delete().where(query_history.c.account_id == account_id, query_history.c.id == query_id)
    )
    if done.rowcount == 0:
        raise not_found("AdvancedQueryHistory", query_id)

"""Group commit (api/group_commit.py): calls that share a transaction each keep their own outcome."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from openims.api.group_commit import GroupCommit, Work
from openims.store.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'g.db'}")
    with database.transaction() as conn:
        conn.exec_driver_sql("CREATE TABLE rows (name TEXT PRIMARY KEY)")
    return database


def insert(name: str) -> Work:
    def work(conn: Connection) -> dict[str, Any]:
        conn.execute(text("INSERT INTO rows VALUES (:name)"), {"name": name})
        return {"Name": name}

    return work


def together(db: Database, works: list[Work]) -> list[Any]:
    async def main() -> list[Any]:
        commits = GroupCommit(db)
        return await asyncio.gather(*(commits.commit(w) for w in works), return_exceptions=True)

    return asyncio.run(main())


def stored(db: Database) -> list[str]:
    with db.read() as conn:
        return [r[0] for r in conn.exec_driver_sql("SELECT name FROM rows ORDER BY name")]


def test_a_failing_call_rolls_back_alone_and_the_calls_after_it_see_what_it_left(db: Database) -> None:
    def insert_then_fail(conn: Connection) -> dict[str, Any]:
        insert("c")(conn)
        raise RuntimeError("handler failed")

    answers = together(db, [insert("a"), insert_then_fail, insert("c"), insert("a")])
    assert answers[0] == {"Name": "a"} and answers[2] == {"Name": "c"}
    assert isinstance(answers[1], RuntimeError)
    assert "UNIQUE" in str(answers[3])  # the first call's row was there for the fourth
    assert stored(db) == ["a", "c"]
    assert db.epoch == 0


def test_a_failed_transaction_fails_every_call_and_forgets_what_they_cached(db: Database) -> None:
    def end_transaction(conn: Connection) -> dict[str, Any]:
        # As SQLite does itself on some errors (a full disk): the transaction is gone under the group.
        conn.connection.dbapi_connection.execute("ROLLBACK")  # type: ignore[union-attr]
        return {}

    answers = together(db, [insert("a"), end_transaction, insert("b")])
    assert all(isinstance(a, Exception) for a in answers)
    assert stored(db) == []
    assert db.epoch == 1

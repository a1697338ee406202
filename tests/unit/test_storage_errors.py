"""Which database errors mean "storage cannot take writes now" (503, retry) rather than a fault (500): real
errors raised by SQLite and PostgreSQL, not hand-made ones."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from openims import config
from openims.store.db import is_storage_failure


def _error_of(engine: sa.Engine, *statements: str) -> DBAPIError:
    with pytest.raises(DBAPIError) as info, engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    return info.value


def test_sqlite_read_only_and_full_are_storage_failures(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x TEXT)").connection.commit()
    path.chmod(0o444)
    read_only = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert is_storage_failure(_error_of(read_only, "INSERT INTO t VALUES ('a')"))
    full = sa.create_engine(f"sqlite:///{tmp_path / 'f.db'}")
    # max_page_count caps the file: the same error SQLite gives on a full disk.
    err = _error_of(
        full, "CREATE TABLE t (x TEXT)", "PRAGMA max_page_count = 2", "INSERT INTO t VALUES (randomblob(9000))"
    )
    assert "full" in str(err) and is_storage_failure(err)
    assert not is_storage_failure(_error_of(full, "SELECT * FROM no_such_table"))


def test_postgresql_read_only_is_a_storage_failure() -> None:
    if not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    engine = sa.create_engine(config.normalize_database_url(os.environ["OPENIMS_TEST_DATABASE_URL"]))
    try:
        err = _error_of(engine, "SET TRANSACTION READ ONLY", "CREATE TABLE t (x text)")
        assert getattr(err.orig, "sqlstate", None) == "25006" and is_storage_failure(err)
        assert not is_storage_failure(_error_of(engine, "SELECT * FROM no_such_table"))
        assert not is_storage_failure(_error_of(engine, "SELECT 1/0"))
    finally:
        engine.dispose()

"""`database_url`: a fresh, empty database on SQLite and on PostgreSQL (dropped afterwards); `rt`: a migrated
Runtime on it. Modules that only need SQLite define their own `rt`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from openims import clock, config
from openims.runtime import Runtime, open_runtime
from tests.support import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'openims.db'}"
        return
    if not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    url, drop = fresh_postgres_database(os.environ["OPENIMS_TEST_DATABASE_URL"])
    try:
        yield config.normalize_database_url(url)
    finally:
        drop()


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = open_runtime(config.Settings(data_dir=tmp_path / "data", database_url=database_url), create=True)
    try:
        yield runtime
    finally:
        clock.set_offset(0)
        runtime.close()

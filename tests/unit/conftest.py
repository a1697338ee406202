"""`rt`: a migrated Runtime on SQLite and on PostgreSQL (a fresh database per test). Modules that only need
SQLite define their own `rt`."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from openims import clock, config
from openims.runtime import Runtime, open_runtime
from tests.support import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    drop = None
    if request.param == "postgresql":
        if not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
            pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
        url, drop = fresh_postgres_database(os.environ["OPENIMS_TEST_DATABASE_URL"])
    else:
        url = f"sqlite:///{tmp_path / 'openims.db'}"
    runtime = open_runtime(config.Settings(data_dir=tmp_path / "data", database_url=config.normalize_database_url(url)),
                           create=True)
    try:
        yield runtime
    finally:
        clock.set_offset(0)
        runtime.close()
        if drop:
            drop()

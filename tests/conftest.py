"""Fixtures shared by every test directory. `server` runs each test on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support import Account, Server, start_server


def backends() -> list[str]:
    return ["sqlite", "postgresql"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(
            "CI=true needs OPENIMS_TEST_DATABASE_URL (PostgreSQL): the suite must run on both databases"
        )
    skip = pytest.mark.skip(reason="set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    for item in items:
        if "[postgresql" in item.nodeid:
            item.add_marker(skip)


@pytest.fixture(scope="session", params=backends())
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    backend = request.param
    if backend == "postgresql" and not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    srv, cleanup = start_server(tmp_path_factory.mktemp(backend), backend)
    try:
        yield srv
    finally:
        cleanup()


@pytest.fixture
def acct(server: Server) -> Account:
    """A fresh account of its own for each test."""
    return server.new_account()

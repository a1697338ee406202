"""Upgrading a data dir in place keeps every row: a database at an older schema revision, with data in it,
is migrated to the newest one (SQLite and PostgreSQL), and nothing is lost or left behind."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import text

from openims.store.db import Database, alembic_config

BASELINE = "0008"  # the revision the previous release shipped with
TABLES = ("accounts", "users", "access_keys", "groups", "group_members", "user_policies", "events")


@pytest.fixture
def old_db(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    with db.engine.begin() as conn:
        cfg = alembic_config(db.url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, BASELINE)
    try:
        yield db
    finally:
        db.dispose()


ROWS = [
    "INSERT INTO accounts (id, alias, created_ms) VALUES ('1000000000000001', 'old', 1)",
    ("INSERT INTO users (id, account_id, name, upn, display_name, created_ms, updated_ms) "
    "VALUES ('2000000000000001', '1000000000000001', 'bob', 'bob@old.onaliyun.com', 'Bob', 1, 1)"),
    ("INSERT INTO access_keys (id, account_id, user_id, secret_sealed, status, created_ms, updated_ms) "
    "VALUES ('LTAIoldoldoldoldoldoldol', '1000000000000001', '2000000000000001', :blob, 'Active', 1, 1)"),
    "INSERT INTO groups (id, account_id, name, created_ms, updated_ms) VALUES ('3000000000000001', '1000000000000001', 'g', 1, 1)",
    "INSERT INTO group_members (group_id, user_id, joined_ms) VALUES ('3000000000000001', '2000000000000001', 1)",
    ("INSERT INTO user_policies (user_id, policy_type, policy_name, account_id, attached_ms) "
    "VALUES ('2000000000000001', 'System', 'AliyunRAMReadOnlyAccess', '1000000000000001', 1)"),
    ("INSERT INTO events (event_id, account_id, event_ms, event_name, event_rw, service_name, user_name, access_key_id, "
    "resource_type, resource_name, source_ip, body) VALUES ('e1', '1000000000000001', 1, 'CreateUser', 'Write', 'Ims', "
    "'root', '', '', '', '', '{}')"),
]


def test_an_upgrade_keeps_every_row(old_db: Database) -> None:
    with old_db.engine.begin() as conn:
        for statement in ROWS:
            conn.execute(text(statement), {"blob": b"sealed"})
    old_db.migrate()
    with old_db.engine.begin() as conn:
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
        assert counts == {t: 1 for t in TABLES}
        assert conn.execute(text("SELECT authz_version FROM accounts")).scalar_one() == 0
        # The new triggers work on upgraded data.
        conn.execute(text("DELETE FROM group_members"))
        assert conn.execute(text("SELECT authz_version FROM accounts")).scalar_one() == 1

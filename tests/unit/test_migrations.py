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
    (
        "INSERT INTO users (id, account_id, name, upn, display_name, created_ms, updated_ms) "
        "VALUES ('2000000000000001', '1000000000000001', 'bob', 'bob@old.onaliyun.com', 'Bob', 1, 1)"
    ),
    (
        "INSERT INTO access_keys (id, account_id, user_id, secret_sealed, status, created_ms, updated_ms) "
        "VALUES ('LTAIoldoldoldoldoldoldol', '1000000000000001', '2000000000000001', :blob, 'Active', 1, 1)"
    ),
    (
        "INSERT INTO groups (id, account_id, name, created_ms, updated_ms) VALUES ('3000000000000001', "
        "'1000000000000001', 'g', 1, 1)"
    ),
    "INSERT INTO group_members (group_id, user_id, joined_ms) VALUES ('3000000000000001', '2000000000000001', 1)",
    (
        "INSERT INTO user_policies (user_id, policy_type, policy_name, account_id, attached_ms) "
        "VALUES ('2000000000000001', 'System', 'AliyunRAMReadOnlyAccess', '1000000000000001', 1)"
    ),
    (
        "INSERT INTO events (event_id, account_id, event_ms, event_name, event_rw, service_name, user_name, "
        "access_key_id, "
        "resource_type, resource_name, source_ip, body) VALUES ('e1', '1000000000000001', 1, 'CreateUser', 'Write', "
        "'Ims', "
        "'root', '', '', '', '', '{}')"
    ),
]
# Events as audit.event.record wrote them before the mfa_used column: (event_id, body, MFA used).
_SESSION = '{"userIdentity":{"sessionContext":{"attributes":{"mfaAuthenticated":"%s"}}}}'
MFA_EVENTS = [
    ("e2", _SESSION % "true", True),
    ("e3", _SESSION % "false", False),
    ("e4", '{"additionalEventData":{"MFAChecked":"true","isMFAChecked":"true"}}', True),
    # The flag's text inside a value (a caller's User-Agent) is not the flag.
    ("e5", '{"userAgent":"\\"mfaAuthenticated\\":\\"true\\" MFAChecked\\":\\"true\\""}', False),
]


def test_an_upgrade_keeps_every_row(old_db: Database) -> None:
    with old_db.engine.begin() as conn:
        for statement in ROWS:
            conn.execute(text(statement), {"blob": b"sealed"})
        for event_id, body, _ in MFA_EVENTS:
            conn.execute(
                text(
                    "INSERT INTO events (event_id, account_id, event_ms, event_name, event_rw, service_name, "
                    "body) VALUES (:id, '1000000000000001', 2, 'ConsoleSignin', 'Write', 'AasSub', :body)"
                ),
                {"id": event_id, "body": body},
            )
    old_db.migrate()
    with old_db.engine.begin() as conn:
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
        assert counts == {t: 1 + len(MFA_EVENTS) * (t == "events") for t in TABLES}
        flags = dict(conn.execute(text("SELECT event_id, mfa_used FROM events")).all())
        assert flags == {"e1": False, **{event_id: used for event_id, _, used in MFA_EVENTS}}
        assert conn.execute(text("SELECT authz_version FROM accounts")).scalar_one() == 0
        # The new triggers work on upgraded data.
        conn.execute(text("DELETE FROM group_members"))
        assert conn.execute(text("SELECT authz_version FROM accounts")).scalar_one() == 1

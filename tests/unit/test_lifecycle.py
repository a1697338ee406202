"""What changed, as a write's event records it (diffs with secrets masked), the events migrated to the resource
index, and the sensitive actions as the declarations and the migration name them."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from openims.actions.table import ACTIONS
from openims.lifecycle.snapshots import Snapshot
from openims.lifecycle.tracker import diff
from openims.store.db import Database, alembic_config

MIGRATION = Path(__file__).parents[2] / "src/openims/store/migrations/versions/0021_event_resources.py"


def _migration():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("m0018", MIGRATION)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_marks_exactly_the_actions_declared_sensitive() -> None:
    declared = {a.name for a in ACTIONS.all() if a.sensitive}
    assert set(_migration().SENSITIVE) == declared
    assert {"CreateAccessKey", "ChangePassword", "BindMFADevice", "AttachPolicyToUser", "SetSecurityPreference"} <= (
        declared
    )


USER = "ACS::RAM::User"


def test_a_diff_has_old_and_new_values_and_never_a_secret() -> None:
    old = Snapshot("1", "a@x", {"DisplayName": "A", "Groups": [], "Password": "d1"}, frozenset({"Password"}))
    new = Snapshot("1", "a@x", {"DisplayName": "B", "Groups": ["g"], "Password": "d2"}, frozenset({"Password"}))
    entry = diff(USER, old, new)
    assert entry == {
        "resourceType": USER,
        "resourceName": "a@x",
        "change": "Update",
        "attributes": [
            {"attribute": "DisplayName", "old": "A", "new": "B"},
            {"attribute": "Groups", "old": [], "new": ["g"]},
            {"attribute": "Password", "changed": True},
        ],
    }
    assert "d1" not in json.dumps(entry) and "d2" not in json.dumps(entry)
    assert diff(USER, old, old) is None
    renamed = diff(USER, old, Snapshot("1", "b@x", {**old.attributes}, old.secret))
    assert renamed is None  # the attributes did not change; a rename shows in the UserPrincipalName attribute
    created = diff(USER, None, new)
    assert created is not None and created["change"] == "Create"
    assert [a["attribute"] for a in created["attributes"]] == ["DisplayName", "Groups", "Password"]
    deleted = diff(USER, new, None)
    assert deleted is not None and deleted["change"] == "Delete"
    assert {"attribute": "DisplayName", "old": "B", "new": None} in deleted["attributes"]


@pytest.fixture
def db_at_0013(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    with db.engine.begin() as conn:
        cfg = alembic_config(db.url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0013")
    try:
        yield db
    finally:
        db.dispose()


OLD_EVENTS = [
    # An AddUserToGroup as recorded before: the group first, the user only in referencedResources.
    (
        "e1",
        "AddUserToGroup",
        "ACS::RAM::Group",
        "devs",
        {
            "eventType": "ApiCall",
            "userIdentity": {"principalId": "1000000000000001"},
            "referencedResources": {"ACS::RAM::Group": ["devs"], "ACS::RAM::User": ["bob@old.onaliyun.com"]},
        },
    ),
    ("e2", "CreateAccessKey", "ACS::RAM::AccessKey", "LTAIold", {"eventType": "ApiCall"}),
    ("e3", "ConsoleSignin", "", "", {"eventType": "ConsoleSignin", "userIdentity": {"principalId": "2001"}}),
]


def test_existing_events_are_indexed_by_every_resource(db_at_0013: Database) -> None:
    with db_at_0013.engine.begin() as conn:
        for n, (event_id, name, rtype, rname, body) in enumerate(OLD_EVENTS, 1):
            conn.execute(
                text(
                    "INSERT INTO events (event_id, account_id, event_ms, event_name, event_rw, service_name, "
                    "resource_type, resource_name, body) VALUES (:id, '1000000000000001', :ms, :name, 'Write', "
                    "'Ims', :rtype, :rname, :body)"
                ),
                {"id": event_id, "ms": n, "name": name, "rtype": rtype, "rname": rname, "body": json.dumps(body)},
            )
    db_at_0013.migrate()
    with db_at_0013.engine.begin() as conn:
        rows = conn.execute(
            text(
                "SELECT e.event_id, r.resource_type, r.resource_name, r.event_ms FROM event_resources r "
                "JOIN events e ON e.seq = r.event_seq ORDER BY e.event_id, r.resource_type"
            )
        ).all()
        assert [tuple(r) for r in rows] == [
            ("e1", "ACS::RAM::Group", "devs", 1),
            ("e1", "ACS::RAM::User", "bob@old.onaliyun.com", 1),
            ("e2", "ACS::RAM::AccessKey", "LTAIold", 2),
        ]
        columns = conn.execute(text("SELECT event_id, principal_id, event_type, sensitive FROM events")).all()
        assert {tuple(r) for r in columns} == {
            ("e1", "1000000000000001", "ApiCall", False),
            ("e2", "", "ApiCall", True),
            ("e3", "2001", "ConsoleSignin", False),
        }
        # The index rows die with their event.
        conn.execute(text("DELETE FROM events WHERE event_id = 'e1'"))
        assert conn.execute(text("SELECT count(*) FROM event_resources")).scalar_one() == 1

"""The schema enforces uniqueness even when two writers pass the handler's existence check at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from openims import accounts, config
from openims.runtime import open_runtime
from openims.store import constraints
from openims.store.schema import groups, users


@pytest.fixture
def rt(tmp_path: Path):  # type: ignore[no-untyped-def]
    runtime = open_runtime(
        config.Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'x.db'}"), create=True
    )
    yield runtime
    runtime.close()


def test_duplicate_live_user_maps_to_entity_already_exists(rt) -> None:  # type: ignore[no-untyped-def]
    acct = accounts.create_account(rt, "constraint-test")
    row = {
        "account_id": acct.account_id,
        "name": "dup",
        "upn": "dup@x",
        "display_name": "d",
        "created_ms": 1,
        "updated_ms": 1,
    }
    with rt.db.transaction() as conn:
        conn.execute(insert(users).values(id="1", **row))
    with pytest.raises(IntegrityError) as info, rt.db.transaction() as conn:
        conn.execute(insert(users).values(id="2", **{**row, "name": "DUP"}))  # names are unique case-insensitively
    assert constraints.to_api_error(info.value).code == "EntityAlreadyExists.User"
    # a deleted (recycled) user does not hold its name
    with rt.db.transaction() as conn:
        conn.execute(users.update().where(users.c.id == "1").values(deleted_ms=5))
        conn.execute(insert(users).values(id="3", **row))


def test_duplicate_group(rt) -> None:  # type: ignore[no-untyped-def]
    acct = accounts.create_account(rt, "constraint-test2")
    row = {"account_id": acct.account_id, "name": "g", "created_ms": 1, "updated_ms": 1}
    with rt.db.transaction() as conn:
        conn.execute(insert(groups).values(id="1", **row))
    with pytest.raises(IntegrityError) as info, rt.db.transaction() as conn:
        conn.execute(insert(groups).values(id="2", **row))
    assert constraints.to_api_error(info.value).code == "EntityAlreadyExists.Group"

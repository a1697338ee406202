"""What derives from the code stays in step with it: the API reference and the migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from openims import docgen
from openims.store.db import Database
from openims.store.schema import load_all

ROOT = Path(__file__).resolve().parents[2]


def test_api_reference_is_generated_from_the_action_table() -> None:
    assert (ROOT / "docs" / "api.md").read_text() == docgen.render(), "run: python -m openims.docgen > docs/api.md"


# Expression indexes (users' case-insensitive names) cannot be reflected; test_constraints.py checks that one.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_migrations_build_exactly_the_declared_schema(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.migrate()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), load_all())
    db.dispose()
    assert diff == [], f"schema and migrations differ: {diff}"

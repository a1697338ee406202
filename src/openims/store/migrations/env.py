"""Alembic environment: runs on the connection `Database.migrate` hands over, or on the configured URL."""

from __future__ import annotations

from typing import cast

from alembic import context
from sqlalchemy import create_engine

from openims.store.schema import load_all

target_metadata = load_all()
config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    # store.db.alembic_config always sets the URL; were it missing, create_engine would still be the one to raise.
    with create_engine(cast(str, config.get_main_option("sqlalchemy.url"))).begin() as conn:
        _run(conn)

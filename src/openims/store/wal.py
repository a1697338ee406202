"""SQLite's WAL checkpoints, off the request path: the server's connections do not checkpoint at commit
(`Database.checkpoint_in_background`); the leading process copies the WAL into the database here instead."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from sqlalchemy.engine import make_url

from openims.runtime import Runtime

log = logging.getLogger("openims.wal")
INTERVAL_S = 1.0


async def checkpointer(rt: Runtime) -> None:
    """A PASSIVE checkpoint every INTERVAL_S: it copies what no reader still needs and never waits for
    (or blocks) a writer or a reader."""
    database = make_url(rt.db.url).database if rt.db.is_sqlite else None
    if not database or database == ":memory:":
        return
    conn = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=0")
        while True:
            try:
                await asyncio.to_thread(conn.execute, "PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # busy or failing storage: the next round tries again
                log.warning("WAL checkpoint failed: %s", exc)
            await asyncio.sleep(INTERVAL_S)
    finally:
        conn.close()

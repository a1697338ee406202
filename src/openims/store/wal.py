"""SQLite's WAL checkpoints, off the request path: the server's connections do not checkpoint at commit
(`Database.checkpoint_in_background`); the leading process copies the WAL into the database here instead.

Copying is not enough under steady load. SQLite writes the WAL from its start again only when a write begins
while every frame has been copied and no reader still reads from the WAL, and with calls reading and writing all
the time that moment never comes: the WAL grew by ~30 MB a second under load (300 MB after ten seconds), every
commit writing to new blocks of a growing file, every read looking pages up in a growing WAL index. So once the
WAL holds RESTART_FRAMES, a RESTART checkpoint follows the copy: it holds writers back while it copies the few
frames written since and waits, at most RESTART_WAIT_MS, for the readers still on the WAL (calls' snapshots,
each a few milliseconds), and the next write then starts the WAL over; when a reader outlasts the wait, the
next round tries again."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from sqlalchemy.engine import make_url

from openims.runtime import Runtime

log = logging.getLogger("openims.wal")
INTERVAL_S = 1.0
RESTART_FRAMES = 4096  # 16 MiB of 4 KiB pages
RESTART_WAIT_MS = 10


async def checkpointer(rt: Runtime) -> None:
    """A PASSIVE checkpoint every INTERVAL_S: it copies what no reader still needs and never waits for
    (or blocks) a writer or a reader."""
    database = make_url(rt.db.url).database if rt.db.is_sqlite else None
    if not database or database == ":memory:":
        return
    conn = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
    try:
        while True:
            try:
                await asyncio.to_thread(checkpoint, conn)
            except sqlite3.Error as exc:  # failing storage: the next round tries again
                log.warning("WAL checkpoint failed: %s", exc)
            await asyncio.sleep(INTERVAL_S)
    finally:
        conn.close()


def checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the database without waiting for anyone; then, when it has grown, start it over."""
    conn.execute("PRAGMA busy_timeout=0")
    _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    if frames >= RESTART_FRAMES:
        conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
        conn.execute("PRAGMA wal_checkpoint(RESTART)")

"""The WAL checkpointer (store/wal.py): under reads and writes that never pause, the WAL still starts over."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from openims.store import wal


def test_a_grown_wal_starts_over_although_a_reader_is_always_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long enough for the reader below to let go on the slowest machine; the server's own wait is short.
    monkeypatch.setattr(wal, "RESTART_WAIT_MS", 5000)
    path = tmp_path / "w.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE pages (body BLOB)")
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    checkpointer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def write(rows: int) -> None:
        writer.execute("BEGIN IMMEDIATE")
        writer.executemany("INSERT INTO pages VALUES (?)", [(b"x" * 3000,) for _ in range(rows)])
        writer.execute("COMMIT")

    # A call's snapshot older than the last write, as there always is one when calls never pause: the WAL cannot
    # be copied past it, so SQLite never finds the moment to start the WAL over on its own.
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM pages").fetchone()
    write(wal.RESTART_FRAMES + 100)
    copying = threading.Thread(target=wal.checkpoint, args=(checkpointer,))
    copying.start()
    time.sleep(0.05)
    reader.execute("COMMIT")  # the call ends, as calls do, and the checkpoint waiting for it completes
    copying.join()
    write(10)
    frames = checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    assert frames < 100  # written from the WAL's start again, not after the 4,000 frames before

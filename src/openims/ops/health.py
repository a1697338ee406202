"""Readiness: whether this server process can do its work now, as machine reason codes.

Not ready when: the database cannot be reached (`database-unreachable`) or cannot take a write
(`database-unwritable`); its schema is not the newest this code knows (`migrations-not-current`: a pending
migration, or a database already migrated by newer code); the data dir cannot be written
(`data-dir-unwritable`, which `serve` also refuses at start) or its file system has less free space than
OPENIMS_READY_MIN_FREE_MB (`low-disk-space`); or the trail deliverer this process should run has stopped
(`delivery-not-running`). The causes behind a reason go to the log, never into the answer.

The database check is a real committed write that changes nothing: Alembic's own row rewritten with its own
value, read back to compare with the code's migration heads. A rolled-back write would not reach the disk and
so could not tell a full or read-only one. The verdict is cached for CACHE_SECONDS, and one check runs at a
time, so probes stay cheap however often they come.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable

from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from openims.runtime import Runtime
from openims.store.db import alembic_config, is_storage_failure

log = logging.getLogger("openims.ready")

CACHE_SECONDS = 1.5
_TOUCH = text("UPDATE alembic_version SET version_num = version_num")
_REVISIONS = text("SELECT version_num FROM alembic_version")
_PING = text("SELECT 1")
# A probe must not wait long behind a migration that holds Alembic's row (PostgreSQL; SQLite has busy_timeout).
_PG_LOCK_TIMEOUT = text("SET LOCAL lock_timeout = '2s'")


class Readiness:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._heads: frozenset[str] | None = None
        self._delivery_stopped: Callable[[], bool] | None = None
        self._lock = threading.Lock()
        self._verdict: tuple[str, ...] = ()
        self._checked_at = float("-inf")
        self._last_logged: tuple[str, ...] = ()

    def expect_delivery(self, stopped: Callable[[], bool]) -> None:
        """This process serves trail delivery: `stopped()` says whether the deliverer cannot run or has stopped."""
        self._delivery_stopped = stopped

    def reasons(self) -> list[str]:
        """Why the process is not ready (empty: ready). Blocks on the database: call it off the event loop."""
        found = list(self._cached())
        if self._delivery_stopped is not None and self._delivery_stopped():
            found.append("delivery-not-running")
        with self._lock:  # one line per change of verdict, not one per probe
            if found and tuple(found) != self._last_logged:
                log.warning("not ready: %s", ", ".join(found))
            elif not found and self._last_logged:
                log.info("ready again")
            self._last_logged = tuple(found)
        return found

    def _cached(self) -> tuple[str, ...]:
        with self._lock:
            if time.monotonic() - self._checked_at >= CACHE_SECONDS:
                self._verdict = tuple(self._database() + self._data_dir())
                self._checked_at = time.monotonic()
            return self._verdict

    def _database(self) -> list[str]:
        db = self._rt.db
        try:
            with db.transaction() as conn:
                if not db.is_sqlite:
                    conn.execute(_PG_LOCK_TIMEOUT)
                conn.execute(_TOUCH)
                revisions = frozenset(conn.execute(_REVISIONS).scalars())
        except SQLAlchemyError as exc:
            log.warning("readiness: the database write probe failed: %s", _first_line(exc))
            return ["database-unwritable" if is_storage_failure(exc) or self._reachable() else "database-unreachable"]
        return [] if revisions == self._code_heads() else ["migrations-not-current"]

    def _reachable(self) -> bool:
        try:
            with self._rt.db.read() as conn:
                conn.execute(_PING)
        except SQLAlchemyError:
            return False
        return True

    def _code_heads(self) -> frozenset[str]:
        if self._heads is None:
            self._heads = frozenset(ScriptDirectory.from_config(alembic_config(self._rt.db.url)).get_heads())
        return self._heads

    def _data_dir(self) -> list[str]:
        directory = self._rt.settings.data_dir
        found = []
        probe = directory / f".openims-ready-probe-{os.getpid()}"
        try:
            probe.write_bytes(b"probe")
            probe.unlink()
        except OSError as exc:
            log.warning("readiness: cannot write to the data dir: %s", exc.strerror or exc.__class__.__name__)
            found.append("data-dir-unwritable")
        try:
            free = shutil.disk_usage(directory).free
        except OSError as exc:
            log.warning("readiness: cannot read the data dir's free space: %s", exc.strerror)
            return [*found, "low-disk-space"]
        if free < self._rt.settings.ready_min_free_bytes:
            found.append("low-disk-space")
        return found


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", exc)
    lines = str(orig).splitlines()
    return f"{exc.__class__.__name__}: {lines[0][:200]}" if lines else exc.__class__.__name__

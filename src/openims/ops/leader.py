"""One process among all those serving a database runs the jobs that must run once: trail delivery, the
integrity sequencer, housekeeping, SQLite checkpoints. Workers of one `serve` and servers sharing a PostgreSQL
database elect it with a lock that the operating system or the database frees when its holder dies (flock
on a file beside the SQLite database; a session advisory lock on PostgreSQL), so another process takes over
within `RETRY_S` of a leader's death, with no lease to expire."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from openims.runtime import Runtime

log = logging.getLogger("openims.leader")
Job = Callable[[Runtime], Coroutine[Any, Any, None]]
RETRY_S = 2.0
# How often the leader checks that it still holds a PostgreSQL lock (its session may have been cut).
CHECK_S = 5.0
# pg_advisory_lock takes a 64-bit key; this one is "openims1" in ASCII.
_PG_KEY = 0x6F70656E696D7331


class _Lock(Protocol):
    def try_acquire(self) -> bool: ...
    def still_held(self) -> bool: ...
    def release(self) -> None: ...


class FileLock:
    """flock on a file: held until released or until the process that took it exits, however it exits."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor of the open file releases the flock
            self._fd = None


class AdvisoryLock:
    """A PostgreSQL session advisory lock on a connection of its own: the server frees it when the session ends."""

    def __init__(self, url: str) -> None:
        self._engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        conn = self._engine.connect()
        if conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _PG_KEY}).scalar():
            self._conn = conn
            return True
        conn.close()
        return False

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
        except DBAPIError:
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()  # ends the session, which frees the lock even if the unlock never ran
            except DBAPIError:
                pass
            self._conn = None
        self._engine.dispose()


def lock_for(rt: Runtime) -> _Lock:
    if rt.db.is_sqlite:
        database = make_url(rt.db.url).database
        path = f"{database}.leader" if database and database != ":memory:" else str(rt.settings.data_dir / "leader")
        return FileLock(path)
    return AdvisoryLock(rt.db.url)


class Leadership:
    """Runs `jobs` in this process while it holds the leader lock, trying to take it every RETRY_S."""

    def __init__(self, rt: Runtime, jobs: Sequence[Job]) -> None:
        self._rt = rt
        self._jobs = tuple(jobs)
        self._lock = lock_for(rt)
        self._tasks: dict[Job, asyncio.Task[None]] = {}

    def stopped(self, job: Job) -> bool:
        """Whether this process leads and `job` has stopped in it (False where another process leads)."""
        task = self._tasks.get(job)
        return task is not None and task.done()

    async def run(self) -> None:
        """Until cancelled: wait to lead, then run the jobs for as long as the lock is held."""
        while True:
            if not await asyncio.to_thread(self._try_acquire):
                await asyncio.sleep(RETRY_S)
                continue
            log.info("process %d leads: it runs the background jobs", os.getpid())
            self._tasks = {job: asyncio.create_task(job(self._rt)) for job in self._jobs}
            try:
                while await asyncio.to_thread(self._lock.still_held):
                    await asyncio.sleep(CHECK_S)
                log.error("process %d lost the leader lock; its background jobs stop", os.getpid())
            finally:
                for task in self._tasks.values():
                    task.cancel()
                await asyncio.gather(*self._tasks.values(), return_exceptions=True)
                self._tasks = {}
                await asyncio.to_thread(self._lock.release)

    def _try_acquire(self) -> bool:
        try:
            return self._lock.try_acquire()
        except (OSError, DBAPIError) as exc:
            log.warning("cannot take the leader lock now: %s", str(exc).splitlines()[0][:200])
            return False

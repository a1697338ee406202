"""When each AccessKey was last used, from where and for which service.

Authentication must not wait on a write, so a verified signature only notes the use in memory (a dict
assignment); a background task writes the newest use of each key every FLUSH_SECONDS in one transaction.
Readers merge the stored value with this process's unflushed uses, so a figure is exact for uses made through
the answering server process and at most FLUSH_SECONDS behind for uses made through other processes sharing
the database. A crash loses at most the last FLUSH_SECONDS of uses.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from starlette.concurrency import run_in_threadpool

from openims import clock
from openims.actions.registry import SERVICES
from openims.api import signing
from openims.api.protocol import RpcRequest
from openims.runtime import PerDatabase, Runtime
from openims.store.schema import access_keys
from openims.store.tables.keys import access_key_usage

log = logging.getLogger("openims.credentials.key_usage")
FLUSH_SECONDS = 5.0


@dataclass(frozen=True)
class Use:
    ms: int
    service: str
    source_ip: str


class Recorder:
    """Unflushed uses of one database's keys: the newest per key."""

    def __init__(self) -> None:
        self._pending: dict[str, Use] = {}
        self._lock = threading.Lock()

    def note(self, key_id: str, use: Use) -> None:
        with self._lock:
            self._pending[key_id] = use

    def take(self) -> dict[str, Use]:
        with self._lock:
            batch, self._pending = self._pending, {}
        return batch

    def give_back(self, batch: dict[str, Use]) -> None:
        """Requeue a batch that could not be written, keeping any newer use noted since."""
        with self._lock:
            for key_id, use in batch.items():
                if key_id not in self._pending or self._pending[key_id].ms < use.ms:
                    self._pending[key_id] = use

    def peek(self, key_ids: Iterable[str]) -> dict[str, Use]:
        with self._lock:
            return {k: self._pending[k] for k in key_ids if k in self._pending}


# One recorder per database, so runtimes on the same database in one process share their uses.
recorder = PerDatabase(Recorder)


def note_use(rt: Runtime, key: signing.KeyRecord, req: RpcRequest) -> None:
    """A key check: a verified signature is a use of its key. Memory only; never touches the database."""
    service = SERVICES.get(req.version)
    recorder(rt).note(
        key.principal.access_key_id, Use(clock.now_ms(), service.name if service else "", req.source_ip[:64])
    )


def flush(rt: Runtime) -> int:
    """Write the pending uses (newest wins, also against other processes); returns how many were written."""
    rec = recorder(rt)
    batch = rec.take()
    if not batch:
        return 0
    try:
        with rt.db.transaction() as conn:
            # A key purged since its use has no row to describe; skip it rather than fail the batch.
            live = set(conn.execute(select(access_keys.c.id).where(access_keys.c.id.in_(list(batch)))).scalars())
            rows = [
                {"access_key_id": k, "last_used_ms": u.ms, "service_name": u.service, "source_ip": u.source_ip}
                for k, u in sorted(batch.items())
                if k in live
            ]
            if rows:
                conn.execute(_upsert(conn), rows)
    except Exception:
        rec.give_back(batch)
        raise
    return len(rows)


def _upsert(conn: Connection):  # type: ignore[no-untyped-def]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(access_key_usage)
    return stmt.on_conflict_do_update(
        index_elements=[access_key_usage.c.access_key_id],
        set_={
            "last_used_ms": stmt.excluded.last_used_ms,
            "service_name": stmt.excluded.service_name,
            "source_ip": stmt.excluded.source_ip,
        },
        # Another process may have written a newer use meanwhile.
        where=access_key_usage.c.last_used_ms < stmt.excluded.last_used_ms,
    )


def last_used(rt: Runtime, conn: Connection, key_ids: list[str]) -> dict[str, Use]:
    """The newest known use of each key that was ever used (stored, or noted here and not yet flushed)."""
    if not key_ids:
        return {}
    rows = conn.execute(select(access_key_usage).where(access_key_usage.c.access_key_id.in_(key_ids))).all()
    found = {r.access_key_id: Use(r.last_used_ms, r.service_name, r.source_ip) for r in rows}
    for key_id, use in recorder(rt).peek(key_ids).items():
        if key_id not in found or found[key_id].ms < use.ms:
            found[key_id] = use
    return found


async def flusher(rt: Runtime) -> None:
    """Background job: flush every FLUSH_SECONDS, and once more on shutdown."""
    try:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await run_in_threadpool(flush, rt)
            except Exception:  # the batch was requeued; the next round retries
                log.exception("could not record AccessKey last-used times")
    finally:
        try:
            flush(rt)
        except Exception:
            log.exception("could not record AccessKey last-used times at shutdown")

"""Group commit of read calls' events. A read changes nothing but its event and its spent nonce, so the events
of concurrent reads can share one transaction: one thread commits whatever reads have queued since its last
commit, then wakes their callers. Durability does not weaken: a caller returns (and its answer is sent) only
after the transaction holding its event has committed. One read whose rows fail does not fail the others: a
batch that fails is retried one call at a time, so each caller gets its own outcome."""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from openims.audit import event as audit
from openims.runtime import PerDatabase, Runtime
from openims.store.schema import signature_nonces

log = logging.getLogger("openims.group_commit")
# Reads whose rows one transaction holds at most: it bounds how long the write lock is held.
MAX_BATCH = 128
Nonce = tuple[str, str, int]


class SpentNonce(Exception):
    """The call's nonce was spent already (a replayed request); its event was not recorded."""


class _Pending:
    __slots__ = ("done", "event", "nonce")

    def __init__(self, nonce: Nonce | None, event: dict[str, Any]) -> None:
        self.nonce = nonce
        self.event = event
        self.done: Future[None] = Future()


class GroupCommitter:
    """The committer thread of one database in this process, started at its first use."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def commit(self, rt: Runtime, nonce: Nonce | None, event: dict[str, Any]) -> None:
        """Record a read call's event, spending its nonce, and return once both are committed. Raises
        SpentNonce for a replay, or what the database raised."""
        pending = _Pending(nonce, event)
        self._ensure_running(rt)
        self._queue.put(pending)
        pending.done.result()

    def _ensure_running(self, rt: Runtime) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, args=(rt,), name="openims-group-commit", daemon=True)
                self._thread.start()

    def _run(self, rt: Runtime) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if len(batch) == 1:
                _commit_alone(rt, batch[0])
                continue
            try:
                outcomes = _commit(rt, batch)
            except Exception:  # noqa: BLE001 - whatever failed, each call is retried alone below
                # Some call's rows failed the batch: each call alone then gets its own outcome.
                for pending in batch:
                    _commit_alone(rt, pending)
                continue
            for pending, outcome in zip(batch, outcomes, strict=True):
                _settle(pending, outcome)


def _commit(rt: Runtime, batch: list[_Pending]) -> list[BaseException | None]:
    """One transaction for the batch; returns each call's outcome (None: recorded)."""
    outcomes: list[BaseException | None] = []
    with rt.db.transaction() as conn:
        spend = _spend_statement(conn)
        for pending in batch:
            if pending.nonce is not None and not _spent_now(conn, spend, pending.nonce):
                outcomes.append(SpentNonce())
                continue
            audit.record(conn, dict(pending.event))  # a copy: record takes fields out, and a retry needs them
            outcomes.append(None)
    return outcomes


def _commit_alone(rt: Runtime, pending: _Pending) -> None:
    try:
        _settle(pending, _commit(rt, [pending])[0])
    except Exception as exc:  # noqa: BLE001 - handed to the caller, which records the failure as for any call
        pending.done.set_exception(exc)


def _settle(pending: _Pending, outcome: BaseException | None) -> None:
    if outcome is None:
        pending.done.set_result(None)
    else:
        pending.done.set_exception(outcome)


def _spend_statement(conn: Connection) -> Any:
    # ON CONFLICT DO NOTHING: a replayed nonce inserts no row and, unlike a unique violation, does not abort the
    # PostgreSQL transaction the other calls' rows are in.
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(signature_nonces).on_conflict_do_nothing().returning(signature_nonces.c.nonce)


def _spent_now(conn: Connection, statement: Any, nonce: Nonce) -> bool:
    key_id, value, expires_ms = nonce
    row = conn.execute(statement, {"access_key_id": key_id, "nonce": value, "expires_ms": expires_ms}).first()
    return row is not None


committer = PerDatabase(GroupCommitter)

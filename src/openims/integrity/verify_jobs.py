"""Verifications run in the background, for the console's `Verify now`: a large log takes longer to check than a
request may wait, so the request starts a job and returns at once; the Integrity page shows the job's progress and
then its result, from whichever server of the deployment serves it. One job at a time per account."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from openims import clock
from openims.integrity import verifier
from openims.runtime import Runtime
from openims.store.tables.digests import verify_jobs
from openims.store.tables.integrity import log_state

log = logging.getLogger("openims.integrity")
HEARTBEAT_MS = 1_000
# A running job that has not reported for this long stopped with its server (it is not resumed: start another).
STALE_MS = 60_000
KEEP_MS = 7 * 24 * 3600 * 1000  # the page shows the newest job only; older ones go after a week

Finished = Callable[[verifier.AccountReport | None], None]


@dataclass(frozen=True)
class Job:
    id: str
    state: str  # running, done, failed, interrupted
    events_done: int
    events_total: int
    result: dict[str, Any] | None  # events, checkpoints, problems, notes
    started_ms: int
    finished_ms: int | None

    @property
    def percent(self) -> int:
        return min(99, self.events_done * 100 // self.events_total) if self.events_total else 0


def start(rt: Runtime, account_id: str, finished: Finished) -> Job:
    """Start verifying the account's log in a thread of this process, unless a job already runs for it (then
    that one is returned). `finished` is called with the report (None if the verification failed) before the
    job shows as done: the console records the VerifyEventLog event there."""
    now = clock.now_ms()
    with rt.db.transaction() as conn:
        current = _newest(conn, account_id)
        if current is not None and current.state == "running":
            return current
        size, first = conn.execute(
            select(log_state.c.size, log_state.c.start).where(log_state.c.account_id == account_id)
        ).first() or (0, 0)
        job_id = uuid.uuid4().hex
        conn.execute(
            insert(verify_jobs).values(
                id=job_id,
                account_id=account_id,
                state="running",
                events_total=int(size) - int(first),
                started_ms=now,
                heartbeat_ms=now,
            )
        )
        job = _newest(conn, account_id)
    assert job is not None
    threading.Thread(
        target=_run, args=(rt, job_id, account_id, finished), name=f"openims-verify-{job_id[:8]}", daemon=True
    ).start()
    return job


def newest(rt: Runtime, account_id: str) -> Job | None:
    """The account's newest job."""
    with rt.db.read() as conn:
        return _newest(conn, account_id)


def _newest(conn: Connection, account_id: str) -> Job | None:
    row = conn.execute(
        select(verify_jobs)
        .where(verify_jobs.c.account_id == account_id)
        .order_by(verify_jobs.c.started_ms.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    state = row.state
    if state == "running" and clock.now_ms() - row.heartbeat_ms > STALE_MS:
        state = "interrupted"
    result = json.loads(row.result) if row.result else None
    return Job(row.id, state, row.events_done, row.events_total, result, row.started_ms, row.finished_ms)


def _run(rt: Runtime, job_id: str, account_id: str, finished: Finished) -> None:
    reported = [0]

    def progress(done: int) -> None:
        now = clock.now_ms()
        if now - reported[0] >= HEARTBEAT_MS:
            reported[0] = now
            _update(rt, job_id, events_done=done, heartbeat_ms=now)

    report: verifier.AccountReport | None = None
    try:
        (report,) = verifier.verify(rt, account_id, progress=progress)
    except Exception:
        log.exception("the background verification of account %s failed", account_id)
    try:
        finished(report)
    finally:
        now = clock.now_ms()
        if report is None:
            _update(rt, job_id, state="failed", heartbeat_ms=now, finished_ms=now)
        else:
            result = {
                "events": report.events,
                "checkpoints": report.checkpoints,
                "problems": report.problems,
                "notes": report.notes,
            }
            _update(
                rt,
                job_id,
                state="done",
                events_done=report.events,
                result=json.dumps(result),
                heartbeat_ms=now,
                finished_ms=now,
            )


def purge(rt: Runtime) -> int:
    """Forget jobs started more than a week ago (their outcome is on the record: the VerifyEventLog event)."""
    with rt.db.transaction() as conn:
        return conn.execute(delete(verify_jobs).where(verify_jobs.c.started_ms < clock.now_ms() - KEEP_MS)).rowcount


def _update(rt: Runtime, job_id: str, **values: Any) -> None:
    with rt.db.transaction() as conn:
        conn.execute(update(verify_jobs).where(verify_jobs.c.id == job_id).values(**values))

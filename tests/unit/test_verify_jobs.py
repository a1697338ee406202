"""Background verifications (the console's `Verify now`), on SQLite and PostgreSQL: a job reports progress and
its result, calls back once when it ends, runs once at a time per account, shows as interrupted when its server
stopped, and is purged after a week."""

from __future__ import annotations

import threading
import time

from sqlalchemy import insert

from openims import clock
from openims.integrity import sequencer, verifier, verify_jobs
from openims.runtime import Runtime
from openims.store.tables.digests import verify_jobs as jobs_table
from tests.unit.test_outbox import new_account, record


def wait_done(rt: Runtime, account: str) -> verify_jobs.Job:
    deadline = time.monotonic() + 60
    while (job := verify_jobs.newest(rt, account)) is not None and job.state == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job is not None
    return job


def test_a_job_verifies_in_the_background_and_calls_back_once(rt: Runtime) -> None:
    account = new_account(rt)
    for _ in range(5):
        record(rt, account)
    sequencer.cover(rt, account, sign=True)
    reports: list[verifier.AccountReport | None] = []
    release = threading.Event()

    def finished(report: verifier.AccountReport | None) -> None:
        release.wait(30)  # hold the job open: a second start meanwhile joins it
        reports.append(report)

    first = verify_jobs.start(rt, account, finished)
    assert first.state == "running" and first.events_total == 5 and first.result is None
    assert verify_jobs.start(rt, account, finished).id == first.id
    release.set()
    done = wait_done(rt, account)
    assert done.id == first.id and done.state == "done" and done.finished_ms is not None
    assert done.result is not None and done.result["problems"] == [] and done.result["events"] == first.events_total
    (report,) = reports
    assert report is not None and report.events == first.events_total


def test_a_job_whose_server_stopped_shows_as_interrupted_and_old_jobs_are_purged(rt: Runtime) -> None:
    account = new_account(rt)
    long_ago = clock.now_ms() - verify_jobs.STALE_MS - 1
    with rt.db.transaction() as conn:
        conn.execute(
            insert(jobs_table).values(
                id="x" * 32, account_id=account, state="running", started_ms=long_ago, heartbeat_ms=long_ago
            )
        )
    stale = verify_jobs.newest(rt, account)
    assert stale is not None and stale.state == "interrupted"
    fresh = verify_jobs.start(rt, account, lambda report: None)  # an interrupted job does not block a new one
    assert fresh.id != stale.id and wait_done(rt, account).state == "done"
    clock.set_offset(8 * 24 * 3600)
    assert verify_jobs.purge(rt) == 2 and verify_jobs.newest(rt, account) is None

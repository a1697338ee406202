"""Historic delivery in-process, on SQLite and PostgreSQL: where live delivery and the history job meet (an event
made before StartLogging but recorded after it goes to the job, never to both), chunks retried identically per
target, a job failed after repeated failures and resumed by creating it again; and the AccessKey activity
queries read their indexes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, text, update

from openims import clock, config
from openims.actions.registry import IMS
from openims.audit import event as audit
from openims.cli.operator import call
from openims.delivery import history, outbox
from openims.delivery.deliverer import Deliverer
from openims.principal import ROOT, Principal
from openims.runtime import Runtime, open_runtime
from openims.store.tables.key_activity import delivery_history_jobs
from tests.unit.test_outbox import Recorder, make_trail, new_account, queued, record, recording


def _made_at(account: str, event_ms: int) -> dict[str, Any]:
    principal = Principal(account_id=account, kind=ROOT, principal_id=account, user_name="root")
    return audit.build(
        name="CreateUser",
        service=IMS,
        rw="Write",
        principal=principal,
        origin=audit.Origin("127.0.0.1", "test"),
        request_id="R",
        region="cn-hangzhou",
        api_version="2019-08-15",
        event_ms=event_ms,
    )


def _job(rt: Runtime, job_id: int) -> Any:
    with rt.db.read() as conn:
        return conn.execute(select(delivery_history_jobs).where(delivery_history_jobs.c.id == job_id)).one()


def test_an_event_made_before_start_but_recorded_after_goes_to_the_job_only(rt: Runtime) -> None:
    account = new_account(rt)
    early = record(rt, account)
    trail_id = make_trail(rt, account, "meet-trail", "Write", start=False)
    straggler = _made_at(account, clock.now_ms() - 1)  # a call in flight while StartLogging commits
    call(rt, account, "StartLogging", {"Name": "meet-trail"})
    with rt.db.transaction() as conn:
        audit.record(conn, straggler)
    live = record(rt, account)
    assert straggler["eventId"] not in queued(rt, trail_id) and live in queued(rt, trail_id)

    sink = Recorder()
    deliverer = Deliverer(rt, targets_for=recording(("oss", sink)))
    job_id = call(rt, account, "CreateDeliveryHistoryJob", {"TrailName": "meet-trail"})["JobId"]
    assert deliverer.drain()
    assert _job(rt, job_id).status == history.COMPLETE
    ids = sink.event_ids()
    assert early in ids and live in ids and straggler["eventId"] in ids
    assert len(ids) == len(set(ids))  # nothing twice


def test_a_failing_target_is_retried_with_the_same_chunk_then_fails_the_job_which_resumes(rt: Runtime) -> None:
    account = new_account(rt)
    for _ in range(3):
        record(rt, account)
    make_trail(rt, account, "retry-trail", "Write", start=False)
    good, bad = Recorder(), Recorder(fail=history.MAX_ATTEMPTS)
    deliverer = Deliverer(rt, targets_for=recording(("oss", good), ("sls", bad)))
    job_id = call(rt, account, "CreateDeliveryHistoryJob", {"TrailName": "retry-trail"})["JobId"]
    for _ in range(history.MAX_ATTEMPTS):
        with rt.db.transaction() as conn:  # skip the backoff
            conn.execute(update(delivery_history_jobs).values(next_attempt_ms=0))
        assert deliverer.deliver_history()
    job = _job(rt, job_id)
    assert job.status == history.FAILED and "connection refused" in job.last_error
    # The target that took the chunk was not sent it again; nothing moved past it.
    assert len(good.batches) == 1 and bad.batches == [] and job.delivered == 0
    shown = call(rt, account, "GetDeliveryHistoryJob", {"JobId": str(job_id)})
    assert shown["JobStatus"] == history.FAILED and "connection refused" in shown["ErrorMessage"]

    # Created again: the same job resumes, and the other target gets the very same chunk.
    assert call(rt, account, "CreateDeliveryHistoryJob", {"TrailName": "retry-trail"})["JobId"] == job_id
    deliverer.drain()
    job = _job(rt, job_id)
    assert job.status == history.COMPLETE and job.delivered == len(good.batches[0].events)
    assert [b.batch_id for b in bad.batches] == [good.batches[0].batch_id]
    assert bad.batches[0].events == good.batches[0].events


@pytest.fixture
def sqlite_rt(tmp_path: Path) -> Iterator[Runtime]:
    """SQLite only: the plans checked are SQLite's (PostgreSQL picks by statistics, which a test cannot pin)."""
    runtime = open_runtime(
        config.Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'openims.db'}"), create=True
    )
    try:
        yield runtime
    finally:
        runtime.close()


def test_key_activity_queries_read_their_indexes(sqlite_rt: Runtime) -> None:
    rt = sqlite_rt
    account = new_account(rt)
    with rt.db.read() as conn:
        key_id = conn.execute(text("SELECT id FROM access_keys WHERE account_id = :a"), {"a": account}).scalar()
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if "FROM events" in statement and "access_key_id <> ''" in statement:
            statements.append((statement, params))

    engines = {rt.db.engine, rt.db.read_engine}  # reads run on SQLite's reader engine
    for engine in engines:
        sa_event.listen(engine, "before_cursor_execute", capture)
    try:
        for name, extra in (
            ("GetAccessKeyLastUsedIps", {"ServiceName": "Ims"}),
            ("GetAccessKeyLastUsedEvents", {"ServiceName": "Ims"}),
            ("GetAccessKeyLastUsedResources", {"ServiceName": "Ims"}),
            ("GetAccessKeyLastUsedProducts", {}),
        ):
            call(rt, account, name, {"AccessKey": key_id, **extra})
    finally:
        for engine in engines:
            sa_event.remove(engine, "before_cursor_execute", capture)
    plans = set()
    with rt.db.engine.connect() as conn:
        for statement, params in statements:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            plans.add(" ".join(r[-1] for r in rows))
    used = {p.split("INDEX ")[1].split(" ")[0] for p in plans if "INDEX " in p}
    assert {"ix_events_key_ip", "ix_events_key_event", "ix_events_key_resource"} <= used, plans
    assert not any("SCAN events" in p or "TEMP B-TREE" in p for p in plans), plans
    # A pair steps by plain range seeks (a row-value bound on the previous row would only use its first column).
    assert any("service_name=? AND resource_type=? AND resource_name<?" in p for p in plans), plans


def test_two_deliverers_share_a_job_without_sending_a_chunk_twice(rt: Runtime) -> None:
    account = new_account(rt)
    with rt.db.transaction() as conn:  # three chunks' worth, recorded as the API records them
        for i in range(2 * outbox.MAX_BATCH + 7):
            audit.record(conn, _made_at(account, clock.now_ms() - 10_000 + i))
    make_trail(rt, account, "shared-trail", "Write", start=False)
    sink = Recorder()
    deliverers = [Deliverer(rt, targets_for=recording(("oss", sink)), owner=f"d{i}") for i in range(2)]
    job_id = call(rt, account, "CreateDeliveryHistoryJob", {"TrailName": "shared-trail"})["JobId"]

    def work(d: Deliverer) -> None:
        while _job(rt, job_id).status != history.COMPLETE:
            d.deliver_history()

    threads = [threading.Thread(target=work, args=(d,)) for d in deliverers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    ids = sink.event_ids()
    assert len(ids) == len(set(ids)) == 2 * outbox.MAX_BATCH + 7 + 1  # the seeded events and CreateTrail
    assert len({b.batch_id for b in sink.batches}) == len(sink.batches) == 3

"""The trail outbox and deliverer in-process, on SQLite and PostgreSQL: what gets queued, how batches are claimed
by several deliverers at once, re-claimed after a crash with the same content, retried with capped backoff,
recorded per target, and purged."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select, update

from openims import accounts, clock, maintenance
from openims.actions.registry import IMS
from openims.audit import event as audit
from openims.cli.operator import call
from openims.delivery import outbox
from openims.delivery.batch import Batch, DeliveryError
from openims.delivery.deliverer import Deliverer
from openims.delivery.sinks.objectkey import log_files
from openims.delivery.targets import Target
from openims.principal import ROOT, Principal
from openims.runtime import Runtime
from openims.store.schema import events
from openims.store.tables.trails import trail_batches, trail_outbox, trail_target_status, trails


def new_account(rt: Runtime) -> str:
    return accounts.create_account(rt, "a" + os.urandom(5).hex()).account_id


def make_trail(rt: Runtime, account: str, name: str, rw: str = "Write", start: bool = True) -> str:
    call(rt, account, "CreateTrail", {"Name": name, "OssBucketName": "bucket-" + name.replace("_", "-"), "EventRW": rw})
    if start:
        call(rt, account, "StartLogging", {"Name": name})
    with rt.db.transaction() as conn:
        return conn.execute(
            select(trails.c.id).where(trails.c.account_id == account, trails.c.name == name)
        ).scalar_one()


def record(rt: Runtime, account: str, rw: str = "Write", name: str = "CreateUser") -> str:
    """One event through the real audit path (which queues it for the trails); returns its eventId."""
    principal = Principal(account_id=account, kind=ROOT, principal_id=account, user_name="root")
    ev = audit.build(
        name=name,
        service=IMS,
        rw=rw,
        principal=principal,
        origin=audit.Origin("127.0.0.1", "test"),
        request_id="R",
        region="cn-hangzhou",
        api_version="2019-08-15",
    )
    with rt.db.transaction() as conn:
        audit.record(conn, ev)
    return ev["eventId"]


def queued(rt: Runtime, trail_id: str) -> list[str]:
    with rt.db.transaction() as conn:
        return list(
            conn.execute(
                select(trail_outbox.c.event_id).where(trail_outbox.c.trail_id == trail_id).order_by(trail_outbox.c.id)
            ).scalars()
        )


class Recorder:
    """A sink that keeps what it was given, optionally failing first."""

    def __init__(self, fail: int = 0) -> None:
        self.batches: list[Batch] = []
        self.fail = fail
        self.lock = threading.Lock()

    def deliver(self, batch: Batch) -> None:
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise DeliveryError("bucket unreachable: connection refused")
            self.batches.append(batch)

    def event_ids(self) -> list[str]:
        return [e["eventId"] for b in self.batches for e in b.events]


def recording(*sinks: tuple[str, Recorder]) -> Any:
    return lambda row: [Target(kind, kind, sink) for kind, sink in sinks]


def test_only_logging_trails_with_matching_event_rw_queue_events(rt: Runtime) -> None:
    account = new_account(rt)
    writes = make_trail(rt, account, "writes-trail", "Write")
    reads = make_trail(rt, account, "reads-trail", "Read")
    everything = make_trail(rt, account, "all-trail", "All")
    fresh = make_trail(rt, account, "fresh-trail", "All", start=False)
    other = new_account(rt)
    w, r = record(rt, account, "Write"), record(rt, account, "Read")
    record(rt, other, "Write")
    assert w in queued(rt, writes) and r not in queued(rt, writes)
    assert r in queued(rt, reads) and w not in queued(rt, reads)
    assert {w, r} <= set(queued(rt, everything))
    assert queued(rt, fresh) == []

    # A stop is itself delivered by the trail it stops; nothing after it is.
    call(rt, account, "StopLogging", {"Name": "all-trail"})
    after = record(rt, account, "Write")
    with rt.db.transaction() as conn:
        names = [
            json.loads(b)["eventName"]
            for b in conn.execute(
                select(events.c.body)
                .join(trail_outbox, trail_outbox.c.event_id == events.c.event_id)
                .where(trail_outbox.c.trail_id == everything)
                .order_by(trail_outbox.c.id)
            ).scalars()
        ]
    assert names[-1] == "StopLogging" and after not in queued(rt, everything)


def test_a_change_made_elsewhere_reaches_the_cache_with_the_next_event(rt: Runtime) -> None:
    account = new_account(rt)
    trail_id = make_trail(rt, account, "cached-trail")
    record(rt, account)  # the cache now holds the trail as logging
    # Another process stops the trail: only the database changes, not this process's cache.
    with rt.db.transaction() as conn:
        conn.execute(update(trails).where(trails.c.id == trail_id).values(is_logging=False))
        outbox.new_generation(conn, account)
    before = len(queued(rt, trail_id))
    record(rt, account)
    assert len(queued(rt, trail_id)) == before


def test_a_rolled_back_change_never_poisons_the_cache(rt: Runtime) -> None:
    account = new_account(rt)
    trail_id = make_trail(rt, account, "rollback-trail")

    class Abort(Exception):
        pass

    with pytest.raises(Abort), rt.db.transaction() as conn:
        conn.execute(update(trails).where(trails.c.id == trail_id).values(is_logging=False))
        outbox.new_generation(conn, account)
        outbox.trails_of(conn, account)  # caches the uncommitted state under the uncommitted token
        raise Abort
    assert record(rt, account) in queued(rt, trail_id)


def test_concurrent_deliverers_deliver_each_event_exactly_once(rt: Runtime) -> None:
    account = new_account(rt)
    trail_id = make_trail(rt, account, "busy-trail", "All")
    sink = Recorder()
    deliverers = [Deliverer(rt, workers=3, targets_for=recording(("oss", sink))) for _ in range(3)]
    for d in deliverers:
        d.window_ms = 50
    stop = threading.Event()
    runners = [threading.Thread(target=d.run, args=(stop,)) for d in deliverers]
    for t in runners:
        t.start()
    expected = set(queued(rt, trail_id))

    def produce() -> None:
        for _ in range(150):
            expected.add(record(rt, account, "Read"))

    producers = [threading.Thread(target=produce) for _ in range(4)]
    for t in producers:
        t.start()
    for t in producers:
        t.join()
    deadline = clock.now() + 60
    while clock.now() < deadline and queued(rt, trail_id):
        stop.wait(0.2)
    stop.set()
    for t in runners:
        t.join()
    counts = Counter(sink.event_ids())
    assert set(counts) == expected and set(counts.values()) == {1}
    assert len({b.batch_id for b in sink.batches}) == len(sink.batches)


def test_a_batch_reclaimed_after_a_crash_is_the_same_object(rt: Runtime) -> None:
    account = new_account(rt)
    trail_id = make_trail(rt, account, "crash-trail")
    for _ in range(5):
        record(rt, account)
    first = Deliverer(rt, targets_for=recording(("oss", Recorder())))
    first.form_due(force=True)
    claimed = outbox.claim(rt.db, first.owner, clock.now_ms())
    assert claimed is not None
    with rt.db.transaction() as conn:
        bodies = outbox.batch_events(conn, claimed.batch_id)
    original = Batch("crash-trail", account, "cn-hangzhou", claimed.batch_id, [json.loads(b) for b in bodies])
    # More events arrive while the first deliverer is "down" holding its lease; they must not join its batch.
    record(rt, account)
    second_sink = Recorder()
    second = Deliverer(rt, targets_for=recording(("oss", second_sink)))
    second.form_due(force=True)
    assert second.deliver_one()  # the new events' batch, not the leased one
    assert len(second_sink.batches) == 1 and second_sink.batches[0].batch_id != claimed.batch_id
    assert not second.deliver_one()
    clock.set_offset(outbox.LEASE_MS / 1000 + 1)
    assert second.deliver_one()
    retried = second_sink.batches[-1]
    assert retried.batch_id == claimed.batch_id and len(retried.events) == 6  # StartLogging and 5 more
    assert log_files(retried, "p")[0].key == log_files(original, "p")[0].key
    assert queued(rt, trail_id) == []


def test_failures_back_off_exponentially_capped_and_are_recorded_per_target(rt: Runtime) -> None:
    account = new_account(rt)
    trail_id = make_trail(rt, account, "flaky-trail")
    good, bad = Recorder(), Recorder(fail=6)
    d = Deliverer(rt, targets_for=recording(("oss", good), ("webhook", bad)))
    d.cap_ms = 4_000
    record(rt, account)
    d.form_due(force=True)
    delays = []
    for _ in range(6):
        clock.set_offset(clock._offset + 60)  # any backoff has passed
        assert d.deliver_one()
        with rt.db.transaction() as conn:
            batch = conn.execute(select(trail_batches).where(trail_batches.c.trail_id == trail_id)).one()
            status = {
                s.target: s
                for s in conn.execute(select(trail_target_status).where(trail_target_status.c.trail_id == trail_id))
            }
        delays.append(batch.next_attempt_ms - status["webhook"].last_attempt_ms)
        assert batch.delivered_ms is None and batch.done_targets == "oss"
        assert not status["webhook"].ok and "connection refused" in status["webhook"].last_error
        assert status["oss"].ok
    assert len(good.batches) == 1  # the target that worked is not sent the batch again
    assert 800 <= delays[0] <= 1000 and 1600 <= delays[1] <= 2000 and 3200 <= delays[2] <= 4000
    assert all(d <= 4000 for d in delays[3:])
    clock.set_offset(clock._offset + 60)
    assert d.deliver_one()
    with rt.db.transaction() as conn:
        batch = conn.execute(select(trail_batches).where(trail_batches.c.trail_id == trail_id)).one()
        webhook = conn.execute(
            select(trail_target_status).where(
                trail_target_status.c.trail_id == trail_id, trail_target_status.c.target == "webhook"
            )
        ).one()
    assert batch.delivered_ms is not None and batch.attempts == 6 and webhook.ok
    assert len(bad.batches) == 1 and queued(rt, trail_id) == []
    status = call(rt, account, "GetTrailStatus", {"Name": "flaky-trail"})
    assert status["PendingEvents"] == 0 and status["OssBucketStatus"] is True


def test_delivered_batches_are_purged_after_a_day(rt: Runtime) -> None:
    account = new_account(rt)
    make_trail(rt, account, "purged-trail")
    record(rt, account)
    d = Deliverer(rt, targets_for=recording(("oss", Recorder())))
    assert d.drain()
    maintenance.purge(rt)
    with rt.db.transaction() as conn:
        assert conn.execute(select(func.count()).select_from(trail_batches)).scalar_one() == 1
    clock.set_offset(outbox.KEEP_DELIVERED_MS / 1000 + 60)
    assert maintenance.purge(rt)["trail_batches"] == 1
    with rt.db.transaction() as conn:
        assert conn.execute(select(func.count()).select_from(trail_batches)).scalar_one() == 0


def test_deleting_a_trail_drops_its_queue(rt: Runtime) -> None:
    account = new_account(rt)
    trail_id = make_trail(rt, account, "doomed-trail")
    record(rt, account)
    Deliverer(rt).form_due(force=True)
    call(rt, account, "DeleteTrail", {"Name": "doomed-trail"})
    with rt.db.transaction() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(trail_outbox).where(trail_outbox.c.trail_id == trail_id)
            ).scalar_one()
            == 0
        )
        assert conn.execute(select(func.count()).select_from(trail_batches)).scalar_one() == 0

"""Trail digests in-process, on SQLite and PostgreSQL: a batch whose digest could not be stored is retried and
stores the very same digest again, so the chain holds; the chain of a destination survives deliverers running
in parallel; and the offline verifier finds the chain intact (and reports what a retry must not leave behind)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from openims import clock
from openims.delivery.batch import DeliveryError
from openims.delivery.deliverer import Deliverer
from openims.delivery.digests import purge as digests_purge
from openims.delivery.sinks.directory import DirectorySink
from openims.delivery.targets import Target
from openims.integrity import digests, sequencer, signing_keys, trail_verify
from openims.runtime import Runtime
from openims.store.schema import events
from openims.store.tables.digests import trail_digests
from openims.store.tables.trails import trail_batches
from tests.unit.test_outbox import make_trail, new_account, record


class FlakyBucket(DirectorySink):
    """The directory sink, failing to store the first `fail` digests; keeps every digest it was given."""

    def __init__(self, root: Path, fail: int = 0) -> None:
        super().__init__(root, "bucket", "audit/prod")
        self.fail = fail
        self.stored: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()

    def store(self, key: str, body: bytes, content_type: str) -> None:
        if content_type == "application/json":
            with self.lock:
                self.stored.append((key, body))
                if self.fail:
                    self.fail -= 1
                    raise DeliveryError("bucket unreachable: connection refused")
        super().store(key, body, content_type)


def targets(sink: FlakyBucket) -> Any:
    return lambda row: [Target("oss", "bucket", sink)]


def verified(rt: Runtime, root: Path) -> trail_verify.Report:
    with rt.db.read() as conn:
        keys = [k.load() for k in signing_keys.listed(conn)]
    return trail_verify.verify(trail_verify.DirectoryObjects(root / "bucket"), keys)


def retry_now(rt: Runtime) -> None:
    with rt.db.transaction() as conn:
        conn.execute(update(trail_batches).values(next_attempt_ms=0))


def test_a_batch_whose_digest_failed_stores_the_same_digest_again(rt: Runtime, tmp_path: Path) -> None:
    account = new_account(rt)
    make_trail(rt, account, "digest-trail")
    sink = FlakyBucket(tmp_path, fail=1)
    d = Deliverer(rt, targets_for=targets(sink))
    first = [record(rt, account) for _ in range(3)]
    assert d.drain() is False  # the event file went, its digest did not: the batch waits for a retry
    second = [record(rt, account) for _ in range(2)]
    retry_now(rt)
    assert d.drain() is True
    keys = [k for k, _ in sink.stored]
    assert keys[0] == keys[1] and sink.stored[0][1] == sink.stored[1][1]  # the retry: the same object, same bytes
    docs = [json.loads(b) for _, b in sink.stored[1:]]
    assert [d["sequence"] for d in docs] == [0, 1]
    assert docs[1]["previousDigestKey"] == keys[0] and docs[1]["previousDigestSignature"] == docs[0]["signature"]
    listed = [json.loads(sink.stored[0][1])["logFiles"][0], docs[1]["logFiles"][0]]
    assert [f["eventCount"] for f in listed] == [len(first) + 1, len(second)]  # StartLogging is in the first
    report = verified(rt, tmp_path)
    assert report.problems == [] and report.digests == 2 and report.files == 2
    assert report.proven == report.events == len(first) + len(second) + 1


def test_parallel_deliverers_keep_one_chain(rt: Runtime, tmp_path: Path) -> None:
    account = new_account(rt)
    make_trail(rt, account, "busy-trail")
    sink = FlakyBucket(tmp_path)
    deliverers = [Deliverer(rt, workers=2, targets_for=targets(sink)) for _ in range(3)]
    for _ in range(6):
        for _event in range(3):
            record(rt, account)
        deliverers[0].form_due(force=True)
    threads = [threading.Thread(target=lambda d=d: [d.deliver_one() for _ in range(10)]) for d in deliverers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert deliverers[0].drain() is True
    with rt.db.read() as conn:
        sequences = sorted(conn.execute(select(trail_digests.c.sequence)).scalars())
    assert sequences == list(range(6))
    report = verified(rt, tmp_path)
    assert report.problems == [] and report.digests == 6 and report.proven == report.events == 6 * 3 + 1


def test_a_file_left_without_its_digest_is_reported(rt: Runtime, tmp_path: Path) -> None:
    """Until its retry stores the digest, a delivered file is in no digest: verify says so (and exits 1)."""
    account = new_account(rt)
    make_trail(rt, account, "half-trail")
    sink = FlakyBucket(tmp_path, fail=1)
    record(rt, account)
    assert Deliverer(rt, targets_for=targets(sink)).drain() is False
    report = verified(rt, tmp_path)
    assert report.digests == 0 and len(report.problems) == 1
    assert report.problems[0].endswith("in no digest: added (or its digest is still being written)")
    assert digests.is_digest_key(sink.stored[0][0])


def test_housekeeping_keeps_the_digest_of_a_batch_still_waiting(rt: Runtime, tmp_path: Path) -> None:
    account = new_account(rt)
    make_trail(rt, account, "slow-trail")
    sink = FlakyBucket(tmp_path, fail=1)
    d = Deliverer(rt, targets_for=targets(sink))
    record(rt, account)
    assert d.drain() is False
    clock.set_offset(3 * 24 * 3600)  # days of outage: the batch still waits, and so must its digest
    assert digests_purge(rt) == 0
    retry_now(rt)
    assert d.drain() is True
    assert sink.stored[0] == sink.stored[1]
    assert verified(rt, tmp_path).problems == []
    clock.set_offset(6 * 24 * 3600)
    assert digests_purge(rt) == 1  # delivered and old: the row goes, the chain's head stays
    record(rt, account)
    assert d.drain() is True
    assert [json.loads(b)["sequence"] for _, b in sink.stored] == [0, 0, 1]
    assert verified(rt, tmp_path).problems == []


def test_an_event_changed_in_the_database_before_delivery_is_caught_by_the_proof(rt: Runtime, tmp_path: Path) -> None:
    """The file and its digest agree (both were made from the edited row), but the log signed the event as it
    was recorded: the digest's inclusion proof does not hold for the delivered events."""
    account = new_account(rt)
    make_trail(rt, account, "edited-trail")
    victim = record(rt, account)
    sequencer.cover(rt, account, sign=True)  # in the log, as recorded
    with rt.db.transaction() as conn:
        body = json.loads(conn.execute(select(events.c.body).where(events.c.event_id == victim)).scalar_one())
        body["sourceIpAddress"] = "203.0.113.66"
        conn.execute(update(events).where(events.c.event_id == victim).values(body=json.dumps(body)))
    sink = FlakyBucket(tmp_path)
    assert Deliverer(rt, targets_for=targets(sink)).drain() is True
    report = verified(rt, tmp_path)
    (problem,) = report.problems
    assert "its events are not those of the account's signed log" in problem
    assert report.files == 1 and report.proven == 0

"""Historic delivery through the official ActionTrail SDK: a history job delivers the stored events of the
retention window to a new trail's bucket exactly once, next to its live delivery, with the JobStatus the SDK
reports; jobs run off the request path (in a separate `openims deliver` process here), one at a time per
account, once per trail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_ims20190815 import models as im
from sqlalchemy import select
from Tea.exceptions import TeaException

from openims.store.schema import events
from tests.e2e.test_delivery import directory_events
from tests.support import Account, Server, start_server

DEADLINE_S = 90


def _calls(acct: Account, tag: str) -> None:
    ims = acct.ims()
    upn = acct.upn(tag)
    ims.create_user(im.CreateUserRequest(user_principal_name=upn, display_name=tag))
    ims.get_user(im.GetUserRequest(user_principal_name=upn))
    with pytest.raises(TeaException):
        ims.get_user(im.GetUserRequest(user_principal_name=acct.upn("nobody")))


def _stored(server: Server, account_id: str) -> dict[str, dict[str, Any]]:
    with server.runtime.db.read() as conn:
        rows = conn.execute(
            select(events.c.event_id, events.c.body).where(events.c.account_id == account_id).order_by(events.c.seq)
        ).all()
    return {r.event_id: json.loads(r.body) for r in rows}


def _bucket(server: Server, acct: Account, bucket: str) -> Path:
    return server.data_dir / "buckets" / acct.account_id / bucket


def _job(acct: Account, job_id: int) -> at.GetDeliveryHistoryJobResponseBody:
    return acct.trail().get_delivery_history_job(at.GetDeliveryHistoryJobRequest(job_id=job_id)).body


def _wait(what: str, check: Any) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def test_a_history_job_fills_a_new_trail_exactly_once(acct: Account, server: Server) -> None:
    _calls(acct, "early")  # before the trail exists: only the history job can deliver these
    t = acct.trail()
    bucket = f"hist-{acct.alias}"
    t.create_trail(at.CreateTrailRequest(name="history-trail", oss_bucket_name=bucket, event_rw="All"))
    t.start_logging(at.StartLoggingRequest(name="history-trail"))
    _calls(acct, "live")  # the trail's live delivery sends these
    job_id = t.create_delivery_history_job(at.CreateDeliveryHistoryJobRequest(trail_name="history-trail")).body.job_id
    assert isinstance(job_id, int)
    _wait("the job to complete", lambda: _job(acct, job_id).job_status == 2)
    stop = t.stop_logging(at.StopLoggingRequest(name="history-trail")).body.request_id

    # The bucket holds every event of the account up to StopLogging, each exactly once: the window's from the
    # job, the rest from live delivery (the polling above included).
    stored = _stored(server, acct.account_id)
    ids = list(stored)
    last = next(i for i, e in enumerate(stored.values()) if e["requestId"] == stop)
    expected = {k: stored[k] for k in ids[: last + 1]}
    root = _bucket(server, acct, bucket)
    _wait("every event in the bucket", lambda: len(directory_events(root, "", settled=False)) >= len(expected))
    delivered = directory_events(root, "")
    counts = Counter(e["eventId"] for e in delivered)
    assert set(counts) == set(expected) and set(counts.values()) == {1}
    assert {"CreateTrail", "StartLogging", "CreateDeliveryHistoryJob", "StopLogging"} <= {
        e["eventName"] for e in delivered
    }

    job = _job(acct, job_id)
    assert (job.job_status, job.trail_name, job.home_region) == (2, "history-trail", "cn-hangzhou")
    assert [(s.region, s.status) for s in job.status] == [("cn-hangzhou", 2)]
    assert job.end_time and job.created_time and job.start_time < job.created_time
    listed = t.list_delivery_history_jobs(at.ListDeliveryHistoryJobsRequest()).body
    assert listed.total_count == 1 and [j.job_id for j in listed.delivery_history_jobs] == [job_id]
    assert listed.delivery_history_jobs[0].job_status == 2

    # Once per trail; an unknown trail is ActionTrail's own error.
    with pytest.raises(TeaException) as again:
        t.create_delivery_history_job(at.CreateDeliveryHistoryJobRequest(trail_name="history-trail"))
    assert (again.value.code, again.value.status_code) == ("EntityAlreadyExists.DeliveryHistoryJob", 409)
    with pytest.raises(TeaException) as missing:
        t.create_delivery_history_job(at.CreateDeliveryHistoryJobRequest(trail_name="no-such-trail"))
    assert (missing.value.code, missing.value.status_code) == ("TrailNotFoundException", 404)


@pytest.fixture(params=["sqlite", "postgresql"])
def quiet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server that runs no deliverer: jobs wait for `openims deliver`."""
    if request.param == "postgresql" and not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    srv, cleanup = start_server(tmp_path, request.param, {"OPENIMS_SERVE_DELIVERY": "false"})
    try:
        yield srv
    finally:
        cleanup()


def _deliver_once(server: Server) -> None:
    subprocess.run(
        [sys.executable, "-m", "openims", "--data-dir", str(server.data_dir), "deliver", "--once"],
        env=server.env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_jobs_run_off_the_request_path_one_at_a_time_and_resume(quiet: Server) -> None:
    acct = quiet.new_account()
    _calls(acct, "past")
    t = acct.trail()
    for name in ("first-trail", "second-trail"):
        t.create_trail(at.CreateTrailRequest(name=name, oss_bucket_name=f"{name}-{acct.alias}", event_rw="Write"))
    token = "3f1c2a9e-token"
    first = t.create_delivery_history_job(
        at.CreateDeliveryHistoryJobRequest(trail_name="first-trail", client_token=token)
    ).body.job_id
    # The same ClientToken is the same job; nothing runs it yet, so it is initializing.
    assert (
        t.create_delivery_history_job(
            at.CreateDeliveryHistoryJobRequest(trail_name="first-trail", client_token=token)
        ).body.job_id
        == first
    )
    assert _job(acct, first).job_status == 0
    with pytest.raises(TeaException) as busy:
        t.create_delivery_history_job(at.CreateDeliveryHistoryJobRequest(trail_name="second-trail"))
    assert (busy.value.code, busy.value.status_code) == ("Conflict.DeliveryHistoryJob.Running", 409)

    # Deleted before it ran: it is gone from the lists, and creating it again resumes the same job.
    t.delete_delivery_history_job(at.DeleteDeliveryHistoryJobRequest(job_id=first))
    with pytest.raises(TeaException) as gone:
        _job(acct, first)
    assert (gone.value.code, gone.value.status_code) == ("EntityNotExist.DeliveryHistoryJob", 404)
    assert t.list_delivery_history_jobs(at.ListDeliveryHistoryJobsRequest()).body.total_count == 0
    resumed = t.create_delivery_history_job(at.CreateDeliveryHistoryJobRequest(trail_name="first-trail"))
    assert resumed.body.job_id == first

    # Another process (`openims deliver`) runs it to the end; a second run finds nothing left to send.
    _deliver_once(quiet)
    assert _job(acct, first).job_status == 2
    root = _bucket(quiet, acct, f"first-trail-{acct.alias}")
    delivered = directory_events(root, "")
    stored = _stored(quiet, acct.account_id)
    # Exactly the Write events made before the job was first created (the trail's live delivery would begin there).
    ordered = list(stored.values())
    created = next(i for i, e in enumerate(ordered) if e["eventName"] == "CreateDeliveryHistoryJob")
    expected = {e["eventId"] for e in ordered[:created] if e["eventRW"] == "Write"}
    names = Counter(e["eventId"] for e in delivered)
    assert set(names) == expected and set(names.values()) == {1}
    assert {"CreateUser", "CreateTrail"} <= {e["eventName"] for e in delivered}
    _deliver_once(quiet)
    assert Counter(e["eventId"] for e in directory_events(root, "")) == names

    # The second trail was never started: its job covers everything up to its creation, then it is done.
    second = t.create_delivery_history_job(at.CreateDeliveryHistoryJobRequest(trail_name="second-trail")).body.job_id
    _deliver_once(quiet)
    listed = t.list_delivery_history_jobs(at.ListDeliveryHistoryJobsRequest(page_size=1)).body
    assert (listed.total_count, [j.job_id for j in listed.delivery_history_jobs]) == (2, [second])
    page2 = t.list_delivery_history_jobs(at.ListDeliveryHistoryJobsRequest(page_size=1, page_number=2)).body
    assert [(j.job_id, j.job_status) for j in page2.delivery_history_jobs] == [(first, 2)]

"""`openims serve --workers N`: N processes answer on one port; a worker that dies is replaced; the background
jobs run in exactly one of them and move to another when it dies; stopping (or killing) the supervisor stops
every worker."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alibabacloud_ims20190815 import models as m

from tests.conftest import backends
from tests.e2e.test_integrity import FAST, covered
from tests.support import Server, start_server


@pytest.fixture(params=backends())
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    if request.param == "postgresql" and not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    server, cleanup = start_server(tmp_path, request.param, {**FAST, "OPENIMS_WORKERS": "3"})
    try:
        yield server
    finally:
        cleanup()


def children(pid: int) -> set[int]:
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def wait_for(predicate, what: str, seconds: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while True:
        found = predicate()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def leaders(server: Server) -> list[int]:
    text = (server.data_dir.parent / f"server-{server.port}.log").read_text()
    return [int(pid) for pid in re.findall(r"process (\d+) leads", text)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_every_worker_answers_and_a_dead_one_is_replaced(workers: Server) -> None:
    assert workers.proc is not None
    first = wait_for(lambda: children(workers.proc.pid) if len(children(workers.proc.pid)) == 3 else None, "3 workers")
    acct = workers.new_account()
    ims = acct.ims()
    upn = acct.upn("alice")
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="Alice"))
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    now = wait_for(
        lambda: children(workers.proc.pid) if len(children(workers.proc.pid) - first) == 1 else None,
        "a replacement worker",
    )
    assert victim not in now and len(now) == 3
    # Calls on new connections, which the workers share: every one sees the same state.
    for _ in range(12):
        fresh = acct.ims()
        assert fresh.get_user(m.GetUserRequest(user_principal_name=upn)).body.user.display_name == "Alice"


def test_background_jobs_run_once_and_move_when_their_worker_dies(workers: Server) -> None:
    assert workers.proc is not None
    leader = wait_for(lambda: leaders(workers), "a leader")
    assert len(leader) == 1, "exactly one worker runs the background jobs"
    acct = workers.new_account()
    ims = acct.ims()
    ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("before"), display_name="b"))
    os.kill(leader[0], signal.SIGKILL)
    after = wait_for(lambda: leaders(workers) if len(leaders(workers)) == 2 else None, "a new leader")
    assert after[1] != leader[0] and after[1] in children(workers.proc.pid)
    ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("after"), display_name="a"))
    # The new leader's sequencer logs and signs what came after: the log covers every event and verifies.
    assert "intact" in covered(workers, acct)


def test_stopping_or_killing_the_supervisor_stops_every_worker(workers: Server) -> None:
    assert workers.proc is not None
    kids = wait_for(lambda: children(workers.proc.pid) if len(children(workers.proc.pid)) == 3 else None, "workers")
    workers.stop()
    assert workers.proc.returncode == 0
    assert not any(alive(pid) for pid in kids)
    workers.start()
    kids = wait_for(lambda: children(workers.proc.pid) if len(children(workers.proc.pid)) == 3 else None, "workers")
    workers.stop(kill=True)
    wait_for(lambda: not any(alive(pid) for pid in kids), "the workers to exit after the supervisor died")

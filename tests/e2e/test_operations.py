"""Operating the server: /healthz and /readyz (unauthenticated, never audited, not ready for a named reason),
/metrics (token on the API port, or a port of its own; counters with bounded labels), and one log line per
API request that never holds a secret."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_ims20190815 import models as m
from prometheus_client.parser import text_string_to_metric_families
from Tea.exceptions import TeaException

from openims import config
from openims.api.app import create_app
from openims.store.schema import events
from tests.conftest import backends
from tests.support import Server, fill, free_port, start_server, tmpfs_data_dir

TOKEN = "metrics-" + uuid.uuid4().hex
PASSWORD = "Op-" + uuid.uuid4().hex[:12] + "!x"


# --- helpers ------------------------------------------------------------------------------------------------


def _log(server: Server) -> str:
    return (server.data_dir.parent / f"server-{server.port}.log").read_text(errors="replace")


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _scrape(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return _samples(r.text)


def _ready(server: Server) -> tuple[int, dict[str, object]]:
    r = httpx.get(f"{server.url}/readyz")
    return r.status_code, r.json()


def _wait_ready(server: Server, want: int, timeout: float = 15.0) -> dict[str, object]:
    """The /readyz body once it answers `want` (the verdict is cached for a second or two)."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = _ready(server)
        if status == want or time.monotonic() > deadline:
            assert status == want, body
            return body
        time.sleep(0.3)


def _event_count(server: Server) -> int:
    with server.runtime.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())


@pytest.fixture(scope="module", params=backends())
def ops_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own with a metrics token and a metrics port, and no trail deliverer anywhere on its
    database (so queued trail events stay queued and their lag is measurable). It answers with three worker
    processes: each scrape, whichever worker answers it, counts the calls every worker answered."""
    if request.param == "postgresql" and not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    port = free_port()
    env = {
        "OPENIMS_METRICS_TOKEN": TOKEN,
        "OPENIMS_METRICS_PORT": str(port),
        "OPENIMS_SERVE_DELIVERY": "false",
        "OPENIMS_WORKERS": "3",
    }
    srv, cleanup = start_server(tmp_path_factory.mktemp("ops-" + request.param), request.param, env)
    try:
        yield srv
    finally:
        cleanup()


# --- health and readiness ---------------------------------------------------------------------------------------


def test_probes_answer_without_credentials_and_leave_no_event(server: Server) -> None:
    before = _event_count(server)
    alive = httpx.get(f"{server.url}/healthz")
    assert (alive.status_code, alive.json()) == (200, {"status": "alive"})
    for _ in range(3):
        assert _ready(server) == (200, {"status": "ready"})
    assert httpx.post(f"{server.url}/readyz").json()["Code"] == "UnsupportedHTTPMethod"
    assert _event_count(server) == before


def test_readyz_reports_low_free_space_by_its_reason_only(server: Server) -> None:
    with server.sibling(OPENIMS_READY_MIN_FREE_MB=str(1 << 40)) as other:  # more than any disk has
        status, body = _ready(other)
        assert (status, body) == (503, {"status": "not-ready", "reasons": ["low-disk-space"]})
        assert httpx.get(f"{other.url}/healthz").status_code == 200
    assert _ready(server)[0] == 200


def test_readyz_reports_a_deliverer_that_should_run_and_does_not(server: Server) -> None:
    with server.sibling(OPENIMS_DELIVERY_WORKERS="many") as other:  # the deliverer refuses to start
        assert _wait_ready(other, 503) == {"status": "not-ready", "reasons": ["delivery-not-running"]}
    with server.sibling(OPENIMS_DELIVERY_WORKERS="many", OPENIMS_SERVE_DELIVERY="false") as other:
        assert _ready(other) == (200, {"status": "ready"})  # not this process's job: `openims deliver` runs it


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    with tmpfs_data_dir(tmp_path, 32) as mount:
        yield mount


@pytest.mark.parametrize("backend", backends())
def test_readyz_follows_the_free_space_of_the_data_dir(tmp_path: Path, tmpfs: Path, backend: str) -> None:
    if backend == "postgresql" and not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    server, cleanup = start_server(tmp_path, backend, {"OPENIMS_READY_MIN_FREE_MB": "8"})
    try:
        assert _ready(server) == (200, {"status": "ready"})
        filler = fill(tmpfs, leave=4 << 20)  # below the threshold, but everything still writes
        assert _wait_ready(server, 503) == {"status": "not-ready", "reasons": ["low-disk-space"]}
        filler.unlink()
        assert _wait_ready(server, 200) == {"status": "ready"}
        log = _log(server)
        assert "not ready: low-disk-space" in log and "ready again" in log and "Traceback" not in log
    finally:
        cleanup()


def test_readyz_reports_a_sqlite_database_that_cannot_take_writes(tmp_path: Path, tmpfs: Path) -> None:
    server, cleanup = start_server(tmp_path, "sqlite", {"OPENIMS_READY_MIN_FREE_MB": "0"})
    try:
        assert _ready(server) == (200, {"status": "ready"})
        filler = fill(tmpfs)  # full: the probe's write fails, as every call's would
        body = _wait_ready(server, 503)
        assert body == {"status": "not-ready", "reasons": ["database-unwritable", "data-dir-unwritable"]}
        filler.unlink()
        assert _wait_ready(server, 200) == {"status": "ready"}
        assert "database or disk is full" in _log(server)  # the cause is in the log, not in the answer
    finally:
        cleanup()


def test_readyz_reports_an_unreachable_or_blocked_postgresql_database(tmp_path: Path) -> None:
    if not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    server, cleanup = start_server(tmp_path, "postgresql")
    url = sa.engine.make_url(config.normalize_database_url(server.database_url))
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def connections(allowed: bool) -> None:
        """Let sessions into the server's database, or end them and let none in (as if it were down)."""
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS {str(allowed).lower()}'))
            if not allowed:
                conn.execute(
                    sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"),
                    {"db": url.database},
                )

    try:
        assert _ready(server) == (200, {"status": "ready"})
        connections(False)
        try:
            assert _wait_ready(server, 503) == {"status": "not-ready", "reasons": ["database-unreachable"]}
        finally:
            connections(True)
        assert _wait_ready(server, 200) == {"status": "ready"}
        # Reachable, but no write gets through: another session holds what the probe writes (a stuck writer).
        blocker = sa.create_engine(url)
        try:
            with blocker.begin() as conn:
                conn.execute(sa.text("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE"))
                assert _wait_ready(server, 503) == {"status": "not-ready", "reasons": ["database-unwritable"]}
        finally:
            blocker.dispose()
        assert _wait_ready(server, 200) == {"status": "ready"}
    finally:
        admin.dispose()
        cleanup()


# --- metrics ------------------------------------------------------------------------------------------------


def test_metrics_is_not_served_without_a_setting(server: Server) -> None:
    r = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (r.status_code, r.json()["Code"]) == (404, "InvalidURI.NotFound")


def test_metrics_needs_the_token_on_the_api_port(ops_server: Server) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = httpx.get(f"{ops_server.url}/metrics", headers=headers)
        assert (r.status_code, r.json()["Code"]) == (401, "Unauthorized"), headers
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in r.text
    assert _value(_scrape(ops_server), "openims_events_written_total", rw="Write", outcome="success") >= 0


def test_metrics_count_requests_denials_and_signature_failures(ops_server: Server) -> None:
    acct = ops_server.new_account()
    ims = acct.ims()
    upn = acct.upn("nobody")
    before = _scrape(ops_server)
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="nobody"))
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    with pytest.raises(TeaException) as denied:  # a RAM user without policies
        acct.ims(key.access_key_id, key.access_key_secret).list_users(m.ListUsersRequest())
    assert denied.value.code == "NoPermission"
    with pytest.raises(TeaException) as forged:
        acct.ims(secret="not-the-secret").get_user(m.GetUserRequest(user_principal_name=upn))
    assert forged.value.code == "SignatureDoesNotMatch"
    acct.ims(v2=True).get_user(m.GetUserRequest(user_principal_name=upn))
    with pytest.raises(TeaException):
        acct.call("NoSuchAction" + uuid.uuid4().hex[:8])
    after = _scrape(ops_server)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    requests = "openims_api_requests_total"
    assert grew(requests, action="CreateUser", result="Success", signature="v3") == 1
    assert grew(requests, action="ListUsers", result="NoPermission", signature="v3") == 1
    assert grew(requests, action="GetUser", result="SignatureDoesNotMatch", signature="v3") == 1
    assert grew(requests, action="GetUser", result="Success", signature="v2") == 1
    assert grew(requests, action="Unknown", result="InvalidAction.NotFound", signature="v3") == 1
    assert grew("openims_denials_total", action="ListUsers") == 1
    assert grew("openims_signature_failures_total", code="SignatureDoesNotMatch") == 1
    assert grew("openims_api_request_duration_seconds_count", action="CreateUser") == 1
    # CreateUser, CreateAccessKey; ListUsers (denied); GetUser (bad signature, audited in the key's account),
    # GetUser (v2); the unknown action.
    assert grew("openims_events_written_total", rw="Write", outcome="success") == 2
    assert grew("openims_events_written_total", rw="Read", outcome="failure") == 2
    assert grew("openims_events_written_total", rw="Read", outcome="success") == 1
    assert grew("openims_events_written_total", rw="Write", outcome="failure") == 1
    assert not any(name == requests and dict(labels)["action"].startswith("NoSuchAction") for name, labels in after)


def test_the_metrics_port_serves_without_a_token(ops_server: Server) -> None:
    port = ops_server.env["OPENIMS_METRICS_PORT"]
    acct = ops_server.new_account()
    acct.ims().get_default_domain()
    r = httpx.get(f"http://127.0.0.1:{port}/metrics")
    assert r.status_code == 200
    assert _value(
        _samples(r.text), "openims_api_requests_total", action="GetDefaultDomain", result="Success", signature="v3"
    )


def test_trail_backlog_is_measured_at_scrape_time(ops_server: Server) -> None:
    acct = ops_server.new_account()
    trail = acct.trail()
    trail.create_trail(at.CreateTrailRequest(name="ops-trail", oss_bucket_name="ops-" + acct.alias, event_rw="All"))
    trail.start_logging(at.StartLoggingRequest(name="ops-trail"))
    for _ in range(3):
        acct.ims().get_default_domain()
    time.sleep(1.1)  # so the oldest queued event is measurably old
    samples = _scrape(ops_server)
    labels = {"account": acct.account_id, "trail": "ops-trail"}
    # No deliverer runs on this database: StartLogging's own event and the three reads wait in the outbox.
    assert _value(samples, "openims_trail_outbox_depth", **labels) == 4
    assert _value(samples, "openims_trail_delivery_lag_seconds", **labels) >= 1.0


def test_console_signin_lockouts_are_counted(ops_server: Server) -> None:
    acct = ops_server.new_account()
    ims = acct.ims()
    ims.set_password_policy(m.SetPasswordPolicyRequest(max_login_attemps=2))
    upn = acct.upn("locked")
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="locked"))
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=PASSWORD))
    before = _scrape(ops_server)
    client = httpx.Client(base_url=ops_server.url, follow_redirects=False)
    for _ in range(3):  # the second wrong password locks; the third attempt is refused as locked
        form = client.get("/console/signin").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token
        refused = client.post("/console/signin", data={"login": upn, "password": "wrong", "csrf_token": token[1]})
        assert refused.status_code == 401
    after = _scrape(ops_server)
    name = "openims_console_signin_lockouts_total"
    assert _value(after, name, identity="ram-user") - _value(before, name, identity="ram-user") == 1
    assert _value(after, name, identity="root") == _value(before, name, identity="root")


# --- the request log ----------------------------------------------------------------------------------------


def test_each_request_logs_one_line_without_secrets(ops_server: Server) -> None:
    acct = ops_server.new_account()
    ims = acct.ims()
    upn = acct.upn("logged")
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="logged"))
    rid = ims.create_login_profile(
        m.CreateLoginProfileRequest(user_principal_name=upn, password=PASSWORD, password_reset_required=False)
    ).body.request_id
    with pytest.raises(TeaException) as refused:
        acct.ims(v2=True).create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=PASSWORD))
    log = _log(ops_server)
    lines = [line for line in log.splitlines() if f"request={rid}" in line]
    assert len(lines) == 1, lines
    assert " INFO openims.api: CreateLoginProfile 200 Success " in lines[0]
    assert f" ms key={acct.key_id} ip=127.0.0.1 request={rid}" in lines[0]
    failed = [line for line in log.splitlines() if f"request={refused.value.request_id}" in line]
    assert len(failed) == 1 and f"CreateLoginProfile 409 {refused.value.code} " in failed[0]
    assert PASSWORD not in log and "Password=" not in log


def test_the_log_line_carries_its_fields_as_extra(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    """The fields a JSON log format writes, on the record itself (the app runs in this process here)."""
    acct = server.new_account()
    app = create_app(server.runtime)

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://openims") as client:
            return await client.get(
                "/", params={"Action": "GetUser", "Version": "2019-08-15", "AccessKeyId": acct.key_id}
            )

    try:
        with caplog.at_level(logging.INFO, "openims.api"):
            r = asyncio.run(get())
    finally:
        app.state.ops.close()
    assert r.status_code == 400 and r.json()["Code"] == "IncompleteSignature"
    (record,) = [rec for rec in caplog.records if rec.name == "openims.api" and "request=" in rec.getMessage()]
    fields = {
        k: getattr(record, k)
        for k in ("request_id", "action", "version", "principal", "result", "status", "duration_ms", "source_ip")
    }
    assert fields["duration_ms"] >= 0
    assert {**fields, "duration_ms": 0} == {
        "request_id": r.json()["RequestId"],
        "action": "GetUser",
        "version": "2019-08-15",
        "principal": acct.key_id,
        "result": "IncompleteSignature",
        "status": 400,
        "duration_ms": 0,
        "source_ip": "203.0.113.9",
    }

"""Delivery survives faults without losing or duplicating objects: an S3 outage under load (GetTrailStatus shows
the error meanwhile), and `openims serve` killed with SIGKILL in the middle of a delivery burst."""

from __future__ import annotations

import http.client
import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_ims20190815 import models as im
from moto.server import ThreadedMotoServer
from sqlalchemy import select

from openims import clock
from openims.store.tables.trails import trail_batches
from tests.e2e.test_delivery import (
    S3_KEY_ID,
    S3_SECRET,
    assert_exactly,
    bucket_events,
    configure,
    delivery_env,
    event_id_of,
    make_pki,
    own_server,
    s3_client,
    stored_events,
    wait_for,
)
from tests.e2e.test_trail_digests import openims
from tests.support import Account, Server, free_port

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def fserver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    pki = make_pki(tmp_path)
    srv, cleanup = own_server(request, tmp_path / "srv", delivery_env(pki, OPENIMS_DELIVERY_MAX_BACKOFF_SECONDS="4"))
    try:
        yield srv
    finally:
        cleanup()


class Moto:
    """A moto S3 server on a fixed loopback port that can be stopped and started again (its data lives on)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: ThreadedMotoServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def moto() -> Iterator[Moto]:
    m = Moto()
    m.start()
    yield m
    m.stop()


class SlowProxy:
    """An HTTP proxy in front of moto that holds each object upload for `delay` seconds before forwarding it, so a
    kill can land while a delivery is in flight; the upload still completes, as a slow network would let it."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.inflight = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upload = self.command == "PUT" and "/AliyunLogs/" in self.path
                if upload:
                    with proxy.lock:
                        proxy.inflight += 1
                    time.sleep(delay)
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", target_port, timeout=30)
                    conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                    response = conn.getresponse()
                    data = response.read()
                    self.send_response(response.status)
                    for name, value in response.getheaders():
                        if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the deliverer was killed while waiting
                finally:
                    if upload:
                        with proxy.lock:
                            proxy.inflight -= 1

            do_PUT = do_GET = do_POST = do_HEAD = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Load:
    """Threads making API calls (writes and reads) until stopped; errors while the server is down are expected."""

    def __init__(self, acct: Account, threads: int = 4) -> None:
        self.acct = acct
        self.stop = threading.Event()
        self.ok = 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        ims = self.acct.ims()
        while not self.stop.is_set():
            try:
                upn = self.acct.upn("load" + uuid.uuid4().hex[:8])
                ims.create_user(im.CreateUserRequest(user_principal_name=upn, display_name="load"))
                ims.get_user(im.GetUserRequest(user_principal_name=upn))
                # Deleted users leave the account's 1,000-user quota, so the load can run as long as it must.
                ims.delete_user(im.DeleteUserRequest(user_principal_name=upn))
                self.ok += 3
            except Exception:  # noqa: BLE001  (any failure while the server is down)
                self.stop.wait(0.05)

    def __enter__(self) -> Self:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def s3_trail(acct: Account, moto: Moto, name: str, event_rw: str, via: str | None = None) -> tuple[Any, str, str]:
    """A bucket in moto and a logging trail delivering to it (through `via` if given); returns (S3 client, bucket,
    StartLogging request ID)."""
    client = s3_client(moto.endpoint)
    bucket = f"{name}-{acct.alias}"
    client.create_bucket(Bucket=bucket)
    configure(
        acct.server,
        "oss-buckets.json",
        bucket,
        {
            "endpoint_url": via or moto.endpoint,
            "access_key_id": S3_KEY_ID,
            "secret_access_key": S3_SECRET,
            "region": "us-east-1",
        },
    )
    t = acct.trail()
    t.create_trail(at.CreateTrailRequest(name=name, oss_bucket_name=bucket, oss_key_prefix="faults", event_rw=event_rw))
    return client, bucket, t.start_logging(at.StartLoggingRequest(name=name)).body.request_id


def test_an_s3_outage_under_load_loses_nothing(fserver: Server, moto: Moto) -> None:
    acct = fserver.new_account()
    t = acct.trail()
    client, bucket, start = s3_trail(acct, moto, "outage-trail", "All")
    with Load(acct) as load:
        wait_for("some deliveries before the outage", lambda: len(bucket_events(client, bucket, "faults")) > 0)
        moto.stop()
        seen: list[Any] = []

        def error_shown() -> bool:
            status = t.get_trail_status(at.GetTrailStatusRequest(name="outage-trail")).body
            if status.oss_bucket_status is False and status.latest_delivery_error:
                seen.append(status)
            return bool(seen)

        wait_for("GetTrailStatus to show the outage", error_shown)
        during = load.ok
        wait_for("more calls during the outage", lambda: load.ok > during + 1000)
        moto.start()
        after = load.ok
        wait_for("more calls after the outage", lambda: load.ok > after + 200)
    last = t.stop_logging(at.StopLoggingRequest(name="outage-trail")).body.request_id
    assert "S3 delivery to bucket" in seen[0].latest_delivery_error and S3_SECRET not in seen[0].latest_delivery_error

    expected = stored_events(fserver, acct.account_id, event_id_of(fserver, start), event_id_of(fserver, last))
    assert len(expected) > 1200
    wait_for(
        "every event in the bucket", lambda: len(bucket_events(client, bucket, "faults")) >= len(expected), timeout=180
    )
    assert_exactly(bucket_events(client, bucket, "faults"), expected)
    status = t.get_trail_status(at.GetTrailStatusRequest(name="outage-trail")).body
    assert status.oss_bucket_status is True and status.latest_delivery_time >= seen[0].latest_delivery_time


def test_sigkill_mid_burst_delivers_every_event_exactly_once(fserver: Server, moto: Moto) -> None:
    acct = fserver.new_account()
    proxy = SlowProxy(moto.port, delay=1.5)
    client, bucket, start = s3_trail(acct, moto, "killed-trail", "Write", via=proxy.endpoint)
    try:
        with Load(acct, threads=6) as load:
            wait_for(
                "a delivery burst under way, with an upload in flight",
                lambda: len(bucket_events(client, bucket, "faults")) >= 2 and proxy.inflight > 0,
            )
            fserver.stop(kill=True)
            with fserver.runtime.db.read() as conn:
                in_flight = list(
                    conn.execute(
                        select(trail_batches.c.id).where(
                            trail_batches.c.delivered_ms.is_(None), trail_batches.c.lease_until_ms > clock.now_ms()
                        )
                    ).scalars()
                )
            assert in_flight  # the killed server held at least one batch it was delivering
            before_restart = load.ok
            fserver.start()
            wait_for("more calls after the restart", lambda: load.ok > before_restart + 300)
        last = acct.trail().stop_logging(at.StopLoggingRequest(name="killed-trail")).body.request_id

        expected = stored_events(
            fserver, acct.account_id, event_id_of(fserver, start), event_id_of(fserver, last), "Write"
        )

        def redelivered() -> bool:
            with fserver.runtime.db.read() as conn:
                rows = conn.execute(select(trail_batches.c.delivered_ms).where(trail_batches.c.id.in_(in_flight))).all()
            return len(rows) == len(in_flight) and all(r.delivered_ms for r in rows)

        # Batches leased by the killed server wait for their lease (30 s) to lapse; another deliverer then takes
        # them and writes them again, under the same keys.
        wait_for("the killed server's batches to be delivered again", redelivered, timeout=180)
        wait_for(
            "every event in the bucket",
            lambda: len(bucket_events(client, bucket, "faults")) >= len(expected),
            timeout=180,
        )
        assert_exactly(bucket_events(client, bucket, "faults"), expected)
        status = acct.call("GetTrailStatus", {"Name": "killed-trail"}, version="2020-07-06")
        assert status["PendingEvents"] == 0
        # The batches delivered twice stored their digests twice too, the same bytes under the same keys: the
        # chain holds, and every event file is in it.
        keys = openims(fserver, "integrity", "public-key")
        (fserver.data_dir.parent / "pub.pem").write_text(keys.stdout)
        pub = str(fserver.data_dir.parent / "pub.pem")
        # Credentials from the bucket's entry in the data dir, but straight to S3 rather than through the slow proxy.
        checked = openims(
            fserver, "trail", "verify", "--bucket", bucket, "--endpoint-url", moto.endpoint, "--public-key", pub
        )
        assert checked.returncode == 0 and "intact" in checked.stdout, checked.stdout + checked.stderr
    finally:
        proxy.close()

"""Trail delivery end to end: `openims serve` delivers every event a trail wants to a real S3 server (moto, over
HTTP), to the directory default, to syslog over TCP and TLS, to an HTTPS webhook checking signatures, and to a
local endpoint decoding what the official SLS SDK sends; `openims deliver` does the same on its own."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import hmac
import http.server
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_ims20190815 import models as im
from sqlalchemy import select
from Tea.exceptions import TeaException

from openims.integrity import digests
from openims.integrity.canonical import canonical_event
from openims.integrity.merkle import leaf_hash
from openims.store.schema import events
from openims.store.tables.integrity import log_leaves
from tests.sink_support import SYSLOG_HEADER, Pki, decode_put_logs_body, make_pki, moto_s3, parse_octet_counted
from tests.support import Account, Server, start_server

VERSION = "2020-07-06"
S3_KEY_ID, S3_SECRET = "LTAI5tS3TestKey000000000", "s3-secret-never-in-events-0123456789"
SLS_KEY_ID, SLS_SECRET = "LTAI5tSlsTestKey00000000", "sls-secret-never-in-events-012345678"
HOOK_SECRET = "webhook-secret-0123456789-abcdef"
KEY_NAME = re.compile(
    r"^(?P<dir>.*/)?Actiontrail_cn-hangzhou_(?P<ts>\d{14})_1002_(?P<count>\d+)_(?P<size>\d+)_"
    r"(?P<md5>[0-9a-f]{32})\.gz$"
)
DEADLINE_S = 90


# --- fixtures: TLS material, S3, a server with the test CA trusted ------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )


def delivery_env(pki: Pki, **extra: str) -> dict[str, str]:
    # The syslog and webhook receivers of these tests listen on loopback, which a trail may reach only when the
    # operator allows it.
    return {
        "OPENIMS_DELIVERY_CA_FILE": str(pki.ca_file),
        "OPENIMS_DELIVERY_MAX_BACKOFF_SECONDS": "2",
        "OPENIMS_EGRESS_ALLOW": "127.0.0.1",
        **extra,
    }


def own_server(request: pytest.FixtureRequest, tmp: Path, env: dict[str, str]) -> tuple[Server, Callable[[], None]]:
    """An `openims serve` of this module's own (on the parametrized backend), with extra environment."""
    backend = request.param
    if backend == "postgresql" and not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    return start_server(tmp, backend, env)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dserver(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Server]:
    srv, cleanup = own_server(request, tmp_path_factory.mktemp(f"delivery-{request.param}"), delivery_env(pki))
    try:
        yield srv
    finally:
        cleanup()


@pytest.fixture
def dacct(dserver: Server) -> Account:
    return dserver.new_account()


# --- helpers --------------------------------------------------------------------------------------------------------


def configure(server: Server, file: str, name: str, entry: dict[str, str]) -> None:
    """Add an entry to a data-dir delivery settings file (read again by the server when it changes)."""
    path = server.data_dir / file
    current = json.loads(path.read_text()) if path.exists() else {}
    current[name] = entry
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current))
    os.replace(tmp, path)


def stored_events(
    server: Server, account_id: str, after_event_id: str, until_event_id: str | None = None, rw: str = "All"
) -> dict[str, dict[str, Any]]:
    """The account's events from one event on (through another, if given) in commit order, by eventId."""
    with server.runtime.db.read() as conn:
        rows = conn.execute(
            select(events.c.event_id, events.c.event_rw, events.c.body)
            .where(events.c.account_id == account_id)
            .order_by(events.c.seq)
        ).all()
    ids = [r.event_id for r in rows]
    start = ids.index(after_event_id)
    end = ids.index(until_event_id) + 1 if until_event_id else len(rows)
    return {r.event_id: json.loads(r.body) for r in rows[start:end] if rw == "All" or r.event_rw == rw}


def event_id_of(server: Server, request_id: str) -> str:
    with server.runtime.db.read() as conn:
        for event_id, body in conn.execute(select(events.c.event_id, events.c.body).order_by(events.c.seq.desc())):
            if json.loads(body)["requestId"] == request_id:
                return event_id
    raise AssertionError(f"no event for {request_id}")


def wait_for(what: str, check: Callable[[], bool], timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def recorded_status(dacct: Account, name: str, recorded: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """GetTrailStatus once the deliverer has recorded its last send: it records a batch after the target took it,
    so a receiver can see the events a moment before the status shows them."""
    found: dict[str, Any] = {}

    def check() -> bool:
        found.update(dacct.call("GetTrailStatus", {"Name": name}, version=VERSION))
        return recorded(found)

    wait_for(f"{name}'s delivery to show in GetTrailStatus", check)
    return found


def check_log_file(key: str, body: bytes, prefix: str) -> list[dict[str, Any]]:
    """The object follows ActionTrail's layout and its name describes its gzip JSON body; returns its events."""
    match = KEY_NAME.match(key)
    assert match, key
    found = json.loads(gzip.decompress(body))
    first = dt.datetime.strptime(found[0]["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
    folder = f"AliyunLogs/Actiontrail/cn-hangzhou/{first:%Y/%m/%d}/"
    assert match["dir"] == (f"{prefix}/" if prefix else "") + folder
    assert match["ts"] == f"{first:%Y%m%d%H%M%S}"
    assert int(match["count"]) == len(found) and int(match["size"]) == len(body)
    assert match["md5"] == hashlib.md5(body).hexdigest()
    return found


def bucket_events(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            if digests.is_digest_key(obj["Key"]):  # the trail's digest files: test_trail_digests.py
                continue
            found += check_log_file(obj["Key"], client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read(), prefix)
    return found


def directory_events(root: Path, prefix: str, settled: bool = True) -> list[dict[str, Any]]:
    """The events in a bucket directory. While deliverers still write, a file being written (a `.tmp-` file
    before its atomic rename) is skipped; once `settled`, none may be left behind."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            # The trail's digest files (test_trail_digests.py), each written just after its event file.
            if digests.FOLDER in path.relative_to(root).parts:
                continue
            if path.name.startswith(".tmp-"):
                assert not settled, path
                continue
            found += check_log_file(path.relative_to(root).as_posix(), path.read_bytes(), prefix)
    return found


def assert_exactly(delivered: list[dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    counts = Counter(e["eventId"] for e in delivered)
    assert set(counts) == set(expected), (len(counts), len(expected))
    assert set(counts.values()) == {1}
    for event in delivered:
        assert event == expected[event["eventId"]]


def assert_leaves(server: Server, account_id: str, records: list[tuple[dict[str, Any], int, str]]) -> None:
    """Each record names its event's place in the tamper-evident log: the leaf index the log gave it, and the
    leaf hash an auditor recomputes from the event itself (docs/integrity.md)."""
    with server.runtime.db.read() as conn:
        stored = dict(
            conn.execute(
                select(log_leaves.c.event_id, log_leaves.c.leaf_index).where(log_leaves.c.account_id == account_id)
            ).all()
        )
    assert records
    for event, index, leaf in records:
        assert index == stored[event["eventId"]]
        assert base64.b64decode(leaf) == leaf_hash(canonical_event(event))


def some_calls(acct: Account, tag: str) -> None:
    """Reads and writes, successes and failures."""
    ims = acct.ims()
    upn = acct.upn(f"{tag}user")
    ims.create_user(im.CreateUserRequest(user_principal_name=upn, display_name=tag))
    ims.get_user(im.GetUserRequest(user_principal_name=upn))
    ims.list_users(im.ListUsersRequest())
    for call in (
        lambda: ims.create_user(im.CreateUserRequest(user_principal_name=upn, display_name=tag)),
        lambda: ims.get_user(im.GetUserRequest(user_principal_name=acct.upn("nobody"))),
    ):
        with pytest.raises(TeaException):
            call()
    ims.update_user(im.UpdateUserRequest(user_principal_name=upn, new_display_name=tag + "2"))


# --- S3 and the directory default -------------------------------------------------------------------------------


def test_s3_delivery_layout_content_and_event_rw_filter(dacct: Account, s3: str) -> None:
    server, t = dacct.server, dacct.trail()
    client = s3_client(s3)
    writes, reads = f"w-{dacct.alias}", f"r-{dacct.alias}"
    for bucket in (writes, reads):
        client.create_bucket(Bucket=bucket)
        configure(
            server,
            "oss-buckets.json",
            bucket,
            {"endpoint_url": s3, "access_key_id": S3_KEY_ID, "secret_access_key": S3_SECRET, "region": "us-east-1"},
        )
    some_calls(dacct, "before")  # no trail is logging yet
    t.create_trail(at.CreateTrailRequest(name="writes-trail", oss_bucket_name=writes, oss_key_prefix="trails/prod"))
    t.create_trail(at.CreateTrailRequest(name="reads-trail", oss_bucket_name=reads, event_rw="Read"))
    start_w = t.start_logging(at.StartLoggingRequest(name="writes-trail")).body.request_id
    start_r = t.start_logging(at.StartLoggingRequest(name="reads-trail")).body.request_id
    some_calls(dacct, "during")
    stop_w = t.stop_logging(at.StopLoggingRequest(name="writes-trail")).body.request_id
    some_calls(dacct, "after")

    expected_w = stored_events(
        server, dacct.account_id, event_id_of(server, start_w), event_id_of(server, stop_w), "Write"
    )
    assert [e["eventName"] for e in expected_w.values()][:2] == ["StartLogging", "StartLogging"]
    assert list(expected_w.values())[-1]["eventName"] == "StopLogging"
    wait_for(
        "the write trail's events in S3", lambda: len(bucket_events(client, writes, "trails/prod")) >= len(expected_w)
    )
    assert_exactly(bucket_events(client, writes, "trails/prod"), expected_w)

    def reads_done() -> bool:
        expected = stored_events(server, dacct.account_id, event_id_of(server, start_r), rw="Read")
        return {e["eventId"] for e in bucket_events(client, reads, "")} == set(expected)

    wait_for("the read trail's events in S3", reads_done)
    expected_r = stored_events(server, dacct.account_id, event_id_of(server, start_r), rw="Read")
    assert_exactly(bucket_events(client, reads, ""), expected_r)
    assert {e["eventRW"] for e in expected_r.values()} == {"Read"}
    assert {"GetUser", "ListUsers"} <= {e["eventName"] for e in expected_r.values()}
    assert any(e.get("errorCode") == "EntityNotExist.User" for e in expected_r.values())

    recorded_status(dacct, "writes-trail", lambda s: bool(s["LatestDeliveryTime"]))
    status = t.get_trail_status(at.GetTrailStatusRequest(name="writes-trail")).body
    assert status.is_logging is False and status.latest_delivery_time and status.latest_delivery_error == ""
    assert status.oss_bucket_status is True and status.sls_log_store_status is False
    raw = recorded_status(dacct, "reads-trail", lambda s: bool(s["LatestDeliveryTime"]))
    assert [(x["Target"], x["Status"]) for x in raw["Targets"]] == [("oss", "OK")]
    log = (server.data_dir.parent / f"server-{server.port}.log").read_text(errors="replace")
    assert S3_SECRET not in log and all(S3_SECRET not in json.dumps(e) for e in expected_r.values())


def test_directory_default_has_the_bucket_layout(dacct: Account) -> None:
    server, t = dacct.server, dacct.trail()
    bucket = f"dir-{dacct.alias}"
    t.create_trail(
        at.CreateTrailRequest(name="local-trail", oss_bucket_name=bucket, oss_key_prefix="audit/ims", event_rw="All")
    )
    start = t.start_logging(at.StartLoggingRequest(name="local-trail")).body.request_id
    some_calls(dacct, "dir")
    last = t.stop_logging(at.StopLoggingRequest(name="local-trail")).body.request_id
    expected = stored_events(server, dacct.account_id, event_id_of(server, start), event_id_of(server, last))
    root = server.data_dir / "buckets" / dacct.account_id / bucket  # per account: see test_trail_tenancy.py
    wait_for(
        "the events in the bucket directory",
        lambda: root.exists() and len(directory_events(root, "audit/ims", settled=False)) >= len(expected),
    )
    assert_exactly(directory_events(root, "audit/ims"), expected)
    assert {"Read", "Write"} == {e["eventRW"] for e in expected.values()}


# --- syslog -------------------------------------------------------------------------------------------------------


@dataclass
class SyslogListener:
    port: int
    frames: list[bytes] = field(default_factory=list)
    leaves: list[tuple[dict[str, Any], int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[dict[str, Any]]:
        """The events received, each checked against its message's header; their leaves go to `leaves`."""
        found: list[dict[str, Any]] = []
        leaves: list[tuple[dict[str, Any], int, str]] = []
        with self.lock:
            frames = list(self.frames)
        for frame in frames:
            m = SYSLOG_HEADER.match(frame)
            assert m, frame[:80]
            event = json.loads(m["msg"].decode("utf-8"))
            assert m["msgid"].decode() == event["eventName"] and m["ts"].decode() == event["eventTime"]
            assert m["app"] == b"openims" and int(m["pri"]) == 80 + (5 if event["eventRW"] == "Write" else 6)
            leaf = re.fullmatch(rb'\[log@32473 leafIndex="(\d+)" leafHash="([A-Za-z0-9+/=]+)"\]', m["sd"])
            assert leaf, m["sd"]
            leaves.append((event, int(leaf[1]), leaf[2].decode()))
            found.append(event)
        self.leaves = leaves
        return found


@pytest.fixture(params=[False, True], ids=["tcp", "tls"])
def syslog(request: pytest.FixtureRequest, pki: Pki) -> Iterator[tuple[SyslogListener, bool]]:
    """A TCP (or TLS) syslog receiver accepting any number of connections, each read to EOF."""
    tls = request.param
    listener = socket.create_server(("127.0.0.1", 0))
    state = SyslogListener(listener.getsockname()[1])
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        try:
            if tls:
                conn = pki.server_context.wrap_socket(conn, server_side=True)
            chunks = []
            conn.settimeout(30)
            while chunk := conn.recv(65536):
                chunks.append(chunk)
            with state.lock:
                state.frames += parse_octet_counted(b"".join(chunks))
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed at teardown
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield state, tls
    stop.set()
    thread.join()
    listener.close()


def test_syslog_receives_every_event(dacct: Account, syslog: tuple[SyslogListener, bool]) -> None:
    listener, tls = syslog
    server = dacct.server
    params = {"Name": "syslog-trail", "SyslogAddress": f"127.0.0.1:{listener.port}", "EventRW": "All"}
    if tls:
        params["SyslogTls"] = "true"
    dacct.call("CreateTrail", params, version=VERSION)
    start = dacct.call("StartLogging", {"Name": "syslog-trail"}, version=VERSION)["RequestId"]
    some_calls(dacct, "syslog")
    last = dacct.call("StopLogging", {"Name": "syslog-trail"}, version=VERSION)["RequestId"]
    expected = stored_events(server, dacct.account_id, event_id_of(server, start), event_id_of(server, last))
    wait_for("the events at the syslog receiver", lambda: len(listener.events()) >= len(expected))
    assert_exactly(listener.events(), expected)
    assert_leaves(server, dacct.account_id, listener.leaves)
    status = recorded_status(dacct, "syslog-trail", lambda s: bool(s["LatestDeliveryTime"]))
    assert [t["Status"] for t in status["Targets"]] == ["OK"] and status["LatestDeliveryError"] == ""


# --- webhook ------------------------------------------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    url: str
    batches: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    rejected: int = 0


@pytest.fixture
def webhook(pki: Pki) -> Iterator[WebhookReceiver]:
    """An HTTPS endpoint accepting a POST only when its HMAC-SHA256 signature is right and fresh."""
    state = WebhookReceiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ts, batch_id = self.headers["X-OpenIMS-Timestamp"], self.headers["X-OpenIMS-Batch-Id"]
            expected = (
                "sha256="
                + hmac.new(HOOK_SECRET.encode(), f"{ts}.{batch_id}.".encode() + body, hashlib.sha256).hexdigest()
            )
            if (
                not hmac.compare_digest(expected, self.headers["X-OpenIMS-Signature"])
                or abs(time.time() - int(ts)) > 300
            ):
                state.rejected += 1
                self.send_response(401)
                self.end_headers()
                return
            state.batches.append((batch_id, [json.loads(line) for line in body.decode().splitlines()]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = pki.server_context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state.url = f"https://127.0.0.1:{httpd.server_address[1]}/hooks/openims"
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_webhook_receives_signed_batches(dacct: Account, webhook: WebhookReceiver) -> None:
    server = dacct.server
    dacct.call(
        "CreateTrail", {"Name": "hook-trail", "WebhookUrl": webhook.url, "WebhookSecret": HOOK_SECRET}, version=VERSION
    )
    start = dacct.call("StartLogging", {"Name": "hook-trail"}, version=VERSION)["RequestId"]
    some_calls(dacct, "hook")
    last = dacct.call("StopLogging", {"Name": "hook-trail"}, version=VERSION)["RequestId"]
    expected = stored_events(server, dacct.account_id, event_id_of(server, start), event_id_of(server, last), "Write")
    wait_for("the events at the webhook", lambda: sum(len(b) for _, b in webhook.batches) >= len(expected))
    lines = [e for _, b in webhook.batches for e in b]
    leaves = [(e, e["openimsLog"]["leafIndex"], e["openimsLog"]["leafHash"]) for e in lines]
    assert_exactly([{k: v for k, v in e.items() if k != "openimsLog"} for e in lines], expected)
    assert_leaves(
        server, dacct.account_id, [({k: v for k, v in e.items() if k != "openimsLog"}, i, h) for e, i, h in leaves]
    )
    assert webhook.rejected == 0
    assert all(re.fullmatch(r"hook-trail-\d+-\d+", batch_id) for batch_id, _ in webhook.batches)
    assert len({batch_id for batch_id, _ in webhook.batches}) == len(webhook.batches)


# --- SLS ----------------------------------------------------------------------------------------------------------


@dataclass
class SlsEndpoint:
    endpoint: str
    requests: list[tuple[str, str, Any]] = field(default_factory=list)  # (path, Host, LogGroup)


@pytest.fixture
def sls() -> Iterator[SlsEndpoint]:
    state = SlsEndpoint(endpoint="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            assert self.headers["Authorization"].startswith(f"LOG {SLS_KEY_ID}:")
            state.requests.append((self.path, self.headers["Host"], decode_put_logs_body(self.headers, body)))
            self.send_response(200)
            self.send_header("x-log-requestid", "LOCAL")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state.endpoint = f"127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_sls_waits_for_its_endpoint_then_receives_every_event(dacct: Account, sls: SlsEndpoint) -> None:
    server, t = dacct.server, dacct.trail()
    project = f"p-{dacct.alias}"
    arn = f"acs:log:cn-hangzhou:{dacct.account_id}:project/{project}"
    t.create_trail(at.CreateTrailRequest(name="sls-trail", sls_project_arn=arn, event_rw="All"))
    start = t.start_logging(at.StartLoggingRequest(name="sls-trail")).body.request_id
    some_calls(dacct, "sls")

    def failing() -> bool:
        status = t.get_trail_status(at.GetTrailStatusRequest(name="sls-trail")).body
        return "no endpoint is configured" in status.latest_delivery_log_service_error

    wait_for("the missing SLS endpoint to show in GetTrailStatus", failing)
    status = t.get_trail_status(at.GetTrailStatusRequest(name="sls-trail")).body
    assert status.sls_log_store_status is False and status.latest_delivery_log_service_time == ""

    configure(
        server,
        "sls-projects.json",
        project,
        {"endpoint": sls.endpoint, "access_key_id": SLS_KEY_ID, "access_key_secret": SLS_SECRET},
    )
    last = t.stop_logging(at.StopLoggingRequest(name="sls-trail")).body.request_id
    expected = stored_events(server, dacct.account_id, event_id_of(server, start), event_id_of(server, last))

    sls_leaves: list[tuple[dict[str, Any], int, str]] = []

    def received() -> list[dict[str, Any]]:
        found = []
        sls_leaves.clear()
        for path, host, group in list(sls.requests):
            assert (
                path == "/logstores/actiontrail_sls-trail/shards/lb"
                and host == f"{project}.{sls.endpoint.split(':')[0]}"
            )
            assert group.Topic == "actiontrail_audit_event"
            assert [(tag.Key) for tag in group.LogTags] == ["openims_batch_id"]
            for log in group.Logs:
                content, index, leaf = log.Contents
                assert (content.Key, index.Key, leaf.Key) == ("event", "leafIndex", "leafHash")
                event = json.loads(content.Value)
                sls_leaves.append((event, int(index.Value), leaf.Value))
                assert log.Time == int(
                    dt.datetime.strptime(event["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
                )
                found.append(event)
        return found

    wait_for("the events at the SLS endpoint", lambda: len(received()) >= len(expected))
    assert_exactly(received(), expected)
    assert_leaves(server, dacct.account_id, sls_leaves)
    recorded_status(dacct, "sls-trail", lambda s: bool(s["LatestDeliveryLogServiceTime"]))
    status = t.get_trail_status(at.GetTrailStatusRequest(name="sls-trail")).body
    assert status.sls_log_store_status is True and status.latest_delivery_log_service_time
    assert SLS_SECRET not in (server.data_dir.parent / f"server-{server.port}.log").read_text(errors="replace")


# --- `openims deliver` on its own -----------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def quiet_server(request: pytest.FixtureRequest, tmp_path: Path, pki: Pki) -> Iterator[Server]:
    """A server that leaves delivery to separate `openims deliver` processes."""
    srv, cleanup = own_server(request, tmp_path, delivery_env(pki, OPENIMS_SERVE_DELIVERY="false"))
    try:
        yield srv
    finally:
        cleanup()


def test_separate_deliverers_share_the_work(quiet_server: Server) -> None:
    server = quiet_server
    acct = server.new_account()
    t = acct.trail()
    bucket = f"sep-{acct.alias}"
    t.create_trail(at.CreateTrailRequest(name="separate-trail", oss_bucket_name=bucket, event_rw="All"))
    start = t.start_logging(at.StartLoggingRequest(name="separate-trail")).body.request_id
    for i in range(5):
        some_calls(acct, f"sep{i}")
    root = server.data_dir / "buckets" / acct.account_id / bucket
    time.sleep(2)  # past the batch window, so a deliverer wrongly running in the server would have written
    assert not root.exists()

    cmd = [sys.executable, "-m", "openims.cli.trails", "--data-dir", str(server.data_dir), "deliver", "--workers", "2"]
    procs = [
        subprocess.Popen(cmd, env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        for proc in procs:  # each says when it runs (and so handles SIGTERM)
            assert proc.stderr is not None
            while "trail deliverer" not in (line := proc.stderr.readline()):
                assert line, "openims deliver exited early"
            threading.Thread(target=proc.stderr.read, daemon=True).start()
        for i in range(5, 10):
            some_calls(acct, f"sep{i}")
        last = t.stop_logging(at.StopLoggingRequest(name="separate-trail")).body.request_id
        expected = stored_events(server, acct.account_id, event_id_of(server, start), event_id_of(server, last))
        wait_for(
            "the separate deliverers",
            lambda: root.exists() and len(directory_events(root, "", settled=False)) >= len(expected),
        )
        assert_exactly(directory_events(root, ""), expected)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=60) for proc in procs]
    assert codes == [0, 0]

    once = subprocess.run(
        cmd[:-2] + ["--once"], check=False, env=server.env, capture_output=True, text=True, timeout=60
    )
    assert once.returncode == 0, once.stderr

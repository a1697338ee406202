"""Trail delivery sinks against real local servers: moto S3, a directory, TCP/TLS syslog, HTTPS webhook, fake SLS."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import http.server
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from aliyun.log.log_logs_pb2 import LogGroup
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openims.delivery.batch import Batch, DeliveryError
from openims.delivery.sinks.directory import DirectorySink
from openims.delivery.sinks.objectkey import log_files
from openims.delivery.sinks.s3 import S3Sink
from openims.delivery.sinks.sls import SlsSink
from openims.delivery.sinks.syslog import SyslogSink
from openims.delivery.sinks.webhook import WebhookSink
from openims.net import egress
from tests.sink_support import SYSLOG_HEADER, decode_put_logs_body, moto_s3, parse_octet_counted

# The receivers in these tests listen on loopback, which trail destinations may reach only when the operator
# allows it (OPENIMS_EGRESS_ALLOW).
LOOPBACK = egress.Policy(["127.0.0.1"])

ACCESS_KEY_ID = "LTAI5tTestAccessKeyId0000"
SECRET = "S3cr3tValueThatMustNeverLeak0123456"
KEY_NAME = re.compile(
    r"^(?P<dir>.*/)?Actiontrail_(?P<region>[a-z0-9-]+)_(?P<ts>\d{14})_1002_(?P<count>\d+)_(?P<size>\d+)_"
    r"(?P<md5>[0-9a-f]{32})\.gz$"
)


def make_event(n: int, when: str = "2026-11-24T08:00:05Z", rw: str = "Write") -> dict:
    return {
        "eventId": f"6F1C0B3E-8F0E-4E9A-9E77-{n:012X}",
        "eventVersion": 1,
        "eventName": "CreateUser",
        "eventSource": "ims.aliyuncs.com",
        "eventType": "ApiCall",
        "eventCategory": "Management",
        "eventRW": rw,
        "eventTime": when,
        "acsRegion": "cn-hangzhou",
        "isGlobal": True,
        "apiVersion": "2019-08-15",
        "serviceName": "Ims",
        "sourceIpAddress": "203.0.113.7",
        "userIdentity": {
            "type": "root-account",
            "principalId": "1234567890123456",
            "accountId": "1234567890123456",
            "accessKeyId": "LTAI****",
            "userName": "root",
        },
        "requestParameters": {"UserPrincipalName": f"user{n}@corp.onaliyun.com", "DisplayName": "Zoë"},
        "resourceType": "ACS::RAM::User",
        "resourceName": f"user{n}@corp.onaliyun.com",
        "recipientAccountId": "1234567890123456",
    }


@pytest.fixture
def batch() -> Batch:
    events = [make_event(1), make_event(2, "2026-11-24T08:01:00Z", rw="Read"), make_event(3, "2026-11-25T00:00:00Z")]
    return Batch(
        trail_name="audit", account_id="1234567890123456", region="cn-hangzhou", batch_id="audit-000042", events=events
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


# --- object key and bytes ---------------------------------------------------------------------------------


def check_log_file(key: str, body: bytes, batch: Batch, prefix: str) -> None:
    """The key follows ActionTrail's single-account layout and describes the gzip JSON body exactly."""
    match = KEY_NAME.match(key)
    assert match, key
    expected_dir = "/".join(p for p in [prefix, "AliyunLogs/Actiontrail/cn-hangzhou/2026/11/24"] if p) + "/"
    assert match["dir"] == expected_dir
    assert match["region"] == "cn-hangzhou"
    assert match["ts"] == "20261124080005"  # from the first event
    assert int(match["count"]) == len(batch.events)
    assert int(match["size"]) == len(body)
    assert match["md5"] == hashlib.md5(body).hexdigest()
    assert json.loads(gzip.decompress(body)) == batch.events


def test_log_file_is_deterministic_and_prefix_optional(batch: Batch) -> None:
    first = log_files(batch, "trails/prod")[0]
    again = log_files(Batch(**{**batch.__dict__, "events": json.loads(json.dumps(batch.events))}), "trails/prod")[0]
    assert first == again
    check_log_file(first.key, first.body, batch, "trails/prod")
    bare = log_files(batch, "")[0]
    assert bare.key.startswith("AliyunLogs/Actiontrail/cn-hangzhou/2026/11/24/Actiontrail_cn-hangzhou_")
    assert log_files(batch, "/trails/prod/")[0].key == first.key
    assert first.body[4:8] == b"\0\0\0\0"  # gzip MTIME is zero


# --- S3 (moto server) -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


def s3_client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
    )


def test_s3_sink_writes_one_object_and_retry_overwrites(s3_endpoint: str, batch: Batch) -> None:
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="trail-bucket")
    sink = S3Sink(
        "trail-bucket",
        "trails/prod",
        endpoint_url=s3_endpoint,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET,
        region="us-east-1",
    )

    sent: list = []
    sink._client.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(request))

    sink.deliver(batch)
    sink.deliver(batch)  # a retry of the same batch

    objects = client.list_objects_v2(Bucket="trail-bucket")["Contents"]
    assert len(objects) == 1
    key = objects[0]["Key"]
    got = client.get_object(Bucket="trail-bucket", Key=key)
    body = got["Body"].read()
    check_log_file(key, body, batch, "trails/prod")
    assert got["ContentType"] == "application/gzip" and "ContentEncoding" not in got
    assert objects[0]["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    # Path-style, Content-MD5, and none of the flexible-checksum headers S3-compatible servers reject.
    assert len(sent) == 2 and sent[0].url == f"{s3_endpoint}/trail-bucket/{key}" and "Content-MD5" in sent[0].headers
    assert not [
        h for h in sent[0].headers if h.lower().startswith(("x-amz-checksum", "x-amz-sdk-checksum", "x-amz-trailer"))
    ]


def test_s3_sink_without_prefix(s3_endpoint: str, batch: Batch) -> None:
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="bare-bucket")
    S3Sink("bare-bucket", "", endpoint_url=s3_endpoint, access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET).deliver(
        batch
    )
    [obj] = client.list_objects_v2(Bucket="bare-bucket")["Contents"]
    assert obj["Key"].startswith("AliyunLogs/Actiontrail/")


def test_s3_sink_missing_bucket_is_delivery_error(s3_endpoint: str, batch: Batch) -> None:
    sink = S3Sink(
        "no-such-bucket", "p", endpoint_url=s3_endpoint, access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET
    )
    with pytest.raises(DeliveryError) as info:
        sink.deliver(batch)
    assert "NoSuchBucket" in str(info.value)
    assert SECRET not in str(info.value)


def test_s3_sink_endpoint_down_fails_fast_without_secret(batch: Batch) -> None:
    sink = S3Sink(
        "trail-bucket",
        "p",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET,
    )
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        sink.deliver(batch)
    assert time.monotonic() - started < 10
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


# --- directory ---------------------------------------------------------------------------------------------


def test_directory_sink_writes_same_layout_once(tmp_path: Path, batch: Batch) -> None:
    sink = DirectorySink(tmp_path, "trail-bucket", "trails/prod")
    sink.deliver(batch)
    sink.deliver(batch)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 1  # no leftover temp files either
    key = files[0].relative_to(tmp_path / "trail-bucket").as_posix()
    check_log_file(key, files[0].read_bytes(), batch, "trails/prod")
    assert key == log_files(batch, "trails/prod")[0].key


def test_directory_sink_rejects_escaping_prefix_and_reports_os_errors(tmp_path: Path, batch: Batch) -> None:
    with pytest.raises(DeliveryError):
        DirectorySink(tmp_path, "b", "../../outside").deliver(batch)
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(DeliveryError):
        DirectorySink(tmp_path / "file", "b", "").deliver(batch)


def test_empty_batch_is_a_no_op(tmp_path: Path, batch: Batch) -> None:
    DirectorySink(tmp_path, "b", "").deliver(Batch(**{**batch.__dict__, "events": []}))
    assert list(tmp_path.iterdir()) == []


# --- TLS material -------------------------------------------------------------------------------------------


@dataclass
class Pki:
    ca_file: Path
    server_context: ssl.SSLContext


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it."""
    folder = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OpenIMS test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file, key_file = folder / "server.pem", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return Pki(ca_file=ca_file, server_context=context)


# --- syslog --------------------------------------------------------------------------------------------------


@dataclass
class SyslogReceiver:
    port: int
    streams: list[bytes] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


def run_syslog_receiver(context: ssl.SSLContext | None = None) -> SyslogReceiver:
    """Accepts one connection, reads it to EOF and keeps the raw bytes."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    receiver = SyslogReceiver(port=listener.getsockname()[1])

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            conn.settimeout(10)
            if context is not None:
                try:
                    conn = context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    receiver.done.set()
                    return
            with conn:
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
                receiver.streams.append(b"".join(chunks))
        receiver.done.set()

    start_thread(serve)
    return receiver


def check_syslog_stream(stream: bytes, batch: Batch) -> None:
    frames = parse_octet_counted(stream)
    assert len(frames) == len(batch.events)
    for message, event in zip(frames, batch.events):
        m = SYSLOG_HEADER.match(message)
        assert m, message[:80]
        facility, severity = divmod(int(m["pri"]), 8)
        assert facility == 10
        assert severity == (5 if event["eventRW"] == "Write" else 6)
        assert m["ts"].decode() == event["eventTime"]
        assert m["host"] == b"ims-test"
        assert m["app"] == b"openims"
        assert m["procid"] == b"-"
        assert m["msgid"].decode() == event["eventName"]
        assert json.loads(m["msg"].decode("utf-8")) == event


def test_syslog_sink_tcp(batch: Batch) -> None:
    receiver = run_syslog_receiver()
    SyslogSink("127.0.0.1", receiver.port, hostname="ims-test", policy=LOOPBACK).deliver(batch)
    assert receiver.done.wait(10)
    check_syslog_stream(receiver.streams[0], batch)


def test_syslog_sink_tls_with_ca_file(batch: Batch, pki: Pki) -> None:
    receiver = run_syslog_receiver(pki.server_context)
    SyslogSink(
        "127.0.0.1", receiver.port, tls=True, ca_file=str(pki.ca_file), hostname="ims-test", policy=LOOPBACK
    ).deliver(batch)
    assert receiver.done.wait(10)
    check_syslog_stream(receiver.streams[0], batch)


def test_syslog_sink_tls_rejects_unknown_ca(batch: Batch, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    receiver = run_syslog_receiver(pki.server_context)
    with pytest.raises(DeliveryError):
        SyslogSink("127.0.0.1", receiver.port, tls=True, hostname="ims-test", policy=LOOPBACK).deliver(batch)
    # The reason is for the operator's log; the trail's status only says delivery failed.
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    assert receiver.done.wait(10)
    assert receiver.streams == []


def test_syslog_sink_down_is_delivery_error(batch: Batch) -> None:
    with pytest.raises(DeliveryError):
        SyslogSink("127.0.0.1", free_port(), policy=LOOPBACK).deliver(batch)


# --- webhook ---------------------------------------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    url: str
    accepted: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def webhook(pki: Pki) -> Iterator[WebhookReceiver]:
    """An HTTPS server that accepts a POST only when its HMAC signature matches SECRET."""
    accepted: list[tuple[dict[str, str], bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ts, batch_id = self.headers["X-OpenIMS-Timestamp"], self.headers["X-OpenIMS-Batch-Id"]
            expected = (
                "sha256=" + hmac.new(SECRET.encode(), f"{ts}.{batch_id}.".encode() + body, hashlib.sha256).hexdigest()
            )
            fresh = abs(time.time() - int(ts)) < 300
            if (
                self.path != "/hooks/trail"
                or not fresh
                or not hmac.compare_digest(expected, self.headers["X-OpenIMS-Signature"])
            ):
                self.send_response(401)
                self.end_headers()
                self.wfile.write(b"bad signature")
                return
            accepted.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = pki.server_context.wrap_socket(server.socket, server_side=True)
    start_thread(server.serve_forever)
    yield WebhookReceiver(url=f"https://127.0.0.1:{server.server_address[1]}/hooks/trail", accepted=accepted)
    server.shutdown()
    server.server_close()


def test_webhook_sink_posts_signed_json_lines(webhook: WebhookReceiver, pki: Pki, batch: Batch) -> None:
    WebhookSink(webhook.url, SECRET, ca_file=str(pki.ca_file), policy=LOOPBACK).deliver(batch)
    [(headers, body)] = webhook.accepted
    assert headers["Content-Type"] == "application/x-ndjson"
    assert headers["X-OpenIMS-Batch-Id"] == batch.batch_id
    lines = body.decode("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == batch.events


def test_webhook_sink_wrong_secret_is_delivery_error(webhook: WebhookReceiver, pki: Pki, batch: Batch) -> None:
    wrong = "NotTheRightSecretButAlsoSecret999"
    with pytest.raises(DeliveryError) as info:
        WebhookSink(webhook.url, wrong, ca_file=str(pki.ca_file), policy=LOOPBACK).deliver(batch)
    assert "401" in str(info.value) and "bad signature" not in str(info.value)
    assert wrong not in str(info.value) and SECRET not in str(info.value)
    assert webhook.accepted == []


def test_webhook_sink_needs_trusted_cert(webhook: WebhookReceiver, pki: Pki, batch: Batch) -> None:
    with pytest.raises(DeliveryError):
        WebhookSink(webhook.url, SECRET, policy=LOOPBACK).deliver(batch)
    WebhookSink(webhook.url, SECRET, verify=False, policy=LOOPBACK).deliver(batch)
    assert len(webhook.accepted) == 1


def test_trail_destinations_are_held_to_the_egress_policy(batch: Batch) -> None:
    """A trail's owner names its syslog address and webhook URL: by default neither may reach the server's own
    host or networks, and a refused address, a closed port and an open one fail with the same words."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    open_port, closed_port = listener.getsockname()[1], free_port()
    try:
        texts = set()
        for port in (open_port, closed_port):
            with pytest.raises(DeliveryError) as info:
                SyslogSink("127.0.0.1", port).deliver(batch)
            texts.add(str(info.value).replace(str(port), "PORT"))
            with pytest.raises(DeliveryError):
                WebhookSink(f"https://127.0.0.1:{port}/x", SECRET).deliver(batch)
        with pytest.raises(DeliveryError):
            SyslogSink("127.0.0.1", closed_port, policy=LOOPBACK).deliver(batch)
        assert len(texts) == 1 and "could not connect and deliver" in texts.pop()
        with pytest.raises(OSError):
            listener.accept()  # nothing ever connected to the open port
    finally:
        listener.close()


def test_webhook_sink_down_is_delivery_error(batch: Batch) -> None:
    with pytest.raises(DeliveryError) as info:
        WebhookSink(f"http://127.0.0.1:{free_port()}/x", SECRET).deliver(batch)
    assert SECRET not in str(info.value)


# --- SLS (fake Log Service endpoint speaking the PutLogs wire format) -----------------------------------------


@dataclass
class SlsRequest:
    path: str
    headers: dict[str, str]
    log_group: LogGroup


@dataclass
class SlsEndpoint:
    endpoint: str
    requests: list[SlsRequest] = field(default_factory=list)
    fail_with: tuple[int, dict] | None = None


@pytest.fixture
def sls() -> Iterator[SlsEndpoint]:
    state = SlsEndpoint(endpoint="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state.fail_with is not None:
                status, payload = state.fail_with
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("x-log-requestid", "TESTREQ0001")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            assert self.headers["Content-MD5"] == hashlib.md5(body).hexdigest().upper()
            state.requests.append(SlsRequest(self.path, dict(self.headers), decode_put_logs_body(self.headers, body)))
            self.send_response(200)
            self.send_header("x-log-requestid", "TESTREQ0002")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    start_thread(server.serve_forever)
    state.endpoint = f"127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def test_sls_sink_puts_actiontrail_logs(sls: SlsEndpoint, batch: Batch) -> None:
    SlsSink(sls.endpoint, "audit-project", None, ACCESS_KEY_ID, SECRET).deliver(batch)
    [request] = sls.requests
    assert request.path == "/logstores/actiontrail_audit/shards/lb"
    assert request.headers["Host"] == "audit-project.127.0.0.1"
    assert request.headers["Authorization"].startswith(f"LOG {ACCESS_KEY_ID}:")
    assert SECRET not in json.dumps(request.headers)
    group = request.log_group
    assert group.Topic == "actiontrail_audit_event"
    assert group.Source == "openims"
    assert [(t.Key, t.Value) for t in group.LogTags] == [("openims_batch_id", batch.batch_id)]
    assert len(group.Logs) == len(batch.events)
    for log, event in zip(group.Logs, batch.events):
        assert [c.Key for c in log.Contents] == ["event"]
        assert json.loads(log.Contents[0].Value) == event
        expected = dt.datetime.strptime(event["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        assert log.Time == int(expected.timestamp())


def test_sls_sink_configured_logstore(sls: SlsEndpoint, batch: Batch) -> None:
    SlsSink(f"http://{sls.endpoint}", "p", "custom_store", ACCESS_KEY_ID, SECRET).deliver(batch)
    assert sls.requests[0].path == "/logstores/custom_store/shards/lb"


def test_sls_sink_error_is_delivery_error_without_secret(sls: SlsEndpoint, batch: Batch) -> None:
    # A server that echoes the secret back must not get it into the error message.
    sls.fail_with = (401, {"errorCode": "Unauthorized", "errorMessage": f"signature mismatch for {SECRET}"})
    with pytest.raises(DeliveryError) as info:
        SlsSink(sls.endpoint, "p", None, ACCESS_KEY_ID, SECRET).deliver(batch)
    assert "Unauthorized" in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.slow
def test_sls_sink_endpoint_down_is_delivery_error(batch: Batch) -> None:
    # The SDK retries refused connections 10 times, 1 s apart; this checks the error that finally comes out.
    with pytest.raises(DeliveryError) as info:
        SlsSink(f"127.0.0.1:{free_port()}", "p", None, ACCESS_KEY_ID, SECRET).deliver(batch)
    assert "LogRequestError" in str(info.value)
    assert SECRET not in str(info.value)

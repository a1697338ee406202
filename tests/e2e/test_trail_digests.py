"""Trail digest files as an auditor uses them: a trail delivering to the directory default or to S3 (moto's
server) also writes signed, chained digests, and `openims trail verify` checks the delivered objects offline with
the public key alone: an intact delivery verifies (every event proven in the signed log), and modifying,
deleting, adding or reordering an event file, or deleting, editing or moving a digest, each exits 1 naming the
object where the delivered history first differs."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_ims20190815 import models as im

from openims.integrity import digests
from tests.conftest import backends
from tests.e2e.test_delivery import event_id_of, stored_events
from tests.sink_support import moto_s3
from tests.support import Account, Server, start_server

S3_KEY_ID, S3_SECRET = "LTAI5tS3DigestKey0000000", "s3-digest-secret-0123456789abcdef"


@pytest.fixture(scope="module", params=backends())
def dserver(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if request.param == "postgresql" and not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    server, cleanup = start_server(tmp_path_factory.mktemp(f"digests-{request.param}"), request.param)
    try:
        yield server
    finally:
        cleanup()


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


def openims(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openims", "--data-dir", str(server.data_dir), *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def public_key(server: Server, folder: Path) -> Path:
    out = openims(server, "integrity", "public-key")
    assert out.returncode == 0, out.stderr
    path = folder / "pub.pem"
    path.write_text(out.stdout)
    return path


def wait_for(what: str, check: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def deliver_some(acct: Account, name: str, bucket: str, prefix: str = "") -> int:
    """A logging trail to `bucket`, three rounds of calls (so several batches), stopped; returns how many events
    it must deliver (from its StartLogging through its StopLogging)."""
    t = acct.trail()
    t.create_trail(at.CreateTrailRequest(name=name, oss_bucket_name=bucket, oss_key_prefix=prefix, event_rw="All"))
    start = t.start_logging(at.StartLoggingRequest(name=name)).body.request_id
    ims = acct.ims()
    for round_ in range(3):
        upn = acct.upn(f"r{round_}")
        ims.create_user(im.CreateUserRequest(user_principal_name=upn, display_name=f"round {round_}"))
        ims.get_user(im.GetUserRequest(user_principal_name=upn))
        time.sleep(1.5)  # past the batch window: the next calls go to another batch, hence another digest
    stop = t.stop_logging(at.StopLoggingRequest(name=name)).body.request_id
    # In commit order (LookupEvents orders by the second only, in which several of these may fall).
    server = acct.server
    return len(stored_events(server, acct.account_id, event_id_of(server, start), event_id_of(server, stop)))


def settled(read: Callable[[], dict[str, bytes]], expected_events: int) -> Callable[[], bool]:
    """Every expected event delivered, and every event file listed by a digest."""

    def check() -> bool:
        objects = read()
        files = [k for k in objects if not digests.is_digest_key(k)]
        delivered = sum(len(json.loads(gzip.decompress(objects[k]))) for k in files)
        listed = {f["key"] for k, v in objects.items() if digests.is_digest_key(k) for f in json.loads(v)["logFiles"]}
        return delivered >= expected_events and listed == set(files)

    return check


def read_dir(root: Path) -> dict[str, bytes]:
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".tmp-")
    }


def verify_dir(server: Server, root: Path, pub: Path) -> subprocess.CompletedProcess[str]:
    return openims(server, "trail", "verify", "--dir", str(root), "--public-key", str(pub))


def edit_event(body: bytes) -> bytes:
    events = json.loads(gzip.decompress(body))
    events[0]["sourceIpAddress"] = "203.0.113.66"
    return gzip.compress(json.dumps(events, separators=(",", ":")).encode(), mtime=0)


# --- the directory default ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def delivered_dir(dserver: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[Server, Path, Path]:
    acct = dserver.new_account()
    bucket = f"digests-{acct.alias}"
    expected = deliver_some(acct, "digest-trail", bucket, "audit/ims")
    root = dserver.data_dir / "buckets" / acct.account_id / bucket
    wait_for("the trail's files and digests", settled(lambda: read_dir(root), expected))
    return dserver, root, public_key(dserver, tmp_path_factory.mktemp("keys"))


def test_an_intact_directory_delivery_verifies(delivered_dir: tuple[Server, Path, Path]) -> None:
    server, root, pub = delivered_dir
    objects = read_dir(root)
    digest_docs = sorted(
        (json.loads(v) for k, v in objects.items() if digests.is_digest_key(k)), key=lambda d: d["sequence"]
    )
    assert len(digest_docs) >= 3 and [d["sequence"] for d in digest_docs] == list(range(len(digest_docs)))
    assert all(k.startswith("audit/ims/AliyunLogs/") for k in objects)
    for doc in digest_docs:
        (entry,) = doc["logFiles"]
        assert entry["sha256"] == hashlib.sha256(objects[entry["key"]]).hexdigest()
        assert None not in entry["leafIndexes"] and doc["checkpoint"]["treeSize"] > max(entry["leafIndexes"])
    out = verify_dir(server, root, pub)
    assert out.returncode == 0, out.stdout + out.stderr
    events = sum(d["logFiles"][0]["eventCount"] for d in digest_docs)
    assert f"{len(digest_docs)} digests, {len(digest_docs)} event files, {events} events ({events} proven" in out.stdout
    assert "intact" in out.stdout


def _tampered(root: Path, tmp: Path, change: Callable[[Path, list[str], list[str]], str]) -> tuple[Path, str]:
    """A copy of the delivery with `change` applied (given the copy, its event files and digests in chain
    order); returns the copy and the object key `change` says verify must name first."""
    copy = tmp / "copy"
    shutil.copytree(root, copy)
    objects = read_dir(copy)
    chain = sorted((k for k in objects if digests.is_digest_key(k)), key=lambda k: json.loads(objects[k])["sequence"])
    files = [json.loads(objects[k])["logFiles"][0]["key"] for k in chain]
    return copy, change(copy, files, chain)


def _modify(copy: Path, files: list[str], chain: list[str]) -> str:
    path = copy / files[1]
    path.write_bytes(edit_event(path.read_bytes()))
    return f"event file {files[1]}: modified"


def _delete_file(copy: Path, files: list[str], chain: list[str]) -> str:
    (copy / files[1]).unlink()
    return f"event file {files[1]} (listed in digest {chain[1]}): deleted"


def _add_file(copy: Path, files: list[str], chain: list[str]) -> str:
    forged = files[0].replace(".gz", "0.gz")
    (copy / forged).write_bytes(edit_event((copy / files[0]).read_bytes()))
    return f"event file {forged}: in no digest: added"


def _swap_files(copy: Path, files: list[str], chain: list[str]) -> str:
    first, second = (copy / files[0]).read_bytes(), (copy / files[1]).read_bytes()
    (copy / files[0]).write_bytes(second)
    (copy / files[1]).write_bytes(first)
    return f"event file {files[0]}: modified"


def _delete_digest(copy: Path, files: list[str], chain: list[str]) -> str:
    (copy / chain[1]).unlink()
    return f"digest {chain[2]} (trail digest-trail"


def _delete_first_digest(copy: Path, files: list[str], chain: list[str]) -> str:
    (copy / chain[0]).unlink()
    return f"digest {chain[1]} (trail digest-trail"


def _edit_digest(copy: Path, files: list[str], chain: list[str]) -> str:
    doc = json.loads((copy / chain[1]).read_text())
    doc["logFiles"][0]["eventCount"] += 1
    (copy / chain[1]).write_text(json.dumps(doc))
    return f"digest {chain[1]}: its signature does not verify"


def _swap_digests(copy: Path, files: list[str], chain: list[str]) -> str:
    first, second = (copy / chain[0]).read_bytes(), (copy / chain[1]).read_bytes()
    (copy / chain[0]).write_bytes(second)
    (copy / chain[1]).write_bytes(first)
    return f"digest {chain[0]}: holds the digest of {chain[1]}"


@pytest.mark.parametrize(
    "change",
    [_modify, _delete_file, _add_file, _swap_files, _delete_digest, _delete_first_digest, _edit_digest, _swap_digests],
    ids=lambda f: f.__name__.strip("_"),
)
def test_every_change_to_a_delivered_directory_is_reported(
    delivered_dir: tuple[Server, Path, Path], tmp_path: Path, change: Callable[[Path, list[str], list[str]], str]
) -> None:
    server, root, pub = delivered_dir
    copy, first = _tampered(root, tmp_path, change)
    out = verify_dir(server, copy, pub)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert "TAMPERED" in lines[0]
    problems = [line.strip() for line in lines[1:] if not line.startswith("  trail ") and "note:" not in line]
    assert problems[0].startswith(first), out.stdout


def test_an_empty_place_is_not_called_intact(delivered_dir: tuple[Server, Path, Path], tmp_path: Path) -> None:
    server, _, pub = delivered_dir
    out = verify_dir(server, tmp_path, pub)
    assert out.returncode == 2 and "nothing to verify" in out.stderr


def test_a_digest_signed_by_another_key_is_refused(delivered_dir: tuple[Server, Path, Path], tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from openims.integrity import checkpoint

    server, root, _ = delivered_dir
    other = tmp_path / "other.pem"
    other.write_text(checkpoint.public_pem(Ed25519PrivateKey.generate().public_key()))
    out = verify_dir(server, root, other)
    assert out.returncode == 1 and "which is not among the keys given" in out.stdout


# --- S3 -------------------------------------------------------------------------------------------------------------


def test_s3_delivery_verifies_and_changes_are_reported(dserver: Server, s3: str, tmp_path: Path) -> None:
    acct = dserver.new_account()
    bucket = f"digests-{acct.alias}"
    client = boto3.client(
        "s3", endpoint_url=s3, aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET, region_name="us-east-1"
    )
    client.create_bucket(Bucket=bucket)
    entry = {"endpoint_url": s3, "access_key_id": S3_KEY_ID, "secret_access_key": S3_SECRET, "region": "us-east-1"}
    (dserver.data_dir / "oss-buckets.json").write_text(json.dumps({bucket: entry}))
    expected = deliver_some(acct, "s3-digest-trail", bucket, "trails/prod")

    def read() -> dict[str, bytes]:
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
        return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}

    wait_for("the trail's objects and digests in S3", settled(read, expected))
    pub = public_key(dserver, tmp_path)
    # The endpoint and credentials come from the data dir's oss-buckets.json, as the deliverer's do.
    out = openims(dserver, "trail", "verify", "--bucket", bucket, "--prefix", "trails/prod", "--public-key", str(pub))
    assert out.returncode == 0 and "intact" in out.stdout, out.stdout + out.stderr
    assert f"{expected} events ({expected} proven in the signed log)" in out.stdout

    objects = read()
    chain = sorted((k for k in objects if digests.is_digest_key(k)), key=lambda k: json.loads(objects[k])["sequence"])
    victim = json.loads(objects[chain[0]])["logFiles"][0]["key"]
    client.put_object(Bucket=bucket, Key=victim, Body=edit_event(objects[victim]))
    client.delete_object(Bucket=bucket, Key=chain[-1])
    out = openims(dserver, "trail", "verify", "--bucket", bucket, "--public-key", str(pub))
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"event file {victim}: modified" in out.stdout
    last_file = json.loads(objects[chain[-1]])["logFiles"][0]["key"]
    assert f"event file {last_file}: in no digest" in out.stdout


def test_every_record_carries_its_leaf(delivered_dir: tuple[Server, Path, Path]) -> None:
    """The leaf indexes a digest lists are the events' places in the log (as `openims events prove` shows)."""
    server, root, _ = delivered_dir
    objects = read_dir(root)
    doc = json.loads(next(v for k, v in objects.items() if digests.is_digest_key(k)))
    (entry,) = doc["logFiles"]
    event = json.loads(gzip.decompress(objects[entry["key"]]))[0]
    out = openims(server, "events", "prove", event["eventId"])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["leafIndex"] == entry["leafIndexes"][0]

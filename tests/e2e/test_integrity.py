"""The tamper-evident log as an auditor uses it: `openims events verify` finds every kind of tampering with the
stored events and checkpoints, an untouched log verifies (after a restart, a kill -9 during writes, and with two
servers on PostgreSQL), and proofs verify offline with the public key alone."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alibabacloud_ims20190815 import models as m

from openims.store.schema import events
from openims.store.tables.integrity import log_checkpoints, log_keys, log_leaves, log_queue, log_state
from tests.conftest import backends
from tests.support import Account, Server, start_server

FAST = {"OPENIMS_CHECKPOINT_SECONDS": "1"}


@pytest.fixture(scope="module", params=backends())
def logged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server signing a checkpoint within a second of each event."""
    import os

    if request.param == "postgresql" and not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    server, cleanup = start_server(tmp_path_factory.mktemp("integrity"), request.param, FAST)
    try:
        yield server
    finally:
        cleanup()


def openims(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openims", "--data-dir", str(server.data_dir), *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def activity(acct: Account, n: int = 6) -> list[str]:
    """Some writes and reads, failures included; returns the UPNs created."""
    ims = acct.ims()
    upns = []
    for i in range(n):
        upn = acct.upn()
        ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=f"user {i}"))
        ims.get_user(m.GetUserRequest(user_principal_name=upn))
        upns.append(upn)
    with pytest.raises(Exception):  # noqa: B017 - any refusal: it is recorded too
        ims.get_user(m.GetUserRequest(user_principal_name=acct.upn("nobody")))
    return upns


def settled(server: Server, acct: Account) -> None:
    """Wait until every event of the account is in the log and covered by its newest signed checkpoint."""
    deadline = time.monotonic() + 60
    while True:
        with server.runtime.db.read() as conn:
            queued = conn.execute(
                sa.select(sa.func.count()).select_from(log_queue).where(log_queue.c.account_id == acct.account_id)
            ).scalar_one()
            # The log's size, which counts the leaves a retention purge removed.
            leaves = conn.execute(sa.select(log_state.c.size).where(log_state.c.account_id == acct.account_id)).scalar()
            signed = conn.execute(
                sa.select(sa.func.max(log_checkpoints.c.size)).where(log_checkpoints.c.account_id == acct.account_id)
            ).scalar()
        if not queued and leaves and signed == leaves:
            return
        assert time.monotonic() < deadline, (queued, leaves, signed)
        time.sleep(0.3)


def covered(server: Server, acct: Account) -> str:
    """Once a signed checkpoint covers every event of the account, its `events verify` output (the run itself
    records a VerifyEventLog event, which enters the log after it)."""
    settled(server, acct)
    out = openims(server, "events", "verify", "--account", acct.account_id)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def tamper(server: Server, statement: Callable[[sa.Connection], None]) -> None:
    with server.runtime.db.transaction() as conn:
        statement(conn)


def leaf_events(server: Server, acct: Account) -> list[str]:
    with server.runtime.db.read() as conn:
        return list(
            conn.execute(
                sa.select(log_leaves.c.event_id)
                .where(log_leaves.c.account_id == acct.account_id)
                .order_by(log_leaves.c.leaf_index)
            ).scalars()
        )


def test_an_untouched_log_verifies_and_survives_a_restart(logged: Server) -> None:
    acct = logged.new_account()
    activity(acct)
    out = covered(logged, acct)
    assert f"account {acct.account_id}: " in out and "checkpoints: intact" in out
    logged.stop()
    logged.start()
    activity(acct, 2)
    assert "intact" in covered(logged, acct)
    everything = openims(logged, "events", "verify")
    assert everything.returncode == 0 and "TAMPERED" not in everything.stdout


def _edit_body(server: Server, acct: Account, ids: list[str]) -> str:
    target = ids[2]

    def run(conn: sa.Connection) -> None:
        body = json.loads(conn.execute(sa.select(events.c.body).where(events.c.event_id == target)).scalar_one())
        body["sourceIpAddress"] = "203.0.113.66"
        conn.execute(sa.update(events).where(events.c.event_id == target).values(body=json.dumps(body)))

    tamper(server, run)
    return target


def _edit_column(server: Server, acct: Account, ids: list[str]) -> str:
    target = ids[3]
    tamper(
        server,
        lambda conn: conn.execute(sa.update(events).where(events.c.event_id == target).values(event_name="DeleteUser")),
    )
    return target


def _delete_one(server: Server, acct: Account, ids: list[str]) -> str:
    target = ids[4]
    tamper(server, lambda conn: conn.execute(sa.delete(events).where(events.c.event_id == target)))
    return target


def _delete_newest(server: Server, acct: Account, ids: list[str]) -> str:
    newest = ids[-3:]
    tamper(server, lambda conn: conn.execute(sa.delete(events).where(events.c.event_id.in_(newest))))
    tamper(server, lambda conn: conn.execute(sa.delete(log_leaves).where(log_leaves.c.event_id.in_(newest))))
    return "newest events deleted"


def _insert_forged(server: Server, acct: Account, ids: list[str]) -> str:
    def run(conn: sa.Connection) -> None:
        row = conn.execute(sa.select(events).where(events.c.event_id == ids[1])).one()._asdict()
        body = json.loads(row["body"])
        body["eventId"] = row["event_id"] = "F0F0F0F0-0000-4000-8000-000000000001"
        row["body"] = json.dumps(body)
        del row["seq"]
        conn.execute(sa.insert(events).values(**row))

    tamper(server, run)
    return "F0F0F0F0-0000-4000-8000-000000000001"


def _swap(server: Server, acct: Account, ids: list[str]) -> str:
    a, b = ids[1], ids[2]

    def run(conn: sa.Connection) -> None:
        conn.execute(sa.update(log_leaves).where(log_leaves.c.event_id == a).values(event_id="swap-tmp"))
        conn.execute(sa.update(log_leaves).where(log_leaves.c.event_id == b).values(event_id=a))
        conn.execute(sa.update(log_leaves).where(log_leaves.c.event_id == "swap-tmp").values(event_id=b))

    tamper(server, run)
    return "position 1"


def _forge_signature(server: Server, acct: Account, ids: list[str]) -> str:
    def run(conn: sa.Connection) -> None:
        where = log_checkpoints.c.account_id == acct.account_id
        size = conn.execute(sa.select(sa.func.min(log_checkpoints.c.size)).where(where)).scalar_one()
        conn.execute(
            sa.update(log_checkpoints).where(where, log_checkpoints.c.size == size).values(signature=b"\x01" * 64)
        )

    tamper(server, run)
    return "signature does not verify"


TAMPERING = {
    "edit a body": _edit_body,
    "edit an indexed column": _edit_column,
    "delete one event": _delete_one,
    "delete the newest events": _delete_newest,
    "insert a forged event": _insert_forged,
    "swap two events": _swap,
    "forge a checkpoint signature": _forge_signature,
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_each_kind_of_tampering_is_found(logged: Server, kind: str) -> None:
    acct = logged.new_account()
    activity(acct)
    covered(logged, acct)
    settled(logged, acct)  # the verification's own event too, so "the newest events" are the newest
    named = TAMPERING[kind](logged, acct, leaf_events(logged, acct))
    out = openims(logged, "events", "verify", "--account", acct.account_id)
    assert out.returncode == 1, out.stdout
    assert "TAMPERED" in out.stdout and named in out.stdout, out.stdout


def test_a_replaced_public_key_is_found(tmp_path: Path) -> None:
    server, cleanup = start_server(tmp_path, "sqlite", FAST)
    try:
        acct = server.new_account()
        activity(acct, 2)
        covered(server, acct)
        pem = openims(server, "integrity", "public-key").stdout
        (tmp_path / "pinned.pem").write_text(pem)
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        forged = (
            Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        tamper(server, lambda conn: conn.execute(sa.update(log_keys).values(public_pem=forged)))
        out = openims(server, "events", "verify")
        assert out.returncode == 1 and "signature does not verify" in out.stdout, out.stdout
    finally:
        cleanup()


def test_proofs_verify_offline_with_the_public_key_alone(logged: Server, tmp_path: Path) -> None:
    acct = logged.new_account()
    ims = acct.ims()
    upn = acct.upn("proven")
    created = ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="p"))
    event_id = acct.event_for(created.body.request_id)["eventId"]
    activity(acct, 2)
    covered(logged, acct)
    key = tmp_path / "pub.pem"
    key.write_text(openims(logged, "integrity", "public-key").stdout)
    proof = openims(logged, "events", "prove", event_id)
    assert proof.returncode == 0, proof.stderr
    (tmp_path / "proof.json").write_text(proof.stdout)
    ok = openims(logged, "events", "verify-proof", str(tmp_path / "proof.json"), "--public-key", str(key))
    assert ok.returncode == 0 and ok.stdout.startswith("valid"), ok.stdout + ok.stderr
    doc = json.loads(proof.stdout)
    doc["event"]["sourceIpAddress"] = "198.51.100.7"
    (tmp_path / "edited.json").write_text(json.dumps(doc))
    bad = openims(logged, "events", "verify-proof", str(tmp_path / "edited.json"), "--public-key", str(key))
    assert bad.returncode == 1 and bad.stdout.startswith("INVALID")
    # The log only grew: a consistency proof from the first checkpoint to the newest.
    with logged.runtime.db.read() as conn:
        first = conn.execute(
            sa.select(sa.func.min(log_checkpoints.c.size)).where(log_checkpoints.c.account_id == acct.account_id)
        ).scalar_one()
    grown = openims(logged, "events", "prove", "--from-size", str(first), "--account", acct.account_id)
    assert grown.returncode == 0, grown.stderr
    (tmp_path / "grown.json").write_text(grown.stdout)
    ok = openims(logged, "events", "verify-proof", str(tmp_path / "grown.json"), "--public-key", str(key))
    assert ok.returncode == 0, ok.stdout


def test_kill_9_during_writes_leaves_a_log_that_verifies(tmp_path: Path) -> None:
    server, cleanup = start_server(tmp_path, "sqlite", FAST)
    try:
        acct = server.new_account()
        stop = threading.Event()

        def write() -> None:
            ims = acct.ims()
            n = 0
            while not stop.is_set():
                try:
                    ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn(f"k{n}"), display_name="k"))
                except Exception:  # noqa: BLE001 - the server is being killed under it
                    time.sleep(0.05)
                n += 1

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(1.5)
        server.stop(kill=True)
        time.sleep(0.3)
        server.start()
        time.sleep(1.0)
        stop.set()
        writer.join(timeout=30)
        out = covered(server, acct)
        assert "intact" in out
    finally:
        cleanup()


def test_two_servers_on_postgresql_keep_one_log(tmp_path: Path) -> None:
    import os

    if not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    server, cleanup = start_server(tmp_path, "postgresql", FAST)
    try:
        acct = server.new_account()
        with server.sibling() as other:
            other_acct = Account(other, acct.account_id, acct.alias, acct.key_id, acct.secret)
            threads = [threading.Thread(target=activity, args=(a, 5)) for a in (acct, other_acct)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert "intact" in covered(server, acct)
        assert len(set(leaf_events(server, acct))) == len(leaf_events(server, acct))
    finally:
        cleanup()


def test_a_retention_purge_keeps_the_log_verifiable(logged: Server) -> None:
    from openims import clock, maintenance

    acct = logged.new_account()
    activity(acct, 3)
    covered(logged, acct)
    try:
        clock.set_offset(91 * 24 * 3600)  # every event is now past the 90 days of retention
        assert maintenance.purge(logged.runtime)["events"] > 0
    finally:
        clock.set_offset(0)
    activity(acct, 2)
    out = covered(logged, acct)
    assert "intact" in out and "verified from position" in out, out
    # Proofs go on after the cut, from the frontier kept there, and still verify offline.
    newest = acct.events(EventName="CreateUser")[0]["eventId"]
    proof = openims(logged, "events", "prove", newest)
    assert proof.returncode == 0, proof.stderr
    key = logged.data_dir.parent / f"pub-{acct.account_id}.pem"
    key.write_text(openims(logged, "integrity", "public-key").stdout)
    proof_file = key.with_suffix(".json")
    proof_file.write_text(proof.stdout)
    ok = openims(logged, "events", "verify-proof", str(proof_file), "--public-key", str(key))
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_the_operators_integrity_commands_are_on_the_record(logged: Server, tmp_path: Path) -> None:
    """verify and prove read the trail, rotate-key changes how it is signed: each leaves an event of the
    operator (root, userAgent openims-cli) in the account it concerns; checkpoints of the retired key verify."""
    acct = logged.new_account()
    activity(acct, 2)
    covered(logged, acct)
    event_id = acct.events(EventName="CreateUser")[0]["eventId"]
    assert openims(logged, "events", "prove", event_id).returncode == 0
    rotated = openims(logged, "integrity", "rotate-key")
    assert rotated.returncode == 0, rotated.stderr
    activity(acct, 1)
    assert "intact" in covered(logged, acct)  # verifies checkpoints of both keys, and is recorded each time
    for name, params in (("ProveEvent", {"EventId": event_id}), ("RotateLogSigningKey", {})):
        (found,) = acct.events(EventName=name)
        assert (found["userAgent"], found["userIdentity"]["userName"]) == ("openims-cli", "root")
        assert found["requestParameters"] == params and "errorCode" not in found
    assert acct.events(EventName="RotateLogSigningKey")[0]["responseElements"]["KeyId"] in rotated.stdout
    verified = acct.events(EventName="VerifyEventLog")
    assert verified and all(e["responseElements"]["Events"] > 0 for e in verified)

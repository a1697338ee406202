"""`openims backup` and `openims restore` as an operator uses them: a backup taken while the server serves and
writes restores into a new data dir (and, on PostgreSQL, a new database) holding everything that existed when
it was taken, in one consistent state; the restored AccessKeys still sign; every refusal is one line."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from alibabacloud_ims20190815 import models as m
from alibabacloud_ram20150501 import models as rm

from openims.config import Settings
from openims.runtime import open_runtime
from openims.store.db import alembic_config
from openims.store.schema import access_keys
from tests.conftest import backends
from tests.support import Account, Server, free_port, fresh_postgres_database, start_server

FAST = {"OPENIMS_CHECKPOINT_SECONDS": "1"}
READ_USERS = json.dumps(
    {"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["ram:GetUser", "ram:ListUsers"], "Resource": "*"}]}
)


def openims(env: dict[str, str], data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openims", "--data-dir", str(data_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def refused(out: subprocess.CompletedProcess[str], *words: str) -> None:
    """A refusal: exit status 2 and one line naming the reason, never a traceback."""
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("openims: "), out.stderr
    for word in words:
        assert word in lines[0], lines[0]


def root_account(server: Server) -> Account:
    creds = json.loads((server.data_dir / "root-credentials.json").read_text())
    return Account(server, creds["AccountId"], creds["AccountAlias"], creds["AccessKeyId"], creds["AccessKeySecret"])


def all_users(acct: Account) -> list[str]:
    ims, marker, found = acct.ims(), None, []
    while True:
        body = ims.list_users(m.ListUsersRequest(max_items=100, marker=marker)).body
        found += [u.user_principal_name for u in body.users.user]
        if not body.is_truncated:
            return found
        marker = body.marker


def verified(server: Server) -> str:
    """`openims events verify` once a signed checkpoint covers every event."""
    deadline = time.monotonic() + 60
    while True:
        out = openims(server.env, server.data_dir, "events", "verify")
        if "not yet covered" not in out.stdout or time.monotonic() > deadline:
            assert out.returncode == 0, out.stdout + out.stderr
            return out.stdout
        time.sleep(0.5)


class Writer:
    """Creates users w0000, w0001, ... one after the other until stopped, remembering each one confirmed."""

    def __init__(self, acct: Account) -> None:
        self.acct = acct
        self.done: list[str] = []
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        ims = self.acct.ims()
        try:
            while not self._stop.is_set():
                upn = self.acct.upn(f"w{len(self.done):04d}")
                ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="writer"))
                self.done.append(upn)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def start(self, at_least: int) -> None:
        self._thread.start()
        self.wait_for(at_least)

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 60
        while len(self.done) < count and self.error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.error is None and len(self.done) >= count, self.error

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        assert self.error is None, self.error


@pytest.mark.parametrize("backend", backends())
def test_a_backup_of_a_busy_server_restores_everything(tmp_path: Path, backend: str) -> None:
    if backend == "postgresql" and not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    (tmp_path / "live").mkdir()
    live, cleanup = start_server(tmp_path / "live", backend, FAST)
    restored: Server | None = None
    drops: list[Any] = []
    try:
        acct, other = root_account(live), live.new_account()
        ims, ram = acct.ims(), acct.ram()
        alice = acct.upn("alice")
        ims.create_user(m.CreateUserRequest(user_principal_name=alice, display_name="Alice"))
        ims.create_group(m.CreateGroupRequest(group_name="ops"))
        ims.add_user_to_group(m.AddUserToGroupRequest(group_name="ops", user_principal_name=alice))
        ram.create_policy(rm.CreatePolicyRequest(policy_name="ReadUsers", policy_document=READ_USERS))
        ram.attach_policy_to_user(
            rm.AttachPolicyToUserRequest(policy_name="ReadUsers", policy_type="Custom", user_name="alice")
        )
        key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=alice)).body.access_key
        assert acct.ims(key.access_key_id, key.access_key_secret).list_users(m.ListUsersRequest()).body.users.user
        bob = other.upn("bob")
        other.ims().create_user(m.CreateUserRequest(user_principal_name=bob, display_name="Bob"))

        writer = Writer(acct)
        writer.start(at_least=3)
        before_users = set(all_users(acct))
        before_events = {e["eventId"] for e in acct.events()}
        backup = tmp_path / "backup"
        out = openims(live.env, live.data_dir, "backup", str(backup))
        at_return = len(writer.done)
        writer.wait_for(at_return + 3)  # the server kept serving writes during and after the backup
        writer.stop()
        assert out.returncode == 0, out.stdout + out.stderr
        assert "WARNING" in out.stderr and "holds the master key" in out.stderr, out.stderr

        # A 0700 directory of 0600 files, described by its manifest.
        assert stat.S_IMODE(backup.stat().st_mode) == 0o700
        database = "database.sqlite3" if backend == "sqlite" else "database.pgdump"
        files = {database, "master.key", "root-credentials.json", "manifest.json"}
        assert {p.name for p in backup.iterdir()} == files
        assert all(stat.S_IMODE((backup / name).stat().st_mode) == 0o600 for name in files)
        manifest = json.loads((backup / "manifest.json").read_text())
        assert (manifest["format"], manifest["format_version"], manifest["backend"]) == ("openims-backup", 1, backend)
        assert manifest["alembic_revision"] and manifest["openims_version"] and manifest["created"].endswith("Z")
        assert manifest["master_key"]["included"] is True and set(manifest["files"]) == files - {"manifest.json"}
        assert (backup / "master.key").read_bytes() == (live.data_dir / "master.key").read_bytes()

        # The live deployment recorded the operator's backup in each account.
        for a in (acct, other):
            [event] = a.events(EventName="CreateBackup")
            assert (event["userAgent"], event["sourceIpAddress"]) == ("openims-cli", "localhost")
            assert event["requestParameters"]["BackupId"] == manifest["backup_id"]
            assert "errorCode" not in event

        # Restore into a new data dir (and a new, empty database).
        env = dict(live.env)
        data = tmp_path / "restored" / "data"
        url = f"sqlite:///{data / 'openims.db'}"
        if backend == "postgresql":
            url, drop = fresh_postgres_database(os.environ["OPENIMS_TEST_DATABASE_URL"])
            drops.append(drop)
            env["OPENIMS_DATABASE_URL"] = url
        done = openims(env, data, "restore", str(backup))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Restored" in done.stdout and "2 account(s)" in done.stdout, done.stdout
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert stat.S_IMODE((data / "master.key").stat().st_mode) == 0o600
        restored = Server(backend, data, url, free_port(), env=env)
        restored.start()
        racct = Account(restored, acct.account_id, acct.alias, acct.key_id, acct.secret)  # the root key signs
        rother = Account(restored, other.account_id, other.alias, other.key_id, other.secret)

        users = all_users(racct)
        assert before_users <= set(users)
        assert bob in all_users(rother)
        # One consistent state: the writer's users form a prefix of what it created, at least those confirmed
        # before the backup began, and each has the CreateUser event committed with it.
        from_writer = sorted(u for u in users if u.startswith("w"))
        assert from_writer == writer.done[: len(from_writer)] and len(from_writer) >= 3
        created = {
            e["requestParameters"]["UserPrincipalName"]
            for e in racct.events(EventName="CreateUser")
            if "errorCode" not in e
        }
        assert set(from_writer) <= created <= set(users)
        assert before_events <= {e["eventId"] for e in racct.events()}

        # Alice's AccessKey decrypts and signs; her group and custom policy are there and in force.
        as_alice = racct.ims(key.access_key_id, key.access_key_secret)
        assert as_alice.get_user(m.GetUserRequest(user_principal_name=alice)).body.user.display_name == "Alice"
        groups = racct.ims().list_groups_for_user(m.ListGroupsForUserRequest(user_principal_name=alice))
        assert [g.group_name for g in groups.body.groups.group] == ["ops"]
        got = racct.ram().get_policy(rm.GetPolicyRequest(policy_name="ReadUsers", policy_type="Custom")).body
        assert got.policy.policy_document == READ_USERS
        # The restored deployment records the restore in each account, and its signed log verifies.
        for a in (racct, rother):
            [event] = a.events(EventName="RestoreBackup")
            assert event["requestParameters"]["BackupId"] == manifest["backup_id"]
        assert "intact" in verified(restored)

        # Refusals, each one line, each leaving things as they were.
        refused(openims(env, data, "restore", str(backup)), "is not empty", "master.key")
        refused(openims(live.env, live.data_dir, "backup", str(backup)), "is not empty")
        tampered = tmp_path / "tampered"
        shutil.copytree(backup, tampered)
        body = bytearray((tampered / database).read_bytes())
        body[len(body) // 2] ^= 0x01
        (tampered / database).write_bytes(bytes(body))
        fresh = tmp_path / "fresh"
        refused(openims(env, fresh, "restore", str(tampered)), "checksum mismatch", database)
        assert not fresh.exists()
        if backend == "postgresql":
            # The restored database has OpenIMS tables now; a new data dir does not make it empty.
            refused(openims(env, fresh, "restore", str(backup)), "already has OpenIMS tables")
            assert not fresh.exists()
            no_tools = {**live.env, "PATH": str(tmp_path / "nowhere")}
            refused(openims(no_tools, live.data_dir, "backup", str(tmp_path / "b2")), "pg_dump is not on PATH")
            assert not (tmp_path / "b2").exists()
            # pg_dump failing halfway (here: refusing a newer server) leaves no backup, and the attempt is recorded.
            tools = tmp_path / "bin"
            tools.mkdir()
            (tools / "pg_dump").write_text("#!/bin/sh\necho 'pg_dump: error: server version mismatch' >&2\nexit 1\n")
            (tools / "pg_dump").chmod(0o755)
            failing = {**live.env, "PATH": f"{tools}:{os.environ['PATH']}"}
            refused(openims(failing, live.data_dir, "backup", str(tmp_path / "b3")), "pg_dump failed", "mismatch")
            assert not (tmp_path / "b3").exists()
            [failed] = [e for e in acct.events(EventName="CreateBackup") if "errorCode" in e]
            assert failed["errorCode"] == "BackupFailed" and "mismatch" in failed["errorMessage"]
    finally:
        if restored is not None:
            restored.close()
        for drop in drops:
            drop()
        cleanup()


def test_a_backup_without_its_master_key_restores_only_with_that_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With OPENIMS_MASTER_KEY the backup says the key is not in it, and a restore needs that very key."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMS_")}
    key = base64.b64encode(os.urandom(32)).decode()
    with_key = {**clean, "OPENIMS_MASTER_KEY": key}
    live, backup = tmp_path / "live", tmp_path / "backup"
    init = openims(with_key, live, "init", "--json")
    assert init.returncode == 0, init.stderr
    creds = json.loads(init.stdout)

    out = openims(with_key, live, "backup", str(backup))
    assert out.returncode == 0, out.stderr
    assert "master key is not in it" in out.stderr and "OPENIMS_MASTER_KEY" in out.stderr, out.stderr
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["master_key"]["included"] is False and manifest["master_key"]["source"] == "OPENIMS_MASTER_KEY"
    assert "OPENIMS_MASTER_KEY" in manifest["not_included"] and not (backup / "master.key").exists()
    assert key not in (backup / "manifest.json").read_text()

    target = tmp_path / "restored"
    refused(openims(clean, target, "restore", str(backup)), "set OPENIMS_MASTER_KEY")
    wrong = {**clean, "OPENIMS_MASTER_KEY": base64.b64encode(os.urandom(32)).decode()}
    refused(openims(wrong, target, "restore", str(backup)), "not the master key this backup was taken with")
    assert not target.exists()
    incomplete = tmp_path / "incomplete"
    shutil.copytree(backup, incomplete)
    (incomplete / "manifest.json").unlink()
    refused(openims(with_key, target, "restore", str(incomplete)), "no manifest.json")

    done = openims(with_key, target, "restore", str(backup))
    assert done.returncode == 0, done.stderr
    assert not (target / "master.key").exists()
    # The restored root AccessKey's secret decrypts with the deployment's key.
    monkeypatch.setenv("OPENIMS_MASTER_KEY", key)
    rt = open_runtime(Settings(data_dir=target, database_url=f"sqlite:///{target / 'openims.db'}"))
    try:
        with rt.db.read() as conn:
            sealed = conn.execute(
                sa.select(access_keys.c.secret_sealed).where(access_keys.c.id == creds["AccessKeyId"])
            ).scalar_one()
        assert rt.master_key.open(sealed, context=creds["AccessKeyId"]) == creds["AccessKeySecret"]
    finally:
        rt.close()


def test_restore_migrates_a_backup_of_an_older_schema_and_backup_never_migrates(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMS_")}
    live, backup, target = tmp_path / "live", tmp_path / "backup", tmp_path / "restored"
    init = openims(clean, live, "init", "--json")
    assert init.returncode == 0, init.stderr
    account_id = json.loads(init.stdout)["AccountId"]
    out = openims(clean, live, "backup", str(backup))
    assert out.returncode == 0, out.stderr
    # Make it the backup of the previous OpenIMS schema: its database one revision down, the manifest to match.
    manifest = json.loads((backup / "manifest.json").read_text())
    head = manifest["alembic_revision"]
    older = ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(head).down_revision
    assert isinstance(older, str)
    command.downgrade(alembic_config(f"sqlite:///{backup / 'database.sqlite3'}"), older)
    database = (backup / "database.sqlite3").read_bytes()
    manifest["alembic_revision"] = older
    manifest["files"]["database.sqlite3"] = {"sha256": hashlib.sha256(database).hexdigest(), "bytes": len(database)}
    (backup / "manifest.json").write_text(json.dumps(manifest))

    done = openims(clean, target, "restore", str(backup))
    assert done.returncode == 0, done.stderr
    assert f"schema revision {older}, migrated to {head}" in done.stdout, done.stdout
    listed = openims(clean, target, "account", "list", "--json")
    assert [a["AccountId"] for a in json.loads(listed.stdout)] == [account_id], listed.stderr

    # A deployment on an older schema than this OpenIMS is refused, and left as it was.
    command.downgrade(alembic_config(f"sqlite:///{live / 'openims.db'}"), older)
    refused(openims(clean, live, "backup", str(tmp_path / "b2")), "never migrates", older)
    assert not (tmp_path / "b2").exists()
    with closing(sqlite3.connect(live / "openims.db")) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(older,)]

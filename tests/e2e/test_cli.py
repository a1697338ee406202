"""The `openims` command as an operator uses it."""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from alibabacloud_ims20190815 import models as m

from openims.config import Settings
from openims.runtime import open_runtime
from openims.signin import root_account
from tests.support import Account, Server, free_port, sdk_config


def openims(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMS_")}
    return subprocess.run(
        [sys.executable, "-m", "openims", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=60,
        check=False,
    )


def test_init_json_and_files(tmp_path: Path) -> None:
    data = tmp_path / "d"
    out = openims("--data-dir", str(data), "init", "--json")
    assert out.returncode == 0, out.stderr
    creds = json.loads(out.stdout)
    assert set(creds) == {"AccountId", "AccessKeyId", "AccessKeySecret"}
    assert len(creds["AccountId"]) == 16 and creds["AccountId"].isdigit()
    assert (
        creds["AccessKeyId"].startswith("LTAI")
        and len(creds["AccessKeyId"]) == 24
        and len(creds["AccessKeySecret"]) == 30
    )
    for name in ("root-credentials.json", "master.key"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600
    assert creds["AccessKeySecret"].encode() not in (data / "openims.db").read_bytes()
    again = openims("init", "--data-dir", str(data))  # the option may also follow the command
    assert again.returncode != 0 and "already initialized" in again.stderr


def test_init_can_set_the_root_console_password(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMS_")}

    def init(data: Path, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "openims", "--data-dir", str(data), "init", "--set-password", "--json"],
            input=password + "\n",
            capture_output=True,
            text=True,
            env=clean,
            check=False,
            timeout=60,
        )

    weak = init(tmp_path / "weak", "short")
    assert weak.returncode != 0 and "printable ASCII" in weak.stderr and not (tmp_path / "weak").exists()
    done = init(tmp_path / "d", "Root-console-pass-9")
    assert done.returncode == 0, done.stderr
    creds = json.loads(done.stdout)  # --json still prints only the credentials
    rt = open_runtime(Settings(data_dir=tmp_path / "d", database_url=f"sqlite:///{tmp_path / 'd' / 'openims.db'}"))
    try:
        assert root_account.authenticate_root(
            rt, creds["AccountId"], "Root-console-pass-9", "127.0.0.1", "test"
        ).success
        assert not root_account.authenticate_root(
            rt, creds["AccountId"], "Wrong-pass-12345", "127.0.0.1", "test"
        ).success
    finally:
        rt.close()


def test_serve_initializes_an_empty_data_dir(tmp_path: Path) -> None:
    data, port = tmp_path / "fresh", free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "openims", "--data-dir", str(data), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean,
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("console password" in line for line in lines):
            lines.append(proc.stdout.readline())  # type: ignore[union-attr]
        text = "".join(lines)
        assert str(data / "root-credentials.json") in text, text
        # It also says how to sign in to the console as root.
        assert f"openims --data-dir {data} account set-password" in text, text
        creds = json.loads((data / "root-credentials.json").read_text())
        server = Server("sqlite", data, "", port, proc=proc)
        server.start = lambda: None  # type: ignore[method-assign]
        acct = Account(
            server, creds["AccountId"], creds["AccountAlias"], creds["AccessKeyId"], creds["AccessKeySecret"]
        )
        for _ in range(50):
            try:
                assert acct.ims().get_default_domain().body.default_domain_name == "openims.onaliyun.com"
                break
            except Exception:  # noqa: BLE001 - whatever the SDK raises while the server is still starting
                time.sleep(0.1)
        else:
            raise AssertionError("server never answered")
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_accounts_and_events_lookup(acct: Account) -> None:
    env = acct.server.env
    data = str(acct.server.data_dir)
    created = openims("--data-dir", data, "account", "create", "--alias", "team-b", "--json", env=env)
    assert created.returncode == 0, created.stderr
    new = json.loads(created.stdout)
    listed = json.loads(openims("--data-dir", data, "account", "list", "--json", env=env).stdout)
    assert {"team-b", acct.alias} <= {a["Alias"] for a in listed}
    dup = openims("--data-dir", data, "account", "create", "--alias", "team-b", env=env)
    assert dup.returncode == 2 and "already exists" in dup.stderr
    from alibabacloud_ims20190815.client import Client

    from openims.accounts import default_domain

    Client(sdk_config(acct.server.endpoint, new["AccessKeyId"], new["AccessKeySecret"])).create_user(
        m.CreateUserRequest(user_principal_name="zed@" + default_domain("team-b"), display_name="Zed")
    )
    table = openims(
        "--data-dir", data, "events", "lookup", "--account", new["AccountId"], "--attr", "EventName=Create*", env=env
    )
    assert table.returncode == 0, table.stderr
    assert "CreateUser" in table.stdout and "zed@team-b.onaliyun.com" in table.stdout
    as_json = openims("--data-dir", data, "events", "lookup", "--account", new["AccountId"], "--json", env=env)
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [e["eventName"] for e in events] == ["LookupEvents", "CreateUser"]
    assert {e["recipientAccountId"] for e in events} == {new["AccountId"]}
    # The operator's read of the trail is itself on the record: the lookup before this one, as the CLI's.
    read = events[0]
    assert (read["eventRW"], read["userAgent"], read["sourceIpAddress"]) == ("Read", "openims-cli", "localhost")
    assert read["userIdentity"]["type"] == "root-account"
    assert read["requestParameters"]["LookupAttribute.1.Value"] == "Create*"
    bad = openims("--data-dir", data, "events", "lookup", "--account", new["AccountId"], "--attr", "Nope=1", env=env)
    assert bad.returncode == 2 and "not supported" in bad.stderr
    # A reader that stops early (`| head`) ends the command quietly, even with more output than one buffer.
    for _ in range(20):
        acct.ims().get_account_summary()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENIMS_")}
    piped = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openims",
            "--data-dir",
            data,
            "events",
            "lookup",
            "--json",
            "--account",
            acct.account_id,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean, **env},
    )
    assert piped.stdout is not None and piped.stderr is not None
    piped.stdout.close()
    assert "Traceback" not in piped.stderr.read() and piped.wait(timeout=60) == 1


def test_clear_messages_for_missing_or_corrupt_data_dir(tmp_path: Path) -> None:
    missing = openims("--data-dir", str(tmp_path / "nothing"), "account", "list")
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "master.key").write_text("bm90IGEga2V5\n")
    (broken / "openims.db").write_bytes(b"this is not sqlite" * 100)
    out = openims("--data-dir", str(broken), "account", "list")
    assert out.returncode == 2 and "Traceback" not in out.stderr and "master key" in out.stderr
    (broken / "master.key").write_text("a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=\n")
    out = openims("--data-dir", str(broken), "account", "list")
    assert out.returncode == 2 and "Traceback" not in out.stderr and "cannot open the database" in out.stderr, (
        out.stderr
    )


def test_a_data_dir_without_its_database_is_never_reinitialized(tmp_path: Path) -> None:
    """A PostgreSQL deployment's data dir holds the master key and root credentials but no openims.db: run
    without OPENIMS_DATABASE_URL, commands must say so, not create an empty SQLite database or replace the
    root credentials with a new account's."""
    data = tmp_path / "pg-like"
    assert openims("--data-dir", str(data), "init").returncode == 0
    (data / "openims.db").unlink()
    for name in ("openims.db-wal", "openims.db-shm"):
        (data / name).unlink(missing_ok=True)
    creds = (data / "root-credentials.json").read_text()

    looked = openims("--data-dir", str(data), "events", "lookup")
    assert looked.returncode != 0 and "OPENIMS_DATABASE_URL" in looked.stderr
    again = openims("--data-dir", str(data), "init")
    assert again.returncode != 0 and "already initialized" in again.stderr and "OPENIMS_DATABASE_URL" in again.stderr
    served = openims("--data-dir", str(data), "serve", "--port", str(free_port()))
    assert served.returncode != 0 and "OPENIMS_DATABASE_URL" in served.stderr
    assert not (data / "openims.db").exists() and (data / "root-credentials.json").read_text() == creds


def test_bad_lookup_flags_and_an_unreachable_database_get_one_clear_line(tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert openims("--data-dir", str(data), "init").returncode == 0
    for bad in ("0", "-5", "many"):
        out = openims("--data-dir", str(data), "events", "lookup", "--max", bad)
        assert out.returncode != 0 and "--max" in out.stderr
    backwards = openims(
        "--data-dir", str(data), "events", "lookup", "--start", "2026-01-02T00:00:00Z", "--end", "2026-01-01T00:00:00Z"
    )
    assert backwards.returncode != 0 and "InvalidParameterCombination" in backwards.stderr
    unreachable = openims(
        "--data-dir",
        str(tmp_path / "other"),
        "serve",
        "--port",
        str(free_port()),
        env={"OPENIMS_DATABASE_URL": f"postgresql://nobody:pw@127.0.0.1:{free_port()}/none"},
    )
    assert unreachable.returncode != 0 and "Traceback" not in unreachable.stderr
    assert "cannot open the database" in unreachable.stderr and ":pw@" not in unreachable.stderr


def test_every_operator_command_is_audited_and_reaches_the_trails(tmp_path: Path) -> None:
    """Events written by the CLI (set-password, a refused unset-mfa, events lookup) are queued for a logging
    trail in the same transaction, so `openims deliver` delivers them like any API event."""
    data = str(tmp_path / "d")
    assert openims("--data-dir", data, "init").returncode == 0
    trail = openims(
        "--data-dir", data, "trail", "create", "audit-trail", "--bucket", "audit-logs", "--event-rw", "All", "--start"
    )
    assert trail.returncode == 0, trail.stderr
    password = subprocess.run(
        [sys.executable, "-m", "openims", "--data-dir", data, "account", "set-password"],
        input="Operator-Pass-2026\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert password.returncode == 0, password.stderr
    refused = openims("--data-dir", data, "account", "unset-mfa")
    assert refused.returncode == 2 and "EntityNotExist" in refused.stderr
    assert openims("--data-dir", data, "events", "lookup").returncode == 0
    delivered = openims("--data-dir", data, "deliver", "--once")
    assert delivered.returncode == 0, delivered.stderr

    events = []
    for path in sorted((tmp_path / "d" / "buckets").rglob("*.gz")):
        events += json.loads(gzip.decompress(path.read_bytes()))
    by_name = {e["eventName"]: e for e in events}
    assert {"StartLogging", "SetAccountPassword", "UnsetAccountMFA", "LookupEvents"} <= set(by_name)
    assert "errorCode" not in by_name["SetAccountPassword"]
    assert by_name["UnsetAccountMFA"]["errorCode"].startswith("EntityNotExist")
    assert {e["userAgent"] for e in events} == {"openims-cli"}

"""Storage that cannot take writes: a full file system (SQLite, on a small tmpfs) and a read-only data dir.
Calls get ServiceUnavailable (503) in the error envelope with one log line and no traceback; service comes back
by itself when storage does; `serve` refuses a data dir it cannot write. (PostgreSQL's own errors for the same
are classified in tests/unit/test_storage_errors.py.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alibabacloud_ims20190815 import models as m
from Tea.exceptions import TeaException

from tests.support import Server, fill, free_port, start_server, tmpfs_data_dir


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    with tmpfs_data_dir(tmp_path, 16) as mount:
        yield mount


def _unavailable(call) -> TeaException:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    err = info.value
    assert (err.code, err.statusCode) == ("ServiceUnavailable", 503), err.message
    assert "storage" in err.message
    return err


def _log(server: Server) -> str:
    return (server.data_dir.parent / f"server-{server.port}.log").read_text(errors="replace")


def test_a_full_disk_answers_503_and_service_returns_with_space(tmp_path: Path, tmpfs: Path) -> None:
    server, cleanup = start_server(tmp_path, "sqlite")
    try:
        acct = server.new_account()
        ims = acct.ims()
        ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn("before"), display_name="b"))
        filler = fill(tmpfs)
        # The write-ahead log's file may still take some commits (a checkpoint leaves its space to reuse): write
        # until storage refuses, then every write is refused.
        for n in range(2000):
            try:
                ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn(f"w{n}"), display_name="w"))
            except TeaException as err:
                assert (err.code, err.statusCode) == ("ServiceUnavailable", 503), err.message
                break
        else:
            pytest.fail("storage never refused a write")
        for n in range(4):
            _unavailable(
                lambda n=n: ims.create_user(
                    m.CreateUserRequest(user_principal_name=acct.upn(f"u{n}"), display_name="u")
                )
            )
        # A read changes nothing, but it is answered only once its event is stored: refused while storage is full,
        # or, when the write-ahead log had room to reuse after a checkpoint, answered with its event stored.
        try:
            read_id = ims.get_user(m.GetUserRequest(user_principal_name=acct.upn("before"))).body.request_id
        except TeaException as err:
            assert (err.code, err.statusCode) == ("ServiceUnavailable", 503), err.message
            read_id = None
        log = _log(server)
        assert "Traceback" not in log and log.count("not stored") >= (5 if read_id else 6)
        filler.unlink()
        upn = acct.upn("after")
        ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="a"))
        assert acct.events(EventName="CreateUser", ResourceName=upn)
        if read_id:
            assert [e["requestId"] for e in acct.events(EventName="GetUser")].count(read_id) == 1
        assert not any(e.get("errorCode") for e in acct.events(EventName="CreateUser"))
    finally:
        cleanup()


def test_serve_refuses_a_data_dir_it_cannot_write(tmp_path: Path, tmpfs: Path) -> None:
    server, cleanup = start_server(tmp_path, "sqlite")
    cleanup()
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    out = subprocess.run(
        [sys.executable, "-m", "openims", "--data-dir", str(server.data_dir), "serve", "--port", str(free_port())],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2, out.stderr
    assert "cannot write to the data dir" in out.stderr and "Traceback" not in out.stderr

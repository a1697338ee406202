"""AccessKey last-use recording: memory only on the hot path, batched writes where the newest use wins."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, insert, select

from openims import accounts, config
from openims.api.protocol import RpcRequest
from openims.api.signing import KeyRecord
from openims.credentials import key_usage
from openims.principal import ROOT, Principal
from openims.runtime import Runtime, open_runtime
from openims.store.tables.keys import access_key_usage


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = open_runtime(
        config.Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'k.db'}"), create=True
    )
    yield runtime
    key_usage.recorder(runtime).take()
    runtime.close()


def key_record(account_id: str, key_id: str) -> KeyRecord:
    return KeyRecord(Principal(account_id, ROOT, account_id, "root", key_id), "secret", "Active")


def request(version: str = "2019-08-15", ip: str = "192.0.2.7") -> RpcRequest:
    return RpcRequest(
        method="POST",
        path="/",
        raw_query="",
        body=b"",
        headers={},
        params={},
        action="GetUser",
        version=version,
        source_ip=ip,
        user_agent="test",
        host="h",
        request_id="R",
    )


def stored(rt: Runtime, key_id: str):  # type: ignore[no-untyped-def]
    with rt.db.read() as conn:
        return conn.execute(select(access_key_usage).where(access_key_usage.c.access_key_id == key_id)).first()


def test_noting_a_use_never_touches_the_database(rt: Runtime) -> None:
    acct = accounts.create_account(rt, "usage-hot")
    statements: list[str] = []
    event.listen(rt.db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    for _ in range(1000):
        key_usage.note_use(rt, key_record(acct.account_id, acct.access_key_id), request())
    assert statements == []
    with rt.db.read() as conn:
        use = key_usage.last_used(rt, conn, [acct.access_key_id])[acct.access_key_id]
    assert (use.service, use.source_ip) == ("Ims", "192.0.2.7")


def test_flush_writes_the_newest_use_once(rt: Runtime) -> None:
    acct = accounts.create_account(rt, "usage-flush")
    key_usage.note_use(rt, key_record(acct.account_id, acct.access_key_id), request("2019-08-15", "192.0.2.1"))
    key_usage.note_use(rt, key_record(acct.account_id, acct.access_key_id), request("2020-07-06", "192.0.2.2"))
    assert key_usage.flush(rt) == 1
    row = stored(rt, acct.access_key_id)
    assert (row.service_name, row.source_ip) == ("Actiontrail", "192.0.2.2")
    assert key_usage.flush(rt) == 0  # nothing new, nothing written


def test_an_older_use_never_overwrites_a_newer_one(rt: Runtime) -> None:
    acct = accounts.create_account(rt, "usage-order")
    # Another server process already stored a use newer than ours.
    with rt.db.transaction() as conn:
        conn.execute(
            insert(access_key_usage).values(
                access_key_id=acct.access_key_id, last_used_ms=10**13, service_name="Ram", source_ip="198.51.100.9"
            )
        )
    key_usage.note_use(rt, key_record(acct.account_id, acct.access_key_id), request())
    key_usage.flush(rt)
    row = stored(rt, acct.access_key_id)
    assert (row.last_used_ms, row.service_name) == (10**13, "Ram")
    with rt.db.read() as conn:
        assert key_usage.last_used(rt, conn, [acct.access_key_id])[acct.access_key_id].service == "Ram"


def test_unknown_keys_are_skipped_and_failed_batches_retried(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    acct = accounts.create_account(rt, "usage-retry")
    key_usage.note_use(rt, key_record(acct.account_id, "LTAIpurgedmeanwhile"), request())
    key_usage.note_use(rt, key_record(acct.account_id, acct.access_key_id), request())

    def broken():  # type: ignore[no-untyped-def]
        raise RuntimeError("database down")

    with monkeypatch.context() as patch:
        patch.setattr(rt.db, "transaction", broken)
        with pytest.raises(RuntimeError):
            key_usage.flush(rt)
    assert stored(rt, acct.access_key_id) is None
    assert key_usage.flush(rt) == 1
    assert stored(rt, acct.access_key_id).source_ip == "192.0.2.7"


def test_shutdown_flushes_what_is_pending(rt: Runtime) -> None:
    acct = accounts.create_account(rt, "usage-stop")

    async def run() -> None:
        task = asyncio.create_task(key_usage.flusher(rt))
        await asyncio.sleep(0)
        key_usage.note_use(rt, key_record(acct.account_id, acct.access_key_id), request())
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())
    assert stored(rt, acct.access_key_id).service_name == "Ims"

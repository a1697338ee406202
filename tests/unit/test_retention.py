"""Events older than the retention period, and spent nonces, are purged."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, insert, select

from openims import clock, config, maintenance
from openims.runtime import open_runtime
from openims.store.schema import events, signature_nonces


def test_purge_respects_retention(tmp_path: Path) -> None:
    settings = config.Settings(
        data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'x.db'}", event_retention_days=90
    )
    rt = open_runtime(settings, create=True)
    now = clock.now_ms()
    day = clock.DAY_MS
    with rt.db.transaction() as conn:
        for i, age_days in enumerate((1, 89, 91, 400)):
            conn.execute(
                insert(events).values(
                    event_id=f"E{i}",
                    account_id="1",
                    event_ms=now - age_days * day,
                    event_name="X",
                    event_rw="Read",
                    service_name="Ims",
                    body="{}",
                )
            )
        conn.execute(insert(signature_nonces).values(access_key_id="k", nonce="old", expires_ms=now - 1))
        conn.execute(insert(signature_nonces).values(access_key_id="k", nonce="live", expires_ms=now + 60_000))
    removed = maintenance.purge(rt)
    assert removed["events"] == 2 and removed["nonces"] == 1
    with rt.db.read() as conn:
        assert sorted(conn.execute(select(events.c.event_id)).scalars()) == ["E0", "E1"]
        assert conn.execute(select(func.count()).select_from(signature_nonces)).scalar_one() == 1
    rt.close()


def test_spent_nonces_go_in_small_batches(tmp_path: Path) -> None:
    """Many expired nonces are all purged, a bounded batch per transaction, and live ones stay."""
    rt = open_runtime(config.Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'n.db'}"), create=True)
    now = clock.now_ms()
    spent = maintenance.NONCE_BATCH * 2 + 7
    with rt.db.transaction() as conn:
        conn.execute(
            insert(signature_nonces),
            [{"access_key_id": "k", "nonce": f"old-{i}", "expires_ms": now - 1} for i in range(spent)]
            + [{"access_key_id": "k", "nonce": "live", "expires_ms": now + 60_000}],
        )
    assert maintenance.purge(rt)["nonces"] == spent
    with rt.db.read() as conn:
        assert list(conn.execute(select(signature_nonces.c.nonce)).scalars()) == ["live"]
    rt.close()

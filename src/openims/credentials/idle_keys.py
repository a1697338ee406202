"""MaxIdleDaysForAccessKeys, enforced as Alibaba does: a RAM user's AccessKey that has not signed a request for
that many days (or, never used, was created that long ago) is disabled by housekeeping, which runs every few
minutes instead of Alibaba's "on the next day". Each is an UpdateAccessKey event by the system in the key's
account. Root AccessKeys are not RAM users' keys, and Alibaba leaves them alone too."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, Row, select, update

from openims import clock
from openims.actions.access_keys import ACCESS_KEY
from openims.actions.security_preference import IDLE_DAY_CHOICES, load_preferences
from openims.actions.users import USER
from openims.audit import outside_api
from openims.credentials import key_usage
from openims.principal import SYSTEM, Principal
from openims.runtime import Runtime
from openims.store.schema import access_keys, users

REASON = "MaxIdleDaysForAccessKeys"


def disable_idle_keys(rt: Runtime) -> int:
    """Disable every idle RAM-user AccessKey, each with its event; returns how many were disabled."""
    now = clock.now_ms()
    with rt.db.read() as conn:
        idle = _idle(rt, conn, _candidates(conn, now), now)
    by_account: dict[str, list[Row[Any]]] = defaultdict(list)
    for key, _days in idle:
        by_account[key.account_id].append(key)
    disabled = 0
    for account_id, keys in by_account.items():
        with rt.db.transaction() as conn:
            rt.db.serialize_account(conn, account_id)
            # Looked at again in the transaction: a key used or changed meanwhile stays as it is.
            for key, days in _idle(rt, conn, keys, now):
                disabled += _disable(rt, conn, key, days, now)
    return disabled


def _candidates(conn: Connection, now: int) -> list[Any]:
    """Active keys of live RAM users older than the shortest idle period any account may set."""
    oldest = now - min(IDLE_DAY_CHOICES) * clock.DAY_MS
    query = (
        select(access_keys.c.id, access_keys.c.account_id, access_keys.c.created_ms, users.c.upn)
        .join(users, users.c.id == access_keys.c.user_id)
        .where(
            access_keys.c.status == "Active",
            access_keys.c.deleted_ms.is_(None),
            access_keys.c.created_ms < oldest,
            users.c.deleted_ms.is_(None),
        )
    )
    return list(conn.execute(query))


def _idle(rt: Runtime, conn: Connection, keys: list[Row[Any]], now: int) -> list[tuple[Row[Any], int]]:
    """The idle keys among `keys`, each with its account's MaxIdleDaysForAccessKeys."""
    used = key_usage.last_used(rt, conn, [k.id for k in keys])
    limits: dict[str, int] = {}
    idle = []
    for key in keys:
        if key.account_id not in limits:
            limits[key.account_id] = load_preferences(conn, key.account_id).max_idle_days_for_access_keys
        last = max(key.created_ms, used[key.id].ms if key.id in used else 0)
        if now - last > limits[key.account_id] * clock.DAY_MS:
            idle.append((key, limits[key.account_id]))
    return idle


def _disable(rt: Runtime, conn: Connection, key: Row[Any], days: int, now: int) -> int:
    changed = conn.execute(
        update(access_keys)
        .where(access_keys.c.id == key.id, access_keys.c.status == "Active", access_keys.c.deleted_ms.is_(None))
        .values(status="Inactive", updated_ms=now)
    ).rowcount
    if changed:
        outside_api.record(
            rt,
            conn,
            "UpdateAccessKey",
            Principal(key.account_id, SYSTEM, "", ""),
            outside_api.HOUSEKEEPING,
            resource_type=ACCESS_KEY,
            resources=[(ACCESS_KEY, key.id), (USER, key.upn)],
            raw_params={"UserPrincipalName": key.upn, "UserAccessKeyId": key.id, "Status": "Inactive"},
            response={},
            additional={"reason": REASON, "maxIdleDays": days},
        )
    return int(changed or 0)

"""The event_resources index: written with each event, read by LookupEvents' ResourceName/ResourceType."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from openims.store.prepared import Prepared
from openims.store.tables.event_resources import event_resources

_INSERT = Prepared(event_resources.insert(), ["event_seq", "resource_type", "resource_name", "account_id", "event_ms"])


def rows(seq: int, account_id: str, event_ms: int, event: dict[str, Any]) -> list[dict[str, Any]]:
    """The index rows of one event: one per resource it names (each at most once)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for rtype, names in (event.get("referencedResources") or {}).items():
        for name in names:
            key = (str(rtype)[:64], str(name)[:255])
            if key[0] and key[1]:
                found[key] = {
                    "event_seq": seq,
                    "resource_type": key[0],
                    "resource_name": key[1],
                    "account_id": account_id,
                    "event_ms": event_ms,
                }
    return list(found.values())


def add(conn: Connection, found: list[dict[str, Any]]) -> None:
    """Insert an event's index rows (`rows`), in the transaction that records it (one insert of a few rows)."""
    _INSERT.execute_many(conn, found)

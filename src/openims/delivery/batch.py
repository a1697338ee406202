"""The unit of trail delivery: one batch of events, and the error every sink raises."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Batch:
    """Events of one trail to deliver together; `batch_id` is deterministic so retries can be recognised."""

    trail_name: str
    account_id: str
    region: str
    batch_id: str
    events: list[dict[str, Any]]


class DeliveryError(Exception):
    """A sink could not deliver a batch; the message is safe to log and to show (never holds credentials)."""


def event_time(event: dict[str, Any]) -> datetime:
    """The event's `eventTime` (`YYYY-MM-DDThh:mm:ssZ`) as an aware UTC datetime."""
    return datetime.strptime(event["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

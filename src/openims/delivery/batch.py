"""The unit of trail delivery: one batch of events, and the error every sink raises."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from openims.integrity.coverage import Leaf


@dataclass(frozen=True)
class Batch:
    """Events of one trail to deliver together; `batch_id` is deterministic so retries can be recognised."""

    trail_name: str
    account_id: str
    region: str
    batch_id: str
    events: list[dict[str, Any]]
    # Each event's place in the account's tamper-evident log, by eventId, where known (docs/integrity.md).
    leaves: Mapping[str, Leaf] = field(default_factory=dict)

    def leaf(self, event: Mapping[str, Any]) -> tuple[int, str] | None:
        """The event's leaf index and base64 leaf hash, as SLS, syslog and webhook records carry them."""
        found = self.leaves.get(str(event.get("eventId")))
        return (found.index, base64.b64encode(found.hash).decode()) if found is not None else None


class DeliveryError(Exception):
    """A sink could not deliver a batch; the message is safe to log and to show (never holds credentials)."""


def event_time(event: dict[str, Any]) -> datetime:
    """The event's `eventTime` (`YYYY-MM-DDThh:mm:ssZ`) as an aware UTC datetime."""
    return datetime.strptime(event["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

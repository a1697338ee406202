"""Delivery to an Alibaba Cloud Log Service (SLS) Logstore, the way ActionTrail writes it.

Each event becomes one log with topic `actiontrail_audit_event`, the log time set to the eventTime and a
field `event` holding the whole event JSON, plus `leafIndex` and `leafHash` (base64): its place in the
tamper-evident log (docs/integrity.md), which every event has by delivery time. The Logstore defaults to
`actiontrail_<trail name>`.
SLS PutLogs has no idempotency key, so delivery is at-least-once: a retried batch can store its events
twice. Every log group carries the tag `openims_batch_id` (`__tag__:openims_batch_id` in queries), and
readers deduplicate on `event.eventId`. The SDK retries connection errors and 5xx itself (up to 10 tries,
1 s apart), so a dead endpoint fails after about 10 s rather than at once.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

from aliyun.log import LogClient, LogException, LogItem, PutLogsRequest

from ..batch import Batch, event_time
from .errors import delivery_error

TOPIC = "actiontrail_audit_event"
BATCH_TAG = "openims_batch_id"


class SlsSink:
    """Puts each batch into one Logstore as one log group via the official SDK's PutLogs."""

    def __init__(
        self,
        endpoint: str,
        project: str,
        logstore: str | None,
        access_key_id: str,
        access_key_secret: str,
        *,
        source: str = "openims",
        timeout: float = 5.0,
    ) -> None:
        self.project = project
        self.logstore = logstore
        self._secrets = (access_key_secret, access_key_id)
        # An explicit source stops the SDK from probing the network for a local IP when it is built.
        self._client = LogClient(endpoint, access_key_id, access_key_secret, source=source)
        # The SDK's timeout is typed int after its default, but it goes straight to requests, which takes float.
        self._client.timeout = timeout  # type: ignore[assignment]
        if _is_ip_literal(endpoint):
            # The SDK's raw-IP check fails on "ip:port" and would then prefix the IP with "<project>.".
            self._client._isRowIp = True  # type: ignore[attr-defined]  # private SDK flag, set only by its own IP check

    def logstore_for(self, batch: Batch) -> str:
        """The configured Logstore, else ActionTrail's default name for the batch's trail."""
        return self.logstore or f"actiontrail_{batch.trail_name}"

    def deliver(self, batch: Batch) -> None:
        """Put the batch's events; raises `DeliveryError` when the SDK reports any failure."""
        if not batch.events:
            return
        items = [LogItem(timestamp=int(event_time(e).timestamp()), contents=_contents(batch, e)) for e in batch.events]
        logstore = self.logstore_for(batch)
        request = PutLogsRequest(
            project=self.project,
            logstore=logstore,
            topic=TOPIC,
            logitems=items,
            logtags=[(BATCH_TAG, batch.batch_id)],
        )
        try:
            self._client.put_logs(request)
        except LogException as exc:
            raise delivery_error(f"SLS delivery to {self.project}/{logstore} failed", exc, self._secrets) from None


def _contents(batch: Batch, event: dict[str, Any]) -> list[tuple[str, str]]:
    contents = [("event", json.dumps(event, ensure_ascii=False, separators=(",", ":")))]
    if (leaf := batch.leaf(event)) is not None:
        contents += [("leafIndex", str(leaf[0])), ("leafHash", leaf[1])]
    return contents


def _is_ip_literal(endpoint: str) -> bool:
    host = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True

"""The ActionTrail OSS log files for a batch: their object keys and gzip bytes, shared by S3 and directory sinks."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..batch import Batch, event_time
from . import ObjectStore

# Fixed by ActionTrail's file name format; its meaning is not documented.
_FILE_CODE = "1002"
# The eventType of insight events (openims.insights.catalogue.EVENT_TYPE; sinks import nothing of OpenIMS).
_INSIGHT_EVENT = "ActionTrailInsight"


@dataclass(frozen=True)
class LogFile:
    """One object to store: `key` relative to the bucket, `body` the gzip-compressed JSON array of events."""

    key: str
    body: bytes
    md5: bytes  # digest of body, also sent as Content-MD5
    events: tuple[dict[str, Any], ...] = ()  # what it holds, in order


def log_files(batch: Batch, key_prefix: str) -> list[LogFile]:
    """The log files of a non-empty batch: its insight events (ActionTrailInsight) under ActionTrail's
    `Actiontrail-Insight` path, the others under `Actiontrail`. Same batch, same keys and bytes, so a retry
    overwrites itself."""
    if not batch.events:
        raise ValueError("a log file needs at least one event")
    insight = [e for e in batch.events if e.get("eventType") == _INSIGHT_EVENT]
    other = [e for e in batch.events if e.get("eventType") != _INSIGHT_EVENT]
    return [
        _log_file(kind, found, batch.region, key_prefix)
        for kind, found in (("Actiontrail", other), ("Actiontrail-Insight", insight))
        if found
    ]


def _log_file(kind: str, events: list[dict[str, Any]], region: str, key_prefix: str) -> LogFile:
    payload = json.dumps(events, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    # mtime=0 (and gzip.compress writes no file name) keeps the bytes, hence size, md5 and key, stable.
    body = gzip.compress(payload, mtime=0)
    md5 = hashlib.md5(body, usedforsecurity=False).digest()
    when = event_time(events[0])
    name = f"Actiontrail_{region}_{when:%Y%m%d%H%M%S}_{_FILE_CODE}_{len(events)}_{len(body)}_{md5.hex()}.gz"
    parts = [
        key_prefix.strip("/"),
        "AliyunLogs",
        kind,
        region,
        f"{when:%Y}",
        f"{when:%m}",
        f"{when:%d}",
        name,
    ]
    return LogFile(key="/".join(p for p in parts if p), body=body, md5=md5, events=tuple(events))


def store_log_files(sink: ObjectStore, batch: Batch) -> list[LogFile]:
    """Store the batch's log files in a bucket-like sink; returns them (none for an empty batch)."""
    if not batch.events:
        return []
    files = log_files(batch, sink.key_prefix)
    for obj in files:
        # A .gz file, not a gzip-encoded JSON document: no Content-Encoding, or HTTP clients would silently
        # decompress it on download.
        sink.store(obj.key, obj.body, "application/gzip")
    return files

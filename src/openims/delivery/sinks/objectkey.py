"""The ActionTrail OSS log file for a batch: its object key and its gzip bytes, shared by S3 and directory sinks."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass

from ..batch import Batch, event_time
from . import ObjectStore

# Fixed by ActionTrail's file name format; its meaning is not documented.
_FILE_CODE = "1002"


@dataclass(frozen=True)
class LogFile:
    """One object to store: `key` relative to the bucket, `body` the gzip-compressed JSON array of events."""

    key: str
    body: bytes
    md5: bytes  # digest of body, also sent as Content-MD5


def log_file(batch: Batch, key_prefix: str) -> LogFile:
    """Build the log file for a non-empty batch; same batch, same key and bytes, so a retry overwrites itself."""
    if not batch.events:
        raise ValueError("a log file needs at least one event")
    payload = json.dumps(batch.events, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    # mtime=0 (and gzip.compress writes no file name) keeps the bytes, hence size, md5 and key, stable.
    body = gzip.compress(payload, mtime=0)
    md5 = hashlib.md5(body, usedforsecurity=False).digest()
    when = event_time(batch.events[0])
    name = f"Actiontrail_{batch.region}_{when:%Y%m%d%H%M%S}_{_FILE_CODE}_{len(batch.events)}_{len(body)}_{md5.hex()}.gz"
    parts = [
        key_prefix.strip("/"),
        "AliyunLogs",
        "Actiontrail",
        batch.region,
        f"{when:%Y}",
        f"{when:%m}",
        f"{when:%d}",
        name,
    ]
    return LogFile(key="/".join(p for p in parts if p), body=body, md5=md5)


def store_log_file(sink: ObjectStore, batch: Batch) -> LogFile | None:
    """Store the batch's log file in a bucket-like sink; returns it (None for an empty batch)."""
    if not batch.events:
        return None
    obj = log_file(batch, sink.key_prefix)
    # A .gz file, not a gzip-encoded JSON document: no Content-Encoding, or HTTP clients would silently
    # decompress it on download.
    sink.store(obj.key, obj.body, "application/gzip")
    return obj

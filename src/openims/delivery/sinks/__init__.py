"""Trail delivery sinks; each has `deliver(batch)` that raises `DeliveryError` and is safe to retry.

Import the sink you need from its module (e.g. `openims.delivery.sinks.s3`), so that optional SDKs
such as the SLS one are only loaded when that sink is used.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..batch import Batch


class Sink(Protocol):
    """What the trail delivery loop needs from a destination."""

    def deliver(self, batch: Batch) -> None: ...


@runtime_checkable
class ObjectStore(Protocol):
    """A bucket-like sink (S3/OSS, or the directory laid out like a bucket), which also takes trail digests."""

    bucket: str
    key_prefix: str

    def deliver(self, batch: Batch) -> None: ...

    def store(self, key: str, body: bytes, content_type: str) -> None: ...

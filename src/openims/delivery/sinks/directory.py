"""Delivery to a local directory laid out like a bucket, for air-gapped installs and tests."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..batch import Batch, DeliveryError
from .errors import delivery_error
from .objectkey import store_log_files


class DirectorySink:
    """Writes each batch's log file to `root/<bucket>/<key>` atomically; a retry replaces the same file."""

    def __init__(self, root: Path, bucket: str, key_prefix: str) -> None:
        self.root = Path(root)
        self.bucket = bucket
        self.key_prefix = key_prefix

    def deliver(self, batch: Batch) -> None:
        """Write the batch's log files; raises `DeliveryError` on any failure."""
        store_log_files(self, batch)

    def store(self, key: str, body: bytes, content_type: str) -> None:
        """Write one object (the content type is the bucket's business only); raises `DeliveryError`."""
        base = (self.root / self.bucket).resolve()
        target = (base / key).resolve()
        # A prefix such as "../x" comes from trail settings; never let it write outside the bucket folder.
        if not target.is_relative_to(base):
            raise DeliveryError(f"object key {key[:200]!r} escapes the bucket directory")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(target, body)
        except OSError as exc:
            raise delivery_error(f"directory delivery to {str(base)!r} failed", exc) from None


def _write_atomically(target: Path, data: bytes) -> None:
    """Readers see either no file or the whole file, never a partial one."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

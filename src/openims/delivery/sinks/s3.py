"""Delivery to an S3-compatible bucket (Alibaba OSS's S3 endpoint, MinIO, Ceph, AWS, moto) in ActionTrail's layout."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..batch import Batch
from .errors import delivery_error
from .objectkey import store_log_files

# Fail fast on a dead endpoint: the trail loop retries the batch later anyway.
_TIMEOUT_SECONDS = 5
_MAX_ATTEMPTS = 2


class S3Sink:
    """Writes one gzip JSON object per batch (two when it holds insight events) with `put_object`; a retry
    rewrites the same keys."""

    def __init__(
        self,
        bucket: str,
        key_prefix: str,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.key_prefix = key_prefix
        self._secrets = (secret_access_key, access_key_id)
        config = Config(
            # Path-style: OSS's S3 endpoint, MinIO and Ceph do not all resolve bucket subdomains.
            s3={"addressing_style": "path"},
            connect_timeout=_TIMEOUT_SECONDS,
            read_timeout=_TIMEOUT_SECONDS,
            retries={"max_attempts": _MAX_ATTEMPTS, "mode": "standard"},
            # botocore >= 1.36 adds x-amz-checksum-* headers by default, which OSS, older MinIO and Ceph
            # reject; integrity comes from the Content-MD5 we send instead.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            # botocore refuses to sign without a region; any name works for most S3-compatible servers.
            region_name=region or "us-east-1",
            config=config,
        )

    def deliver(self, batch: Batch) -> None:
        """Store the batch's log files; raises `DeliveryError` on any failure."""
        store_log_files(self, batch)

    def store(self, key: str, body: bytes, content_type: str) -> None:
        """Put one object; raises `DeliveryError` on any failure."""
        md5 = hashlib.md5(body, usedforsecurity=False).digest()
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentMD5=base64.b64encode(md5).decode(),
                ContentType=content_type,
            )
        except (BotoCoreError, ClientError) as exc:
            raise delivery_error(f"S3 delivery to bucket {self.bucket!r} failed", exc, self._secrets) from None

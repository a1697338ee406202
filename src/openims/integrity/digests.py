"""Trail digest files: the signed, chained record of the event files a trail delivered to a bucket, in the spirit
of AWS CloudTrail's digest files (docs/integrity.md, "Trail digests"). One digest per delivered event file
(per delivery batch), written right after it, under

    <prefix>/AliyunLogs/Actiontrail-Digest/<region>/<YYYY>/<MM>/<DD>/
        Actiontrail-Digest_<region>_<trail>_<YYYYMMDDhhmmss>_<sequence>.json

A digest is a JSON object (format `openims-trail-digest/v1`) naming itself (`digestKey`, `sequence` in its
trail's chain), the previous digest (`previousDigestKey`, `previousDigestSha256` of its bytes,
`previousDigestSignature`; all null for the first), each event file (`key`, `sha256` of its bytes, `eventCount`,
`firstEventId`, `lastEventId`, `leafIndexes` of its events in the log, and `inclusionProof`, a multi-leaf
inclusion proof of them against `checkpoint`), the signed `checkpoint` of the account's log that covers them,
`keyId` and `signature`: Ed25519 with the log's signing key over the canonical JSON (integrity.canonical) of the
object without its `signature` member.

Standard library and `cryptography` only, and nothing of OpenIMS but the log's own format modules, so an auditor
can read or copy it."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from openims.integrity.canonical import canonical_event

FORMAT = "openims-trail-digest/v1"
FOLDER = "Actiontrail-Digest"


def digest_key(prefix: str, region: str, trail_name: str, when: datetime, sequence: int) -> str:
    """Where the digest of `sequence` goes: next to ActionTrail's event files, in a folder of its own."""
    name = f"{FOLDER}_{region}_{trail_name}_{when:%Y%m%d%H%M%S}_{sequence:010d}.json"
    parts = [prefix.strip("/"), "AliyunLogs", FOLDER, region, f"{when:%Y}", f"{when:%m}", f"{when:%d}", name]
    return "/".join(p for p in parts if p)


def is_digest_key(key: str) -> bool:
    return f"AliyunLogs/{FOLDER}/" in f"/{key}" and key.endswith(".json")


def signed_bytes(doc: Mapping[str, Any]) -> bytes:
    """What the signature covers: the canonical JSON of the digest without its `signature` member."""
    return canonical_event({k: v for k, v in doc.items() if k != "signature"})


def sign(doc: dict[str, Any], key_id: str, private_key: Ed25519PrivateKey) -> tuple[bytes, str]:
    """The digest's bytes as stored (`doc` with its key ID and signature, canonical JSON) and the signature."""
    doc = {**doc, "keyId": key_id}
    doc["signature"] = base64.b64encode(private_key.sign(signed_bytes(doc))).decode()
    return canonical_event(doc), doc["signature"]


def signature_problem(doc: Any, keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """Why `doc` is not a digest signed by one of `keys` (by key ID), or None."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return f"not an OpenIMS trail digest (format {FORMAT} expected)"
    key = keys.get(str(doc.get("keyId")))
    if key is None:
        return f"signed by key {str(doc.get('keyId'))[:40]!r}, which is not among the keys given"
    try:
        key.verify(base64.b64decode(str(doc.get("signature")), validate=True), signed_bytes(doc))
    except (InvalidSignature, binascii.Error, ValueError):
        return "its signature does not verify: forged or edited"
    return None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

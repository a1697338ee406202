"""`openims trail verify`: check a trail's delivered bucket (a directory laid out like one, or an S3/OSS prefix)
against its digest files, offline, with nothing but the objects and the log's public keys (no database).

Checked: every digest's signature; each trail's chain of digests (sequence numbers without gaps from 0, each
naming its predecessor's key, SHA-256 and signature); every event file a digest lists is there with the SHA-256
it lists; no event file is in no digest; and each file's events are in the account's log, by the inclusion
proof the digest carries against a signed checkpoint. Problems are reported in chain order, so the first one
printed is where the delivered history first differs."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from openims.integrity import checkpoint, digests, merkle
from openims.integrity.canonical import canonical_event
from openims.integrity.proofs import hashes_of


class Objects(Protocol):
    """A bucket's objects under a prefix, by key relative to the bucket."""

    def listing(self) -> Iterator[str]: ...

    def read(self, key: str) -> bytes: ...


class DirectoryObjects:
    """A directory laid out like a bucket (the trail directory default, or a bucket synced to disk)."""

    def __init__(self, root: Path, prefix: str = "") -> None:
        if not root.is_dir():
            raise ValueError(f"{root} is not a directory")
        self.root, self.prefix = root, prefix.strip("/")

    def listing(self) -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            # `.tmp-` files are the directory sink's writes in progress (renamed into place when complete).
            if path.is_file() and not path.name.startswith(".tmp-") and key.startswith(self.prefix):
                yield key

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


class S3Objects:
    """An S3-compatible bucket (OSS's S3 endpoint, MinIO, AWS) under a prefix."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    def listing(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())


@dataclass
class Chain:
    """One trail's digests at one destination."""

    account_id: str
    trail_name: str
    digests: list[tuple[str, bytes, dict[str, Any]]] = field(default_factory=list)  # key, bytes, document


@dataclass
class Report:
    digests: int = 0
    files: int = 0
    events: int = 0
    proven: int = 0  # events shown to be in the signed log
    problems: list[str] = field(default_factory=list)
    chains: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def verify(objects: Objects, public_keys: list[Ed25519PublicKey]) -> Report:
    keys = {checkpoint.key_id(k): k for k in public_keys}
    report = Report()
    digest_keys, log_keys, other = [], set(), 0
    for key in objects.listing():
        if digests.is_digest_key(key):
            digest_keys.append(key)
        elif f"/{key}".find("/AliyunLogs/Actiontrail/") >= 0 and key.endswith(".gz"):
            log_keys.add(key)
        else:
            other += 1
    if other:
        report.notes.append(f"{other} other objects (neither event files nor digests) were not checked")
    chains = _chains(objects, digest_keys, keys, report)
    listed: dict[str, str] = {}  # event file -> the digest that lists it
    roots: dict[tuple[str, int], bytes] = {}
    work = [(key, doc, entry) for c in chains for key, _, doc in c.digests for entry in doc.get("logFiles") or []]
    bodies = _prefetched(objects, [str(entry.get("key")) for _, _, entry in work], log_keys)
    for chain in chains:
        # In chain order, each digest's own problems, then its files': the first line is where history differs.
        links = _check_chain(chain, report)
        for key, _, doc in chain.digests:
            report.problems += links.get(key, [])
            for entry in doc.get("logFiles") or []:
                body = next(bodies)
                try:
                    _check_file(body, key, doc, entry, keys, roots, report)
                except (ValueError, TypeError, KeyError, OSError, EOFError) as exc:  # gzip, JSON, a bad proof
                    report.problems.append(f"event file {entry.get('key')}: cannot be checked: {type(exc).__name__}")
                listed.setdefault(str(entry.get("key")), key)
    for key in sorted(log_keys - set(listed)):
        report.problems.append(f"event file {key}: in no digest: added (or its digest is still being written)")
    if report.proven < report.events:
        report.notes.append(
            f"{report.events - report.proven:,} events have no inclusion proof in their digest (not in the log "
            f"when delivered, or the log could not be read then): their files' hashes are checked, not their leaves"
        )
    return report


def _chains(
    objects: Objects, digest_keys: list[str], keys: Mapping[str, Ed25519PublicKey], report: Report
) -> list[Chain]:
    found: dict[tuple[str, ...], Chain] = {}
    for key in digest_keys:
        body = objects.read(key)
        report.digests += 1
        try:
            doc = json.loads(body)
        except ValueError:
            report.problems.append(f"digest {key}: not valid JSON: edited")
            continue
        if why := digests.signature_problem(doc, keys):
            report.problems.append(f"digest {key}: {why}")
            continue
        if doc.get("digestKey") != key:
            report.problems.append(f"digest {key}: holds the digest of {doc.get('digestKey')}: moved or copied")
            continue
        ident = (str(doc.get("accountId")), str(doc.get("trailName")), str(doc.get("bucket")), str(doc.get("prefix")))
        found.setdefault(ident, Chain(ident[0], ident[1])).digests.append((key, body, doc))
    for chain in found.values():
        chain.digests.sort(key=lambda d: int(d[2].get("sequence", -1)))
    return [found[k] for k in sorted(found)]


def _check_chain(chain: Chain, report: Report) -> dict[str, list[str]]:
    """The chain's problems, by the digest they are found at."""
    name = f"trail {chain.trail_name} of account {chain.account_id}"
    found: dict[str, list[str]] = {}
    previous: tuple[str, bytes, dict[str, Any]] | None = None
    for key, body, doc in chain.digests:
        problems = found.setdefault(key, [])
        sequence = int(doc.get("sequence", -1))
        link = (doc.get("previousDigestKey"), doc.get("previousDigestSha256"), doc.get("previousDigestSignature"))
        if previous is None:
            if sequence != 0:
                problems.append(
                    f"digest {key} ({name}, sequence {sequence}): the digests before it are missing, from "
                    f"{link[0]}: deleted"
                )
        elif sequence == int(previous[2]["sequence"]):
            problems.append(f"digest {key} ({name}): a second digest with sequence {sequence}")
            continue
        elif sequence != int(previous[2]["sequence"]) + 1:
            problems.append(
                f"digest {key} ({name}, sequence {sequence}): digests after {previous[0]} are missing, "
                f"up to {link[0]}: deleted"
            )
        elif link != (previous[0], digests.sha256_hex(previous[1]), previous[2].get("signature")):
            problems.append(f"digest {key} ({name}): does not follow digest {previous[0]}: the chain was rewritten")
        previous = (key, body, doc)
    if chain.digests:
        first, last = chain.digests[0][2], chain.digests[-1][2]
        report.chains.append(
            f"{name}: digests {first.get('sequence')} to {last.get('sequence')}, newest {last.get('digestTime')}"
        )
    return found


def _check_file(
    body: bytes | Exception | None,
    digest: str,
    doc: dict[str, Any],
    entry: dict[str, Any],
    keys: Mapping[str, Ed25519PublicKey],
    roots: dict[tuple[str, int], bytes],
    report: Report,
) -> None:
    key = str(entry.get("key"))
    if body is None:
        report.problems.append(f"event file {key} (listed in digest {digest}): deleted")
        return
    if isinstance(body, Exception):
        report.problems.append(f"event file {key}: cannot be read: {type(body).__name__}")
        return
    report.files += 1
    if hashlib.sha256(body).hexdigest() != entry.get("sha256"):
        report.problems.append(f"event file {key}: modified (its SHA-256 is not the one digest {digest} lists)")
        return
    events = json.loads(gzip.decompress(body))
    report.events += len(events)
    indexes, proof, cp_json = entry.get("leafIndexes") or [], entry.get("inclusionProof"), doc.get("checkpoint")
    if proof is None or cp_json is None or len(indexes) != len(events):
        return
    cp = checkpoint.from_json(cp_json)
    key_of_cp = keys.get(cp.key_id)
    if key_of_cp is None or not checkpoint.verify(cp, key_of_cp) or cp.account_id != doc.get("accountId"):
        report.problems.append(f"digest {digest}: its checkpoint at size {cp.size} is not signed by a key given")
        return
    if roots.setdefault((cp.account_id, cp.size), cp.root) != cp.root:
        report.problems.append(f"digest {digest}: two signed checkpoints of size {cp.size} with different roots")
        return
    leaves = {i: merkle.leaf_hash(canonical_event(e)) for i, e in zip(indexes, events, strict=True) if i is not None}
    if leaves and not merkle.verify_multi_inclusion(leaves, cp.size, hashes_of(entry, "inclusionProof"), cp.root):
        report.problems.append(
            f"event file {key}: its events are not those of the account's signed log at size {cp.size} "
            f"(an event was changed before delivery)"
        )
        return
    report.proven += len(leaves)


READERS = 8  # objects read at once: a remote bucket answers each GET in tens of milliseconds


def _prefetched(objects: Objects, keys: list[str], present: set[str]) -> Iterator[bytes | Exception | None]:
    """The bytes of each of `keys` in order (None for one not present, the exception for one that cannot be
    read), read READERS at a time, a bounded window ahead."""

    def read(key: str) -> bytes | Exception | None:
        if key not in present:
            return None
        try:
            return objects.read(key)
        except Exception as exc:  # noqa: BLE001  (OSError, botocore's errors: reported per file)
            return exc

    with ThreadPoolExecutor(READERS) as pool:
        ahead = iter(keys)
        pending = deque(pool.submit(read, key) for key in islice(ahead, READERS * 2))
        while pending:
            body = pending.popleft().result()
            if (key := next(ahead, None)) is not None:
                pending.append(pool.submit(read, key))
            yield body

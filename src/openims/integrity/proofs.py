"""Self-contained proof documents (JSON), checked offline with nothing but the public key:

- inclusion, `openims-inclusion-proof/v1`: `event` (as LookupEvents serves it), `leafIndex`, `treeSize`,
  `auditPath` (RFC 6962 PATH, base64 hashes from the leaf up) and `checkpoint`, the signed checkpoint whose root
  the path leads to;
- consistency, `openims-consistency-proof/v1`: `from` and `to`, two signed checkpoints of one account, and
  `proof` (RFC 6962 PROOF, base64 hashes) that the later tree only appends to the earlier one.

Checkpoints are in the JSON form of `checkpoints.to_json`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from openims.integrity import checkpoint as checkpoints
from openims.integrity import merkle
from openims.integrity.canonical import canonical_event

INCLUSION = "openims-inclusion-proof/v1"
CONSISTENCY = "openims-consistency-proof/v1"


class _Malformed(ValueError):
    pass


def inclusion_document(
    event: dict[str, Any], leaf_index: int, proof: list[bytes], checkpoint: checkpoints.Checkpoint
) -> dict[str, Any]:
    return {
        "format": INCLUSION,
        "event": event,
        "leafIndex": leaf_index,
        "treeSize": checkpoint.size,
        "auditPath": [_b64(p) for p in proof],
        "checkpoint": checkpoints.to_json(checkpoint),
    }


def consistency_document(
    old: checkpoints.Checkpoint, new: checkpoints.Checkpoint, proof: list[bytes]
) -> dict[str, Any]:
    return {
        "format": CONSISTENCY,
        "from": checkpoints.to_json(old),
        "to": checkpoints.to_json(new),
        "proof": [_b64(p) for p in proof],
    }


def verify_document(doc: Any, public_keys: Sequence[Ed25519PublicKey]) -> tuple[bool, str]:
    """Check a proof document against the given keys: (ok, a one-line reason). Never raises: a malformed
    document is (False, what is wrong)."""
    try:
        keys = {checkpoints.key_id(k): k for k in public_keys}
        if not isinstance(doc, dict):
            return False, "not an OpenIMS proof document (not a JSON object)"
        if doc.get("format") == INCLUSION:
            return _inclusion(doc, keys)
        if doc.get("format") == CONSISTENCY:
            return _consistency(doc, keys)
        return False, f"not an OpenIMS proof document (format {str(doc.get('format'))[:60]!r})"
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        return False, f"malformed proof document: {_one_line(exc)}"


def _inclusion(doc: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> tuple[bool, str]:
    cp = checkpoints.from_json(doc.get("checkpoint"))
    event, index = doc.get("event"), doc.get("leafIndex")
    if not isinstance(event, dict):
        raise _Malformed("the event is not a JSON object")
    if isinstance(index, bool) or not isinstance(index, int):
        raise _Malformed("leafIndex is not a number")
    if doc.get("treeSize") != cp.size:
        raise _Malformed(f"treeSize {doc.get('treeSize')!r} is not the checkpoint's size {cp.size}")
    path = hashes_of(doc, "auditPath")
    if why := _unsigned(cp, keys):
        return False, why
    if event.get("recipientAccountId") != cp.account_id:
        return False, f"the event belongs to account {event.get('recipientAccountId')!r}, the log to {cp.account_id}"
    name = f"event {str(event.get('eventId'))[:80]}"
    if not 0 <= index < cp.size:
        return False, f"{name}: position {index} is outside the signed log of {cp.size}"
    leaf = merkle.leaf_hash(canonical_event(event))
    if not merkle.verify_inclusion(leaf, index, cp.size, path, cp.root):
        return False, f"{name} is not at position {index} of the signed log of {cp.size} (edited, or a wrong path)"
    where = f"the log of account {cp.account_id} signed at size {cp.size} by key {cp.key_id}"
    return True, f"{name} is at position {index} of {where}"


def _consistency(doc: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> tuple[bool, str]:
    old, new = checkpoints.from_json(doc.get("from")), checkpoints.from_json(doc.get("to"))
    proof = hashes_of(doc, "proof")
    for cp in (old, new):
        if why := _unsigned(cp, keys):
            return False, why
    if old.account_id != new.account_id:
        return False, f"the two checkpoints belong to different accounts ({old.account_id}, {new.account_id})"
    if old.size > new.size:
        return False, f"the 'from' checkpoint (size {old.size}) is larger than the 'to' checkpoint ({new.size})"
    if not merkle.verify_consistency(old.size, new.size, old.root, new.root, proof):
        return False, f"the log of {new.size} does not extend the log of {old.size}: history was rewritten"
    return True, f"the log of account {new.account_id} at size {new.size} extends its log at size {old.size}"


def _unsigned(cp: checkpoints.Checkpoint, keys: dict[str, Ed25519PublicKey]) -> str | None:
    """Why `cp` is not signed by one of `keys`, or None."""
    key = keys.get(cp.key_id)
    if key is None:
        return f"the checkpoint at size {cp.size} is signed by key {cp.key_id}, which is not among the keys given"
    if not checkpoints.verify(cp, key):
        return f"the signature of the checkpoint at size {cp.size} does not verify with key {cp.key_id}"
    return None


def hashes_of(doc: dict[str, Any], name: str) -> list[bytes]:
    values = doc.get(name)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise _Malformed(f"{name} is not a list of base64 hashes")
    try:
        hashes = [base64.b64decode(v, validate=True) for v in values]
    except binascii.Error:
        raise _Malformed(f"{name} holds something that is not base64") from None
    if any(len(h) != merkle.HASH_SIZE for h in hashes):
        raise _Malformed(f"{name} holds something that is not a 32-byte hash")
    return hashes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__

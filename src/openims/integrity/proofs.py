"""Self-contained proof documents, checked offline with nothing but the public key:

- inclusion (`openims-inclusion-proof/v1`): the event, its leaf index, the audit path from its leaf to the root
  of a signed checkpoint, and that checkpoint;
- consistency (`openims-consistency-proof/v1`): two signed checkpoints of one account and the proof that the
  later tree only appends to the earlier one."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from openims.integrity import checkpoint, merkle
from openims.integrity.canonical import canonical_event

INCLUSION = "openims-inclusion-proof/v1"
CONSISTENCY = "openims-consistency-proof/v1"


def inclusion_document(
    event: dict[str, Any], leaf_index: int, proof: list[bytes], cp: checkpoint.Checkpoint
) -> dict[str, Any]:
    return {
        "format": INCLUSION,
        "event": event,
        "leafIndex": leaf_index,
        "treeSize": cp.size,
        "auditPath": [base64.b64encode(p).decode() for p in proof],
        "checkpoint": checkpoint.to_json(cp),
    }


def consistency_document(old: checkpoint.Checkpoint, new: checkpoint.Checkpoint, proof: list[bytes]) -> dict[str, Any]:
    return {
        "format": CONSISTENCY,
        "from": checkpoint.to_json(old),
        "to": checkpoint.to_json(new),
        "proof": [base64.b64encode(p).decode() for p in proof],
    }


def verify_document(doc: Any, public_keys: Sequence[Ed25519PublicKey]) -> tuple[bool, str]:
    """Check a proof document; (ok, a one-line reason). A malformed document is (False, why), never an error."""
    keys = {checkpoint.key_id(k): k for k in public_keys}
    try:
        if doc.get("format") == INCLUSION:
            return _inclusion(doc, keys)
        if doc.get("format") == CONSISTENCY:
            return _consistency(doc, keys)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return False, f"malformed proof document ({exc.__class__.__name__}: {exc})"
    return False, "not an OpenIMS proof document (unknown format)"


def _signed(cp: checkpoint.Checkpoint, keys: dict[str, Ed25519PublicKey]) -> str | None:
    key = keys.get(cp.key_id)
    if key is None:
        return f"the checkpoint is signed by key {cp.key_id}, which is not among the keys given"
    if not checkpoint.verify(cp, key):
        return f"the signature of the checkpoint at size {cp.size} does not verify"
    return None


def _inclusion(doc: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> tuple[bool, str]:
    cp = checkpoint.from_json(doc["checkpoint"])
    if why := _signed(cp, keys):
        return False, why
    event = doc["event"]
    index = int(doc["leafIndex"])
    path = [base64.b64decode(p) for p in doc["auditPath"]]
    if event.get("recipientAccountId") != cp.account_id:
        return False, "the event belongs to another account than the checkpoint"
    leaf = merkle.leaf_hash(canonical_event(event))
    if not merkle.verify_inclusion(leaf, index, cp.size, path, cp.root):
        return False, f"event {event.get('eventId')} is not at position {index} of the signed log (edited?)"
    return True, f"event {event.get('eventId')} is at position {index} of the log of {cp.size} signed by {cp.key_id}"


def _consistency(doc: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> tuple[bool, str]:
    old, new = checkpoint.from_json(doc["from"]), checkpoint.from_json(doc["to"])
    for cp in (old, new):
        if why := _signed(cp, keys):
            return False, why
    if old.account_id != new.account_id:
        return False, "the two checkpoints belong to different accounts"
    proof = [base64.b64decode(p) for p in doc["proof"]]
    if not merkle.verify_consistency(old.size, new.size, old.root, new.root, proof):
        return False, f"the log of {new.size} does not extend the log of {old.size}"
    return True, f"the log of {new.size} extends the log of {old.size}: it was only appended to"

"""RFC 6962 Merkle trees, proofs and signed checkpoints (openims.integrity): a published test vector, and
every inclusion and consistency proof of every tree up to 40 leaves, each failing when anything changes."""

from __future__ import annotations

import hashlib

from openims.integrity import checkpoint, merkle, proofs
from openims.integrity.canonical import canonical_event

# certificate-transparency-go's merkle test leaves, and the root of all eight.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOT = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
FLIP = hashlib.sha256(b"other").digest()


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(str(i).encode()) for i in range(n)]


def test_the_published_vector() -> None:
    assert merkle.root([merkle.leaf_hash(d) for d in CT_LEAVES]).hex() == CT_ROOT
    assert merkle.root([]) == hashlib.sha256(b"").digest()


def test_frontier_roots_and_serialization() -> None:
    frontier = merkle.Frontier()
    all_leaves = leaves(70)
    for n, leaf in enumerate(all_leaves, 1):
        frontier.append(leaf)
        assert frontier.root() == merkle.root(all_leaves[:n])
        again = merkle.Frontier.from_json(frontier.to_json())
        assert (again.size, again.root()) == (n, frontier.root())
    assert merkle.roots_at([1, 5, 64, 70], all_leaves) == {n: merkle.root(all_leaves[:n]) for n in (1, 5, 64, 70)}


def test_every_inclusion_proof() -> None:
    for n in range(1, 41):
        tree = leaves(n)
        top = merkle.root(tree)
        for i in range(n):
            path = merkle.inclusion_proof(i, tree)
            assert merkle.verify_inclusion(tree[i], i, n, path, top)
            assert not merkle.verify_inclusion(FLIP, i, n, path, top)
            assert not merkle.verify_inclusion(tree[i], i, n, path, FLIP)
            if n > 1:
                assert not merkle.verify_inclusion(tree[i], (i + 1) % n, n, path, top)


def test_every_consistency_proof() -> None:
    for n in range(1, 41):
        tree = leaves(n)
        new = merkle.root(tree)
        for m in range(1, n + 1):
            old = merkle.root(tree[:m])
            proof = merkle.consistency_proof(m, tree)
            assert merkle.verify_consistency(m, n, old, new, proof), (m, n)
            if m < n:
                assert not merkle.verify_consistency(m, n, FLIP, new, proof)
                assert not merkle.verify_consistency(m, n, old, FLIP, proof)
    assert not merkle.verify_consistency(5, 4, FLIP, FLIP, [])


def test_checkpoints_sign_chain_and_verify() -> None:
    key, other = checkpoint.new_key(), checkpoint.new_key()
    cp = checkpoint.sign(
        checkpoint.Checkpoint("1234567890123456", 3, FLIP, 1, checkpoint.key_id(key.public_key()), bytes(32)), key
    )
    assert checkpoint.verify(cp, key.public_key()) and not checkpoint.verify(cp, other.public_key())
    assert checkpoint.from_json(checkpoint.to_json(cp)) == cp
    for field, value in (("size", 4), ("root", bytes(32)), ("time_ms", 2), ("account_id", "1"), ("previous", FLIP)):
        forged = checkpoint.Checkpoint(**{**cp.__dict__, field: value})
        assert not checkpoint.verify(forged, key.public_key()), field
    pem = checkpoint.public_pem(key.public_key()) + checkpoint.public_pem(other.public_key())
    assert [checkpoint.key_id(k) for k in checkpoint.load_public_pems(pem)] == [
        checkpoint.key_id(key.public_key()),
        checkpoint.key_id(other.public_key()),
    ]


def test_proof_documents_verify_offline() -> None:
    key = checkpoint.new_key()
    events = [{"eventId": f"E{i}", "recipientAccountId": "1", "eventName": "GetUser", "n": i} for i in range(9)]
    tree = [merkle.leaf_hash(canonical_event(e)) for e in events]
    cp = checkpoint.sign(
        checkpoint.Checkpoint("1", 9, merkle.root(tree), 5, checkpoint.key_id(key.public_key()), bytes(32)), key
    )
    doc = proofs.inclusion_document(events[4], 4, merkle.inclusion_proof(4, tree), cp)
    assert proofs.verify_document(doc, [key.public_key()])[0]
    edited = {**doc, "event": {**events[4], "eventName": "DeleteUser"}}
    assert not proofs.verify_document(edited, [key.public_key()])[0]
    assert not proofs.verify_document(doc, [checkpoint.new_key().public_key()])[0]
    assert proofs.verify_document({"format": "nonsense"}, [key.public_key()]) == (
        False,
        "not an OpenIMS proof document (unknown format)",
    )
    assert not proofs.verify_document({**doc, "leafIndex": "x"}, [key.public_key()])[0]
    old = checkpoint.sign(
        checkpoint.Checkpoint("1", 5, merkle.root(tree[:5]), 1, checkpoint.key_id(key.public_key()), bytes(32)), key
    )
    grown = proofs.consistency_document(old, cp, merkle.consistency_proof(5, tree))
    assert proofs.verify_document(grown, [key.public_key()])[0]
    assert not proofs.verify_document({**grown, "proof": []}, [key.public_key()])[0]

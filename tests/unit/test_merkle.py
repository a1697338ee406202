"""RFC 6962 Merkle trees (openims.integrity.merkle): the published Certificate Transparency vectors, and every
root, inclusion proof and consistency proof of every tree up to 70 leaves, each failing when anything changes;
the frontier, roots_at, and proofs for a log whose oldest leaves were purged."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest

from openims.integrity import merkle

MAX = 70
# certificate-transparency-go's merkle test leaves (merkle/log_verifier_test.go), and the root of the first n.
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
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, audit path) and (old size, new size, proof) from the same test.
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
OTHER = hashlib.sha256(b"other").digest()
LEAVES = [merkle.leaf_hash(str(i).encode()) for i in range(MAX)]
CT_HASHES = [merkle.leaf_hash(d) for d in CT_LEAVES]


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 2.1 MTH, written straight from the definition, to check the fast one against."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return merkle.node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


ROOTS = [reference_root(LEAVES[:n]) for n in range(MAX + 1)]


def test_hashing_is_rfc_6962() -> None:
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert merkle.node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    assert merkle.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.root([]) == merkle.EMPTY_ROOT


def test_the_certificate_transparency_vectors() -> None:
    assert [merkle.root(CT_HASHES[:n]).hex() for n in range(1, 9)] == CT_ROOTS
    for index, size, path in CT_INCLUSION:
        assert [p.hex() for p in merkle.inclusion_proof(index, CT_HASHES[:size])] == path
        assert merkle.verify_inclusion(CT_HASHES[index], index, size, [bytes.fromhex(p) for p in path],
                                       bytes.fromhex(CT_ROOTS[size - 1]))  # fmt: skip
    for old, new, proof in CT_CONSISTENCY:
        assert [p.hex() for p in merkle.consistency_proof(old, CT_HASHES[:new])] == proof
        assert merkle.verify_consistency(old, new, bytes.fromhex(CT_ROOTS[old - 1]), bytes.fromhex(CT_ROOTS[new - 1]),
                                         [bytes.fromhex(p) for p in proof])  # fmt: skip


def test_root_of_every_size_matches_the_definition() -> None:
    assert [merkle.root(LEAVES[:n]) for n in range(MAX + 1)] == ROOTS


def test_frontier_at_every_size_and_through_json() -> None:
    frontier = merkle.Frontier()
    assert (frontier.size, frontier.root()) == (0, merkle.EMPTY_ROOT)
    for n, leaf in enumerate(LEAVES, 1):
        frontier.append(leaf)
        assert (frontier.size, frontier.root()) == (n, ROOTS[n])
        assert len(frontier.hashes) == n.bit_count()
        stored = json.loads(json.dumps(frontier.to_json()))
        again = merkle.Frontier.from_json(stored)
        assert again == frontier and again.root() == ROOTS[n]
        # What the lead stores goes on appending without the old leaves.
        for m in range(n, min(n + 5, MAX)):
            again.append(LEAVES[m])
            assert again.root() == ROOTS[m + 1]


@pytest.mark.parametrize(
    "data",
    [
        {"size": 3, "hashes": [bytes(32).hex()]},  # 3 has two set bits
        {"size": -1, "hashes": []},
        {"size": "1", "hashes": [bytes(32).hex()]},
        {"size": 1, "hashes": ["zz" * 32]},
        {"size": 1, "hashes": [bytes(31).hex()]},
        {"size": 1, "hashes": "00" * 32},
        {"hashes": []},
    ],
)
def test_a_malformed_frontier_is_refused(data: dict[str, object]) -> None:
    with pytest.raises((ValueError, KeyError)):
        merkle.Frontier.from_json(data)


def test_roots_at_agrees_with_root() -> None:
    assert merkle.roots_at(range(MAX + 1), LEAVES) == dict(enumerate(ROOTS))
    assert merkle.roots_at([64, 1, 5, 5, 70], iter(LEAVES)) == {n: ROOTS[n] for n in (1, 5, 64, 70)}
    assert merkle.roots_at([0], []) == {0: merkle.EMPTY_ROOT}
    assert merkle.roots_at([], LEAVES) == {}
    # A size beyond the leaves is left out, not guessed.
    assert merkle.roots_at([3, MAX + 1], LEAVES) == {3: ROOTS[3]}
    with pytest.raises(ValueError):
        merkle.roots_at([-1], LEAVES)


def test_roots_at_reads_no_further_than_needed() -> None:
    read = []

    def stream() -> Iterator[bytes]:
        for i, leaf in enumerate(LEAVES):
            read.append(i)
            yield leaf

    assert merkle.roots_at([10], stream()) == {10: ROOTS[10]}
    assert len(read) == 10


def test_roots_at_goes_on_from_a_frontier() -> None:
    for cut in range(MAX + 1):
        start = merkle.Frontier()
        for leaf in LEAVES[:cut]:
            start.append(leaf)
        sizes = range(cut, MAX + 1)
        assert merkle.roots_at(sizes, LEAVES[cut:], start) == {n: ROOTS[n] for n in sizes}
        assert start.size == cut  # the caller's frontier is left as it was
        if cut:
            with pytest.raises(ValueError):
                merkle.roots_at([cut - 1], LEAVES[cut:], start)


def test_every_inclusion_proof_of_every_tree() -> None:
    for n in range(1, MAX + 1):
        tree, top = LEAVES[:n], ROOTS[n]
        for i in range(n):
            path = merkle.inclusion_proof(i, tree)
            assert len(path) <= n.bit_length()
            assert merkle.verify_inclusion(tree[i], i, n, path, top), (i, n)
            assert not merkle.verify_inclusion(OTHER, i, n, path, top)
            assert not merkle.verify_inclusion(tree[i], i, n, path, OTHER)
            assert not merkle.verify_inclusion(tree[i], i, n, path, ROOTS[n - 1])
            others = range(n) if n <= 24 else {(i + 1) % n, (i - 1) % n, i ^ 1, i ^ 2, n - 1 - i}
            for j in set(others) - {i}:
                assert not merkle.verify_inclusion(tree[i], j, n, path, top), (i, j, n)
            for k in range(len(path)):
                assert not merkle.verify_inclusion(tree[i], i, n, [*path[:k], OTHER, *path[k + 1 :]], top)
            assert not merkle.verify_inclusion(tree[i], i, n, [*path, top], top)
            assert not merkle.verify_inclusion(tree[i], i, n, [top, *path], top)
            if path:
                assert not merkle.verify_inclusion(tree[i], i, n, path[:-1], top)


def test_inclusion_edge_cases() -> None:
    assert merkle.inclusion_proof(0, LEAVES[:1]) == []
    assert merkle.verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])
    for index, size in ((0, 0), (1, 1), (-1, 5), (5, 5)):
        assert not merkle.verify_inclusion(LEAVES[0], index, size, [], LEAVES[0])
    with pytest.raises(ValueError):
        merkle.inclusion_proof(5, LEAVES[:5])
    with pytest.raises(ValueError):
        merkle.inclusion_proof(-1, LEAVES[:5])
    with pytest.raises(ValueError):
        merkle.inclusion_proof(0, [])
    # Not hashes: refused, not an exception.
    path = merkle.inclusion_proof(2, LEAVES[:5])
    assert not merkle.verify_inclusion(LEAVES[2], 2, 5, [*path[:-1], path[-1][:31]], ROOTS[5])
    assert not merkle.verify_inclusion(LEAVES[2][:16], 2, 5, path, ROOTS[5])
    assert not merkle.verify_inclusion(LEAVES[2], 2, 5, path, b"")


def test_every_consistency_proof_of_every_tree() -> None:
    for n in range(1, MAX + 1):
        tree, new = LEAVES[:n], ROOTS[n]
        for m in range(n + 1):
            old = ROOTS[m]
            proof = merkle.consistency_proof(m, tree)
            assert merkle.verify_consistency(m, n, old, new, proof), (m, n)
            assert not merkle.verify_consistency(m, n, OTHER, new, proof), (m, n)
            # Every tree extends the empty one: there is nothing to check its root against.
            assert merkle.verify_consistency(m, n, old, OTHER, proof) == (m == 0), (m, n)
            if m in (0, n):
                assert proof == []
                continue
            assert not merkle.verify_consistency(m, n, new, old, proof)
            assert not merkle.verify_consistency(m, n, old, new, [])
            for k in range(len(proof)):
                assert not merkle.verify_consistency(m, n, old, new, [*proof[:k], OTHER, *proof[k + 1 :]])
            assert not merkle.verify_consistency(m, n, old, new, [*proof, new])
            assert not merkle.verify_consistency(m, n, old, new, [proof[0], *proof])
            assert not merkle.verify_consistency(m, n, old, new, proof[:-1])
            for other_m in {m - 1, m + 1, m ^ 2} - {m, 0}:
                if other_m <= n:
                    assert not merkle.verify_consistency(other_m, n, old, new, proof), (other_m, m, n)


def test_consistency_edge_cases() -> None:
    assert merkle.verify_consistency(0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, ROOTS[5], [])
    assert not merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, ROOTS[5], [ROOTS[5]])
    assert merkle.verify_consistency(5, 5, ROOTS[5], ROOTS[5], [])
    assert not merkle.verify_consistency(5, 5, ROOTS[5], ROOTS[5], [ROOTS[5]])
    assert not merkle.verify_consistency(5, 5, ROOTS[5], ROOTS[4], [])
    # The log never shrinks.
    assert not merkle.verify_consistency(5, 4, ROOTS[5], ROOTS[4], merkle.consistency_proof(4, LEAVES[:5]))
    assert not merkle.verify_consistency(-1, 4, ROOTS[0], ROOTS[4], [])
    assert merkle.consistency_proof(0, LEAVES[:5]) == [] == merkle.consistency_proof(5, LEAVES[:5])
    for bad in (-1, 6):
        with pytest.raises(ValueError):
            merkle.consistency_proof(bad, LEAVES[:5])
    proof = merkle.consistency_proof(3, LEAVES[:7])
    assert not merkle.verify_consistency(3, 7, ROOTS[3], ROOTS[7], [*proof[:-1], b"short"])


def test_proofs_after_the_oldest_leaves_were_purged() -> None:
    """With the frontier kept at the cut and the leaves after it, every proof about the rest of the log is
    the same as with every leaf."""
    for n in range(1, 41):
        for cut in range(n + 1):
            start = merkle.Frontier()
            for leaf in LEAVES[:cut]:
                start.append(leaf)
            rest = LEAVES[cut:n]
            for i in range(cut, n):
                assert merkle.inclusion_proof(i, rest, start) == merkle.inclusion_proof(i, LEAVES[:n]), (i, cut, n)
            for m in range(cut, n + 1):
                assert merkle.consistency_proof(m, rest, start) == merkle.consistency_proof(m, LEAVES[:n])
            if cut:
                with pytest.raises(ValueError, match="purged"):
                    merkle.inclusion_proof(cut - 1, rest, start)
            if 0 < cut - 1:
                with pytest.raises(ValueError, match="purged"):
                    merkle.consistency_proof(cut - 1, rest, start)


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 13, 33, 64])
def test_a_multi_leaf_proof_shows_exactly_the_listed_leaves(size: int) -> None:
    import random

    leaves, rng = _leaves(size), random.Random(size)
    root = merkle.root(leaves)
    for _ in range(25):
        wanted = sorted(rng.sample(range(size), rng.randint(1, size)))
        proof = merkle.multi_inclusion_proof(wanted, leaves)
        given = {i: leaves[i] for i in wanted}
        assert merkle.verify_multi_inclusion(given, size, proof, root)
        # One leaf's proof holds as many hashes as its RFC 6962 audit path.
        if len(wanted) == 1:
            assert len(proof) == len(merkle.inclusion_proof(wanted[0], leaves))
        # From the frontier of any earlier size (the leaves before it purged, or not read), the same proof.
        cut = rng.randint(0, wanted[0])
        start = merkle.Frontier()
        for leaf in leaves[:cut]:
            start.append(leaf)
        assert merkle.multi_inclusion_proof(wanted, leaves[cut:], start=start) == proof
        # An edited leaf, a leaf at another index, a missing or extra proof hash: all refused. (The size is the
        # signed checkpoint's, as for an audit path, so it is not the proof's to vouch for.)
        edited = {**given, wanted[0]: merkle.leaf_hash(b"edited")}
        assert not merkle.verify_multi_inclusion(edited, size, proof, root)
        elsewhere = [j for j in range(size) if j not in given]
        if elsewhere:
            moved = {**{i: h for i, h in given.items() if i != wanted[0]}, elsewhere[0]: given[wanted[0]]}
            assert not merkle.verify_multi_inclusion(moved, size, proof, root)
        if proof:
            assert not merkle.verify_multi_inclusion(given, size, proof[:-1], root)
        assert not merkle.verify_multi_inclusion(given, size, [*proof, root], root)


def test_a_multi_leaf_proof_is_small_for_a_contiguous_batch() -> None:
    """500 neighbouring leaves of a million-leaf tree need about two audit paths, not 500."""
    size, first = 1 << 20, 123_456
    start = merkle.Frontier()
    for leaf in _leaves(first):
        start.append(leaf)
    tail = _leaves(2000)  # leaves first .. first+1999, standing in for the rest of the tree below
    tree_size = first + len(tail)
    proof = merkle.multi_inclusion_proof(range(first, first + 500), tail, start=start)
    assert len(proof) <= 2 * tree_size.bit_length() < size.bit_length() * 3


def test_a_multi_leaf_proof_needs_leaves() -> None:
    with pytest.raises(ValueError):
        merkle.multi_inclusion_proof([], _leaves(4))
    with pytest.raises(ValueError):
        merkle.multi_inclusion_proof([4], _leaves(4))
    assert not merkle.verify_multi_inclusion({}, 4, [], merkle.root(_leaves(4)))

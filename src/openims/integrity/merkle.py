"""RFC 6962 / RFC 9162 Merkle tree hashing (SHA-256): roots, an append-only frontier, inclusion and
consistency proofs. Everything works on leaf HASHES (`leaf_hash` of the leaf's bytes), never on leaf data.

Standard library only and nothing else of OpenIMS, so an auditor can read or copy it. Proofs can also be made
for a log whose oldest leaves were purged: pass the frontier kept at the cut as `start` and the leaf hashes from
there on (every node a proof needs for a leaf after the cut is then either a frontier hash or above the cut)."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


class Frontier:
    """The compact range of an append-only tree: the roots of its perfect subtrees, largest first (one per set
    bit of the size). Enough to go on appending and to compute the root, in O(log n) space and time per append,
    without the leaves themselves."""

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self.hashes = list(hashes)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError("a frontier's size is a whole number, zero or more")
        if len(self.hashes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} holds {size.bit_count()} hashes, not {len(self.hashes)}")
        if not all(_is_hash(h) for h in self.hashes):
            raise ValueError("a frontier's hashes are 32 bytes each")
        self.size = size

    def append(self, leaf: bytes) -> None:
        node, size = leaf, self.size
        # Each trailing 1 bit of the old size is a perfect subtree the new leaf completes.
        while size & 1:
            node = node_hash(self.hashes.pop(), node)
            size >>= 1
        self.hashes.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        node = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            node = node_hash(left, node)
        return node

    def copy(self) -> Frontier:
        return Frontier(self.size, self.hashes)

    def ranges(self) -> dict[tuple[int, int], bytes]:
        """The leaf range [start, end) each hash covers."""
        out: dict[tuple[int, int], bytes] = {}
        start = 0
        heights = [h for h in range(self.size.bit_length() - 1, -1, -1) if self.size >> h & 1]
        for height, node in zip(heights, self.hashes):
            out[(start, start + (1 << height))] = node
            start += 1 << height
        return out

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "hashes": [h.hex() for h in self.hashes]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Frontier:
        """The inverse of `to_json`; ValueError (or KeyError, TypeError) for anything else."""
        hashes = data["hashes"]
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            raise ValueError("a frontier's hashes are a list of hex strings")
        return cls(data["size"], [bytes.fromhex(h) for h in hashes])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frontier) and (self.size, self.hashes) == (other.size, other.hashes)

    def __repr__(self) -> str:
        return f"Frontier(size={self.size}, root={self.root().hex()})"


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH (RFC 6962 2.1) over a list of leaf hashes."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


def roots_at(sizes: Iterable[int], leaves: Iterable[bytes], start: Frontier | None = None) -> dict[int, bytes]:
    """The root at each of `sizes`, streaming the leaf hashes once; with `start`, `leaves` are those after it and
    only sizes from start.size on can be answered. A size beyond the leaves given is left out of the answer."""
    frontier = start.copy() if start is not None else Frontier()
    wanted = sorted(set(sizes))
    if wanted and wanted[0] < frontier.size:
        raise ValueError(f"size {wanted[0]} is before the frontier the leaves start from ({frontier.size})")
    found: dict[int, bytes] = {}
    targets: Iterator[int] = iter(wanted)
    target = next(targets, None)
    if target == frontier.size:
        found[target] = frontier.root()
        target = next(targets, None)
    if target is None:
        return found
    for leaf in leaves:
        frontier.append(leaf)
        if frontier.size == target:
            found[target] = frontier.root()
            target = next(targets, None)
            if target is None:
                break
    return found


class _Tree:
    """Node hashes of the tree of leaf hashes `leaves`, which follow the leaves `start` summarizes."""

    def __init__(self, leaves: Sequence[bytes], start: Frontier | None) -> None:
        self.leaves = leaves
        self.cut = start.size if start is not None else 0
        self.kept = start.ranges() if start is not None else {}
        self.size = self.cut + len(leaves)

    def hash(self, lo: int, hi: int) -> bytes:
        """MTH of leaves [lo, hi)."""
        if lo >= self.cut:
            frontier = Frontier()
            for i in range(lo - self.cut, hi - self.cut):
                frontier.append(self.leaves[i])
            return frontier.root()
        if hi <= self.cut:
            node = self.kept.get((lo, hi))
            if node is None:
                raise ValueError(f"the proof needs leaves before position {self.cut}, which were purged")
            return node
        k = _split(hi - lo)
        return node_hash(self.hash(lo, lo + k), self.hash(lo + k, hi))

    def path(self, index: int, lo: int, hi: int) -> list[bytes]:
        """RFC 6962 2.1.1 PATH(index, D[lo:hi]), the index relative to lo."""
        if hi - lo == 1:
            return []
        k = _split(hi - lo)
        if index < k:
            return [*self.path(index, lo, lo + k), self.hash(lo + k, hi)]
        return [*self.path(index - k, lo + k, hi), self.hash(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        """RFC 6962 2.1.2 SUBPROOF(m, D[lo:hi], complete)."""
        if m == hi - lo:
            return [] if complete else [self.hash(lo, hi)]
        k = _split(hi - lo)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, complete), self.hash(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.hash(lo, lo + k)]


def inclusion_proof(index: int, leaves: Sequence[bytes], start: Frontier | None = None) -> list[bytes]:
    """RFC 6962 2.1.1 PATH(index, D[n]) of the tree of leaf hashes `leaves` (after `start`, when its oldest
    leaves were purged: then the index must be at or after the cut)."""
    tree = _Tree(leaves, start)
    if not 0 <= index < tree.size:
        raise ValueError(f"leaf index {index} is outside the tree of {tree.size}")
    if index < tree.cut:
        raise ValueError(f"leaf index {index} is before position {tree.cut}, where the leaves were purged")
    return tree.path(index, 0, tree.size)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether `proof` shows leaf hash `leaf` at `index` of the tree of `size` leaves whose root is `root`
    (RFC 9162 2.1.3.2)."""
    if not (_is_hash(leaf) and _is_hash(root) and all(_is_hash(p) for p in proof)):
        return False
    if not 0 <= index < size:
        return False
    fn, sn, node = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = node_hash(p, node)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            node = node_hash(node, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and node == root


def consistency_proof(old_size: int, leaves: Sequence[bytes], start: Frontier | None = None) -> list[bytes]:
    """RFC 6962 2.1.2 PROOF(old_size, D[n]): that the tree of leaf hashes `leaves` extends its first `old_size`
    leaves. Empty for old_size 0 or n. With `start` (oldest leaves purged), old_size must be at or after the cut."""
    tree = _Tree(leaves, start)
    if not 0 <= old_size <= tree.size:
        raise ValueError(f"the old size {old_size} is not between 0 and the tree size {tree.size}")
    if old_size in (0, tree.size):
        return []
    if old_size < tree.cut:
        raise ValueError(f"the old size {old_size} is before position {tree.cut}, where the leaves were purged")
    return tree.subproof(old_size, 0, tree.size, True)


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Whether `proof` shows the tree of `new_size` leaves with root `new_root` extends the tree of `old_size`
    with root `old_root` (RFC 9162 2.1.4.2). Equal sizes need equal roots and an empty proof; the empty tree is
    extended by every tree (its root must be EMPTY_ROOT); a smaller new tree never extends."""
    if not (_is_hash(old_root) and _is_hash(new_root) and all(_is_hash(p) for p in proof)):
        return False
    if not 0 <= old_size <= new_size:
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old tree is a node of the new one, left implicit
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def multi_inclusion_proof(
    indexes: Iterable[int], leaves: Sequence[bytes], start: Frontier | None = None
) -> list[bytes]:
    """A proof that several leaves are in the tree of leaf hashes `leaves` (after `start`, as for
    `inclusion_proof`): the hashes of the maximal subtrees that hold none of `indexes`, left to right. With
    the listed leaves' hashes, they are exactly what recomputing the root needs (`verify_multi_inclusion`);
    for the leaves of one batch of events this is far smaller than a path per leaf, since paths share nodes."""
    tree = _Tree(leaves, start)
    wanted = sorted(set(indexes))
    if not wanted:
        raise ValueError("a proof needs at least one leaf index")
    if wanted[0] < tree.cut or wanted[-1] >= tree.size:
        raise ValueError(f"leaf indexes must lie in [{tree.cut}, {tree.size})")
    out: list[bytes] = []

    def walk(lo: int, hi: int) -> None:
        if not _holds(wanted, lo, hi):
            out.append(tree.hash(lo, hi))
        elif hi - lo > 1:
            k = _split(hi - lo)
            walk(lo, lo + k)
            walk(lo + k, hi)

    walk(0, tree.size)
    return out


def verify_multi_inclusion(leaves: dict[int, bytes], size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether `proof` (from `multi_inclusion_proof`) shows each leaf hash `leaves[i]` at index i of the tree
    of `size` leaves whose root is `root`: walk the tree from the root, splitting as RFC 6962 does; a subtree
    holding a listed leaf is recomputed from its halves, any other takes the next proof hash."""
    wanted = sorted(leaves)
    if not wanted or wanted[0] < 0 or wanted[-1] >= size or not _is_hash(root):
        return False
    if not all(_is_hash(h) for h in leaves.values()) or not all(_is_hash(p) for p in proof):
        return False
    hashes = iter(proof)

    def walk(lo: int, hi: int) -> bytes | None:
        if not _holds(wanted, lo, hi):
            return next(hashes, None)
        if hi - lo == 1:
            return leaves[lo]
        k = _split(hi - lo)
        left, right = walk(lo, lo + k), walk(lo + k, hi)
        return node_hash(left, right) if left is not None and right is not None else None

    computed = walk(0, size)
    return computed == root and next(hashes, None) is None


def _holds(sorted_indexes: list[int], lo: int, hi: int) -> bool:
    """Whether any of the sorted indexes lies in [lo, hi)."""
    i = bisect.bisect_left(sorted_indexes, lo)
    return i < len(sorted_indexes) and sorted_indexes[i] < hi

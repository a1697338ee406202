"""Compiled policies, cached per process by an immutable key: ("System", name) or ("Custom", policy ID,
version ID). A version's document never changes and a version ID is never reused, so an entry never goes
stale and needs no invalidation; which versions apply to a caller is read from the database on every call
(see decide.py), which is what makes a change visible at once to every server process."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from openims.policy.evaluate import CompiledPolicy

MAX_ENTRIES = 4096


class CompiledCache:
    """A bounded LRU map from key to compiled policy, safe for the server's worker threads."""

    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, CompiledPolicy] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> CompiledPolicy | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: Hashable, value: CompiledPolicy) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def get_or_compile(self, key: Hashable, compile_fn: Callable[[], CompiledPolicy]) -> CompiledPolicy:
        found = self.get(key)
        if found is None:
            found = compile_fn()
            self.put(key, found)
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


COMPILED = CompiledCache()

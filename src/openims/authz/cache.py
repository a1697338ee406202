"""Per-process LRU caches for authorization.

`COMPILED` holds compiled policy versions keyed by an immutable key: ("System", name) or ("Custom", policy
ID, version ID). A version's document never changes and a version ID is never reused, so an entry never
goes stale. Which versions apply to a user is cached separately, per database, under the account's
`authz_version` (see decide.py)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from openims.authz.evaluate import CompiledPolicy

MAX_ENTRIES = 4096
V = TypeVar("V")


class LruCache(Generic[V]):
    """A bounded LRU map, safe for the server's worker threads."""

    def __init__(self, size: int = MAX_ENTRIES) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        found = self.get(key)
        if found is None:
            found = compute()
            self.put(key, found)
        return found


COMPILED: LruCache[CompiledPolicy] = LruCache()

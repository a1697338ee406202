"""The exact bytes a leaf covers: the event as LookupEvents serves it, as JSON with keys sorted at every level,
no whitespace between tokens (separators "," and ":"), non-ASCII characters as themselves, UTF-8. An auditor
reproduces it with `json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def canonical_event(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

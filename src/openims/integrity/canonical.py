"""The exact bytes a leaf of the log covers, in the format an auditor reproduces: the event exactly as
LookupEvents serves it, as JSON with the keys of every object sorted (by code point; event keys are ASCII), no
whitespace between tokens (separators "," and ":"), non-ASCII characters as themselves rather than \\u escapes,
numbers and escapes as Python's `json` writes them, encoded as UTF-8. In Python:

    json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

The one exception, for input that is not valid Unicode: a lone surrogate (which UTF-8 cannot encode) is written
as its JSON escape, lowercase `\\udXXX`, which is what `.encode("utf-8", "backslashreplace")` gives; without it
such an event could never enter the log."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def canonical_event(event: Mapping[str, Any]) -> bytes:
    text = json.dumps(dict(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "backslashreplace")

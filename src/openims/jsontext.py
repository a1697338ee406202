"""JSON as OpenIMS writes and reads it everywhere (stored events, API responses): compact, non-ASCII characters as
themselves. orjson writes it several times faster than `json`; the rare value orjson refuses (a lone surrogate
from hostile input, an integer past 64 bits) is written by `json` instead, with the same result otherwise."""

from __future__ import annotations

import json
from typing import Any

import orjson


class Stored:
    """JSON text kept as it was stored (an event, as LookupEvents serves it): `dumps` writes it into a response
    as is, without parsing it and writing it again; `plain` parses it where a value is needed."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def plain(value: Any) -> Any:
    """`value` with every Stored parsed."""
    if isinstance(value, Stored):
        return loads(value.text)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _unknown(value: Any) -> Any:
    if isinstance(value, Stored):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON")


def loads(text: str | bytes) -> Any:
    """Parse JSON (a stored event: orjson reads it several times faster than `json`)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # what orjson refuses to read (a lone surrogate escape) `json` may accept
        return json.loads(text)


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, default=_unknown).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(plain(value), ensure_ascii=False, separators=(",", ":"))

"""Marker/MaxItems pagination as IMS does it: an opaque marker names where the next page starts."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select

from openims.errors import ApiError
from openims.params import Int, Str

MARKER = Str("Marker", max_len=512)


def max_items(limit: int, default: int) -> Int:
    return Int("MaxItems", min=1, max=limit, default=default)


def page(
    conn: Connection, query: Select[Any], sort_column: Any, marker: str | None, limit: int
) -> tuple[Sequence[Any], dict[str, Any]]:
    """Rows of one page ordered by `sort_column` (unique), and the `IsTruncated`/`Marker` fields."""
    if marker:
        query = query.where(sort_column > _decode(marker, sort_column))
    rows = conn.execute(query.order_by(sort_column).limit(limit + 1)).all()
    truncated = len(rows) > limit
    rows = rows[:limit]
    fields: dict[str, Any] = {"IsTruncated": truncated}
    if truncated:
        text = f"{_list_of(sort_column)}:{getattr(rows[-1], sort_column.key)}"
        fields["Marker"] = base64.urlsafe_b64encode(text.encode()).decode()
    return rows, fields


def _list_of(sort_column: Any) -> str:
    # Names the list a marker belongs to, so that garbage, or another list's marker, is refused rather than
    # read as a position (which would quietly return a wrong page).
    return f"{sort_column.table.name}.{sort_column.key}"


def _decode(marker: str, sort_column: Any) -> str:
    try:
        text = base64.urlsafe_b64decode(marker.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    scope, sep, position = text.partition(":")
    if not sep or scope != _list_of(sort_column):
        raise ApiError(
            "InvalidParameter.Marker",
            'The parameter - "Marker" is not valid: pass the Marker of the previous page unchanged.',
        )
    return position

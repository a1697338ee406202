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


def page(conn: Connection, query: Select[Any], sort_column: Any, marker: str | None, limit: int) -> tuple[Sequence[Any], dict[str, Any]]:
    """Rows of one page ordered by `sort_column` (unique), and the `IsTruncated`/`Marker` fields."""
    if marker:
        query = query.where(sort_column > _decode(marker))
    rows = conn.execute(query.order_by(sort_column).limit(limit + 1)).all()
    truncated = len(rows) > limit
    rows = rows[:limit]
    fields: dict[str, Any] = {"IsTruncated": truncated}
    if truncated:
        fields["Marker"] = base64.urlsafe_b64encode(str(getattr(rows[-1], sort_column.key)).encode()).decode()
    return rows, fields


def _decode(marker: str) -> str:
    try:
        return base64.urlsafe_b64decode(marker.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise ApiError("InvalidParameter.Marker", 'The parameter - "Marker" is not valid: pass the Marker of the previous page unchanged.') from None

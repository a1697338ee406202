"""Plain-text tables for the commands' default output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    print_grid(columns, [[r.get(c, "") for c in columns] for r in rows])


def print_grid(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns padded to their widest value (at most 48 characters); NULL shows as an empty cell."""
    if not rows:
        print("(none)")
        return
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [min(48, max(len(c), *(len(row[i]) for row in cells))) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v[:w].ljust(w) for v, w in zip(row, widths, strict=True)))

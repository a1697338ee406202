"""`openims backup PATH` and `openims restore PATH`."""

from __future__ import annotations

from typing import Any


def add_commands(sub: Any) -> None:
    """Add `backup` and `restore` to the `openims` subparsers."""

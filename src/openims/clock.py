"""The one source of "now"; tests move it with `set_offset` to exercise expiry without sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_offset = 0.0
_frozen: float | None = None


HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


def now() -> float:
    """Seconds since the epoch, as a float."""
    return (time.time() if _frozen is None else _frozen) + _offset


def now_ms() -> int:
    return int(now() * 1000)


def utcnow() -> datetime:
    return datetime.fromtimestamp(now(), tz=UTC)


def set_offset(seconds: float) -> None:
    global _offset
    _offset = seconds


def freeze(at: float | None) -> None:
    """Stop the clock at `at` (None lets it run again), so a test's boundaries do not drift with load."""
    global _frozen
    _frozen = at


# The last second `iso` formatted: every event of a second shares it, and formatting costs more than the lookup.
_last_iso: tuple[int, str] = (0, "1970-01-01T00:00:00Z")


def iso(ts_ms: int | None) -> str:
    """`2026-11-24T08:00:00Z`, the timestamp format IMS and ActionTrail use everywhere."""
    global _last_iso
    if ts_ms is None:
        return ""
    second = ts_ms // 1000
    last = _last_iso
    if last[0] == second:
        return last[1]
    text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
    _last_iso = (second, text)
    return text


def iso_ms(ts_ms: int) -> str:
    """`2026-11-24T08:00:00.250Z`: `iso` to the millisecond."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def parse_iso(value: str) -> int:
    """Inverse of `iso`; also accepts fractional seconds and a +00:00 offset. Returns ms."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)

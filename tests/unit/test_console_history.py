"""The event history's time ranges: a quick range's pages, chart and exports share the same fixed bounds."""

from __future__ import annotations

from openims import clock
from openims.audit.lookup import window
from openims.console.history import parse_filters

NOW = clock.parse_iso("2026-11-26T09:01:17Z") + 450


def test_a_quick_range_ends_at_the_millisecond_it_was_asked_for() -> None:
    f = parse_filters({"range": "1h"}, NOW)
    assert (f.start, f.end) == ("2026-11-26T08:01:17Z", "2026-11-26T09:01:17.450Z")
    assert f.end_ms == NOW  # events of this second written after the first page are in no later view
    # A paging, chart or export link keeps those bounds, however much later it is followed.
    later = parse_filters({"range": "1h", "start": f.start, "end": f.end}, NOW + 60_000)
    assert (later.start, later.end, later.end_ms) == (f.start, f.end, NOW)


def test_a_custom_range_and_the_api_take_whole_seconds() -> None:
    f = parse_filters({"range": "custom", "from": "2026-11-01T00:00", "to": "2026-11-02T12:30"}, NOW)
    assert (f.start, f.end, f.error) == ("2026-11-01T00:00:00Z", "2026-11-02T12:30:00Z", None)
    assert f.end_ms == clock.parse_iso("2026-11-02T12:30:00Z") + 999
    assert window(None, "2026-11-02T12:30:00Z", NOW)[1] == f.end_ms
    assert window(None, "2026-11-02T12:30:00.250Z", NOW)[1] == clock.parse_iso("2026-11-02T12:30:00Z") + 250


def test_a_link_with_a_whole_second_end_keeps_all_of_that_second() -> None:
    f = parse_filters({"range": "24h", "start": "2026-11-25T09:00:00Z", "end": "2026-11-26T09:00:00Z"}, NOW)
    assert f.end_ms == clock.parse_iso("2026-11-26T09:00:00Z") + 999

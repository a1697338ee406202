"""Identifier formats (ids.py)."""

from __future__ import annotations

import time
import uuid

from openims import ids


def test_event_ids_are_uuids_that_sort_in_the_order_they_were_made() -> None:
    made = []
    for _ in range(5):
        made += [ids.event_id() for _ in range(200)]
        time.sleep(0.002)
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed).upper() == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    # Within one millisecond the order is random; across milliseconds it is the order of creation.
    assert [text[:13] for text in made] == sorted(text[:13] for text in made)
    assert made[0] < made[-1]

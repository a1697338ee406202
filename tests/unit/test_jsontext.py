"""jsontext.dumps writes what json.dumps(ensure_ascii=False, compact) writes, including for what orjson refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openims import jsontext

VALUES: list[Any] = [
    {"eventName": "CreateUser", "n": [1, 2.5, 0.1, 1e100, True, False, None], "nested": {"k": "v"}},
    {"text": 'é\u2028<>&"\\/\x7f\u4e2d\U0001f600', "empty": "", "list": []},
    {"lone": "a\ud800b"},  # a lone surrogate from hostile input: orjson refuses it
    {"big": 2**70},  # past 64 bits: orjson refuses it
]


@pytest.mark.parametrize("value", VALUES, ids=["plain", "unicode", "surrogate", "bigint"])
def test_same_text_as_json(value: Any) -> None:
    assert jsontext.dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize("value", VALUES, ids=["plain", "unicode", "surrogate", "bigint"])
def test_stored_json_is_written_as_the_value_it_holds(value: Any) -> None:
    """A stored event spliced into a response reads as the event would written out; `plain` gives it back."""
    stored = jsontext.Stored(jsontext.dumps(value))
    answer = {"Events": [stored, stored], "n": 1}
    assert jsontext.dumps(answer) == jsontext.dumps({"Events": [value, value], "n": 1})
    assert jsontext.plain(answer) == {"Events": [value, value], "n": 1}

"""Parameter declarations parse what the SDKs send and refuse the rest with Alibaba's codes."""

from __future__ import annotations

import pytest

from openims.errors import ApiError
from openims.params import Bool, Int, ObjList, Str, StrList


def code(fn) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as info:
        fn()
    assert info.value.status == 400
    return info.value.code


def test_str_limits() -> None:
    p = Str("DisplayName", required=True, min_len=1, max_len=3, pattern=r"[a-z]+", pattern_doc="lowercase")
    assert p.extract({"DisplayName": "abc"}) == "abc"
    assert code(lambda: p.extract({})) == "MissingParameter"
    assert code(lambda: p.extract({"DisplayName": "abcd"})) == "InvalidParameter.DisplayName.Length"
    assert code(lambda: p.extract({"DisplayName": "AB"})) == "InvalidParameter.DisplayName.InvalidChars"
    assert Str("Status", choices=("Active",)).extract({}) is None
    assert code(lambda: Str("Status", choices=("Active",)).extract({"Status": "x"})) == "InvalidParameter.Status"


def test_int_and_bool() -> None:
    assert Int("MaxItems", min=1, max=10, default=5).extract({}) == 5
    assert code(lambda: Int("MaxItems", min=1, max=10).extract({"MaxItems": "11"})) == "InvalidParameter.MaxItems"
    assert code(lambda: Int("MaxItems").extract({"MaxItems": "ten"})) == "InvalidParameter.MaxItems"
    # Only ASCII digits are a number, as Alibaba reads them; Python's int() alone would take all of these.
    for loose in ("１２", "1_0", " 5", "5 ", "٣", "99999999999999999999"):
        assert code(lambda loose=loose: Int("MaxItems").extract({"MaxItems": loose})) == "InvalidParameter.MaxItems"
    assert Int("MaxItems").extract({"MaxItems": "+7"}) == 7
    assert Bool("X").extract({"X": "True"}) is True
    assert code(lambda: Bool("X").extract({"X": "yes"})) == "InvalidParameter.X"


def test_lists_flattened_and_json() -> None:
    tags = ObjList("Tag", fields=(Str("Key"), Str("Value")), max_items=2)
    assert tags.extract({"Tag.2.Key": "b", "Tag.1.Key": "a", "Tag.1.Value": "1"}) == [
        {"Key": "a", "Value": "1"},
        {"Key": "b", "Value": None},
    ]
    assert code(lambda: tags.extract({f"Tag.{i}.Key": "k" for i in range(1, 4)})) == "InvalidParameter.Tag.Length"
    assert code(lambda: tags.extract({"Tag.1.Colour": "red"})) == "InvalidParameter.Tag.Format"
    names = StrList("Names", max_items=3)
    assert names.extract({"Names": '["a","b"]'}) == ["a", "b"]
    assert names.extract({"Names.1": "a", "Names.2": "b"}) == ["a", "b"]
    assert code(lambda: names.extract({"Names": "[1, 2"})) == "InvalidParameter.Names.Format"
    assert StrList("Ids", comma_separated=True).extract({"Ids": "a, b"}) == ["a", "b"]

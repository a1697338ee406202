"""Typed parameter declarations: each parses its raw wire value(s) and enforces the SDK's documented limits.

Errors follow Alibaba's pattern: `MissingParameter` when a required one is absent,
`InvalidParameter.<Name>.Length` / `.InvalidChars` / `.Format` / `InvalidParameter.<Name>` otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from openims.errors import ApiError
from openims.errors import missing as _missing

# A list index: ASCII digits (str.isdigit also accepts "²", which int() refuses).
_INDEX = re.compile("[0-9]+")


def load_json(text: str) -> Any:
    """A caller's JSON value; ValueError for anything that is not valid JSON, nested too deeply for the parser,
    or holding a number too long to convert (json raises RecursionError or a bare ValueError for those)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


# C0 control characters other than tab, line feed and carriage return (which documents may hold), and DEL.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")


def has_control(text: str) -> bool:
    """Whether `text` holds a control character no name or value may contain (PostgreSQL cannot even store
    NUL): such a value names nothing, on every backend alike."""
    return _CONTROL.search(text) is not None


def _invalid(name: str, why: str, reason: str | None = None, lead: str | None = None) -> ApiError:
    code = f"InvalidParameter.{name}" + (f".{reason}" if reason else "")
    lead = lead or {"Length": "beyond the length limit", "InvalidChars": "contains invalid chars"}.get(
        reason or "", "is not valid"
    )
    return ApiError(code, f'The parameter - "{name}" {lead}: it {why}.')


@dataclass(frozen=True)
class Param:
    name: str
    required: bool = False
    # Secret values are replaced by "******" in events and never logged.
    secret: bool = False
    doc: str = ""
    # An empty value is a value (an update's "clear this field", or a length error), not an absent one:
    # for update fields, where ignoring it would silently change nothing.
    keep_empty: bool = False

    def extract(self, raw: Mapping[str, str]) -> Any:
        """The parsed value, or None when absent and not required."""
        value = raw.get(self.name)
        if value is None or (value == "" and not self.keep_empty):
            if self.required:
                raise _missing(self.name)
            return self.default_value()
        return self.convert(value)

    def default_value(self) -> Any:
        return None

    def convert(self, value: str) -> Any:
        return value

    def type_name(self) -> str:
        return "String"

    def limits(self) -> str:
        return ""


@dataclass(frozen=True)
class Str(Param):
    min_len: int = 0
    max_len: int | None = None
    pattern: str | None = None
    pattern_doc: str = ""
    choices: tuple[str, ...] = ()
    default: str | None = None

    def default_value(self) -> Any:
        return self.default

    def convert(self, value: str) -> Any:
        if self.choices:
            if value not in self.choices:
                raise _invalid(self.name, f"must be one of {', '.join(self.choices)}")
            return value
        if _CONTROL.search(value):
            # Stored, they would come back in responses (XML cannot carry them at all) and in events.
            raise _invalid(self.name, "must not contain control characters", "InvalidChars")
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            short = "is empty" if not value else "is too short"
            raise _invalid(
                self.name,
                f"must be {self.min_len} to {self.max_len} characters in length",
                "Length",
                lead=short if len(value) < self.min_len else None,
            )
        if self.pattern and value and not re.fullmatch(self.pattern, value):
            raise _invalid(self.name, self.pattern_doc or f"must match {self.pattern}", "InvalidChars")
        return value

    def limits(self) -> str:
        parts = []
        if self.choices:
            parts.append("one of " + ", ".join(self.choices))
        if self.max_len is not None:
            parts.append(f"{max(self.min_len, 1)} to {self.max_len} characters")
        if self.pattern_doc:
            parts.append(self.pattern_doc)
        if self.default is not None:
            parts.append(f"default {self.default}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Int(Param):
    min: int | None = None
    max: int | None = None
    default: int | None = None

    def default_value(self) -> Any:
        return self.default

    def convert(self, value: str) -> Any:
        # ASCII digits only, as Alibaba's gateway reads them: Python's int() would also take full-width digits
        # ("１２"), underscores ("1_000") and surrounding spaces.
        if not _INTEGER.fullmatch(value) or not -(2**63) <= int(value) < 2**63:
            raise _invalid(self.name, "must be an integer")
        number = int(value)
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise _invalid(self.name, f"must be between {self.min} and {self.max}")
        return number

    def type_name(self) -> str:
        return "Integer"

    def limits(self) -> str:
        text = f"{self.min} to {self.max}" if self.min is not None else ""
        return text + (f"; default {self.default}" if self.default is not None else "")


@dataclass(frozen=True)
class Bool(Param):
    default: bool | None = None

    def default_value(self) -> Any:
        return self.default

    def convert(self, value: str) -> Any:
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise _invalid(self.name, "must be true or false")
        return lowered == "true"

    def type_name(self) -> str:
        return "Boolean"


@dataclass(frozen=True)
class StrList(Param):
    """A list of strings, sent either as one JSON-array value or flattened as `Name.1`, `Name.2`, ...
    (or, where the API says so, one comma-separated value)."""

    max_items: int | None = None
    item: Str = field(default_factory=lambda: Str("item"))
    comma_separated: bool = False

    def extract(self, raw: Mapping[str, str]) -> Any:
        values = _indexed(raw, self.name)
        if not values:
            single = raw.get(self.name)
            if single:
                values = self._split(single)
        if not values:
            if self.required:
                raise _missing(self.name)
            return []
        if self.max_items is not None and len(values) > self.max_items:
            raise _invalid(self.name, f"at most {self.max_items} items", "Length")
        item = Str(
            self.name,
            min_len=self.item.min_len,
            max_len=self.item.max_len,
            pattern=self.item.pattern,
            pattern_doc=self.item.pattern_doc,
            choices=self.item.choices,
        )
        return [item.convert(v) for v in values]

    def _split(self, single: str) -> list[str]:
        text = single.strip()
        if text.startswith("["):
            try:
                parsed = load_json(text)
            except ValueError:
                raise _invalid(self.name, "must be a JSON array of strings", "Format") from None
            if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
                raise _invalid(self.name, "must be a JSON array of strings", "Format")
            return parsed
        if self.comma_separated:
            return [v.strip() for v in text.split(",") if v.strip()]
        return [text]

    def type_name(self) -> str:
        return "Array of String"

    def limits(self) -> str:
        return f"at most {self.max_items} items" if self.max_items else ""


@dataclass(frozen=True)
class ObjList(Param):
    """A list of objects, flattened as `Name.N.Field` (for example `Tag.1.Key`); each item a dict."""

    fields: tuple[Str, ...] = ()
    max_items: int | None = None

    def extract(self, raw: Mapping[str, str]) -> Any:
        prefix = self.name + "."
        by_index: dict[int, dict[str, str]] = {}
        for key, value in raw.items():
            if not key.startswith(prefix):
                continue
            index, _, sub = key[len(prefix) :].partition(".")
            if not _INDEX.fullmatch(index) or not sub:
                raise _invalid(self.name, f"{key} is not of the form {self.name}.N.Field", "Format")
            by_index.setdefault(int(index), {})[sub] = value
        if not by_index:
            if self.required:
                raise _missing(self.name)
            return []
        if self.max_items is not None and len(by_index) > self.max_items:
            raise _invalid(self.name, f"at most {self.max_items} items", "Length")
        known = {f.name: f for f in self.fields}
        # A field's errors name it within its list (InvalidParameter.Tag.Key.Length), as the SDK spells it.
        qualified = {f.name: replace(f, name=f"{self.name}.{f.name}") for f in self.fields}
        items = []
        for n in sorted(by_index):
            obj = by_index[n]
            for sub in obj:
                if sub not in known:
                    raise _invalid(self.name, f"unknown field {self.name}.{n}.{sub}", "Format")
            items.append(
                {
                    f.name: qualified[f.name].extract({qualified[f.name].name: obj[f.name]} if f.name in obj else {})
                    for f in self.fields
                }
            )
        return items

    def type_name(self) -> str:
        return "Array of Object (" + ", ".join(f.name for f in self.fields) + ")"

    def limits(self) -> str:
        return f"at most {self.max_items} items" if self.max_items else ""


def _indexed(raw: Mapping[str, str], name: str) -> list[str]:
    prefix = name + "."
    found = sorted(
        (int(k[len(prefix) :]), v)
        for k, v in raw.items()
        if k.startswith(prefix) and _INDEX.fullmatch(k[len(prefix) :])
    )
    return [v for _, v in found]


def parse_all(declared: tuple[Param, ...], raw: Mapping[str, str]) -> dict[str, Any]:
    return {p.name: p.extract(raw) for p in declared}

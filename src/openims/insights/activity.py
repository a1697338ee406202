"""An event as the detector reads it: the indexed columns of `events`, which are all it needs to learn from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from openims.insights import catalogue
from openims.store.schema import events

COLUMNS = (
    events.c.seq,
    events.c.event_id,
    events.c.account_id,
    events.c.event_ms,
    events.c.event_name,
    events.c.event_rw,
    events.c.service_name,
    events.c.user_name,
    events.c.access_key_id,
    events.c.error_code,
    events.c.source_ip,
)
# Addresses that name no network place: the operator's own commands and OpenIMS's internal work.
NO_PLACE = frozenset({"", "localhost", "Internal"})
_VERB = re.compile(r"[A-Z][a-z]+")


@dataclass(frozen=True)
class Activity:
    seq: int
    event_id: str
    account_id: str
    event_ms: int
    event_name: str
    event_rw: str
    service_name: str
    user_name: str
    access_key_id: str
    error_code: str | None
    source_ip: str

    @classmethod
    def of(cls, row: Any) -> Activity:
        return cls(*(row._mapping[c.name] for c in COLUMNS))

    @property
    def is_insight(self) -> bool:
        return self.event_rw == catalogue.CATEGORY

    @property
    def is_signin(self) -> bool:
        return self.event_name == catalogue.SIGNIN_EVENT

    @property
    def proven(self) -> bool:
        """Whether the caller proved who it was: not a sign-in attempt that failed, nor a request whose signature
        was not verified."""
        if self.error_code is None:
            return True
        return not self.is_signin and not self.error_code.startswith(catalogue.UNPROVEN)

    @property
    def subject(self) -> str:
        """Whom the event shows acting, as the profiles name it: `key:<AccessKeyId>`, `user:<name>` for a
        console session, or "" (a failed sign-in, an unproven request, an operator command)."""
        if not self.proven or self.is_insight:
            return ""
        if self.access_key_id:
            return "key:" + self.access_key_id
        if self.user_name and self.source_ip not in NO_PLACE:
            return "user:" + self.user_name
        return ""

    @property
    def place(self) -> str:
        return "" if self.source_ip in NO_PLACE else self.source_ip

    @property
    def action_class(self) -> str:
        """The verb an API name starts with (Create, Delete, Attach, List, ...): the kind of thing it does."""
        found = _VERB.match(self.event_name)
        return found.group(0) if found else self.event_name

    def described(self) -> dict[str, str]:
        """The attributes insights attribute activity by (record.ATTRIBUTES)."""
        return {
            "userName": self.user_name,
            "accessKeyId": self.access_key_id,
            "sourceIpAddress": self.place,
            "errorCode": self.error_code or "",
            "eventName": self.event_name,
        }

    def metrics(self) -> list[tuple[str, str]]:
        """The (metric, subject) counters the event adds one to (catalogue.METRICS)."""
        if self.is_insight:
            return []
        if self.is_signin:
            if self.error_code is None:
                return []
            out = [("signin_user", self.user_name)] if self.user_name else []
            return out + ([("signin_ip", self.place)] if self.place else [])
        out = [("write", "")] if self.event_rw == "Write" else []
        return out + ([("error", "")] if self.error_code is not None else [])


def window_activity(conn: Connection, account_id: str, start_ms: int, end_ms: int, limit: int) -> list[Activity]:
    """The account's events in [start_ms, end_ms), at most `limit` of them (for attributions)."""
    rows = conn.execute(
        select(*COLUMNS)
        .where(events.c.account_id == account_id, events.c.event_ms >= start_ms, events.c.event_ms < end_ms)
        .limit(limit)
    )
    return [Activity.of(r) for r in rows]

"""The PostgreSQL query check (openims.query.postgres.checked): what reaches the database is one SELECT over the
account's view, regenerated from the parse, with allowed functions only."""

from __future__ import annotations

import pytest

from openims.query.postgres import Rejected, checked


def test_events_becomes_the_view_and_columns_their_quoted_names() -> None:
    out = checked("select eventname, COUNT(*) from events e where e.USERNAME = 'root' group by eventName -- note")
    assert out == (
        'SELECT "eventName", COUNT(*) FROM query_events AS e WHERE e."userName" = \'root\' GROUP BY "eventName"'
    )
    assert checked("SELECT event ->> 'userAgent' FROM events") == (
        "SELECT \"event\" ->> 'userAgent' FROM query_events AS events"
    )


def test_own_with_names_are_allowed_but_never_events() -> None:
    assert "FROM query_events AS events" in checked("WITH w AS (SELECT userName FROM events) SELECT count(*) FROM w")
    with pytest.raises(Rejected, match="may not be `events`"):
        checked("WITH events AS (SELECT 1) SELECT * FROM events")


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("SELECT 1; SELECT 2", "exactly one statement"),
        ("DELETE FROM events", "only a SELECT"),
        ("SELECT * INTO t FROM events", "SELECT INTO"),
        ("SELECT * FROM events FOR UPDATE", "row locks"),
        ("SELECT * FROM accounts", "only the table `events`"),
        ("SELECT * FROM public.events", "only the table `events`"),
        ("SELECT * FROM generate_series(1, 2)", "not allowed"),
        ("SELECT set_config('role', 'none', true)", "set_config is not allowed"),
        ("SELECT current_setting('is_superuser')", "current_setting is not allowed"),
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file is not allowed"),
        ("SELECT (SELECT count(*) FROM pg_roles)", "pg_roles"),
        ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT * FROM c", "RECURSIVE"),
    ],
    ids=lambda v: str(v)[:24],
)
def test_refused(sql: str, why: str) -> None:
    with pytest.raises(Rejected, match=why.replace("(", r"\(").replace("*", r"\*")):
        checked(sql)

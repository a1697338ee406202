"""The errors a query gets: refused or failed SQL, and the time limit."""

from __future__ import annotations

from openims.errors import ApiError


def bad_sql(message: str) -> ApiError:
    return ApiError("InvalidParameter.QuerySql", f"The query cannot run: {message}")


def timed_out(seconds: float) -> ApiError:
    return ApiError(
        "InvalidParameter.QuerySql.Timeout",
        f"The query ran longer than the {seconds:g} s limit and was stopped: filter on indexed columns "
        "(eventName, userName, eventTimeMs, ...) or narrow the time range.",
    )

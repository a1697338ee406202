"""ActionTrail's advanced query (API 2020-07-06): recorded queries, saved templates, and GetAdvancedQueryResult
(OpenIMS-defined), which runs a read-only SQL query over the caller's own account's events (docs/query.md)."""

from __future__ import annotations

from typing import Any

from openims.actions.context import CallContext
from openims.actions.registry import ACTIONTRAIL, WRITE, action
from openims.errors import missing
from openims.params import Bool, Int, Str
from openims.query import engine, history, templates
from openims.query.engine import MAX_SQL_CHARS

TEMPLATE = "ACS::ActionTrail::AdvancedQueryTemplate"
HISTORY = "ACS::ActionTrail::AdvancedQueryHistory"
# Most rows one GetAdvancedQueryResult returns (the server's OPENIMS_QUERY_MAX_ROWS may lower it).
MAX_ROWS = 10_000

QUERY_SQL = Str("QuerySql", max_len=MAX_SQL_CHARS, doc="the SQL, over the table `events` (docs/query.md)")
TEMPLATE_ID = Str("TemplateId", required=True, max_len=40)
TEMPLATE_NAME = Str("TemplateName", max_len=128)
TEMPLATE_SQL = Str("TemplateSql", max_len=MAX_SQL_CHARS)


def _flag(value: bool) -> str:
    # The SDK types SimpleQuery as a string in the Create/Update template responses.
    return "true" if value else "false"


@action(
    "CreateAdvancedQueryHistory",
    service=ACTIONTRAIL,
    rw=WRITE,
    params=(QUERY_SQL, Bool("SimpleQuery", required=True)),
)
def create_history(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Record a query in the account's query history (the newest 100 are kept)."""
    if not p["QuerySql"]:
        raise missing("QuerySql")
    query_id = history.record(ctx.conn, ctx.account_id, p["QuerySql"], p["SimpleQuery"], ctx.now_ms)
    ctx.reference(HISTORY, query_id)
    return {"QueryId": query_id, "QuerySql": p["QuerySql"], "SimpleQuery": p["SimpleQuery"]}


@action("DescribeAdvancedQueryHistory", service=ACTIONTRAIL)
def describe_history(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The account's recorded queries, newest first."""
    return {"QueryHistoryList": history.listing(ctx.conn, ctx.account_id)}


@action(
    "DeleteAdvancedQueryHistory",
    service=ACTIONTRAIL,
    rw=WRITE,
    resource=(HISTORY, "QueryId"),
    params=(Str("QueryId", required=True, max_len=40),),
)
def delete_history(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete one recorded query."""
    history.delete(ctx.conn, ctx.account_id, p["QueryId"])
    return {}


@action(
    "CreateAdvancedQueryTemplate",
    service=ACTIONTRAIL,
    rw=WRITE,
    resource=(TEMPLATE, "TemplateName"),
    params=(
        Bool("SimpleQuery", required=True),
        TEMPLATE_NAME,
        Str(TEMPLATE_SQL.name, required=True, max_len=MAX_SQL_CHARS),
    ),
)
def create_template(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Save a query template (at most 100 per account; names are unique in the account, presets included)."""
    made = templates.create(ctx.conn, ctx.account_id, p["TemplateName"], p["TemplateSql"], p["SimpleQuery"], ctx.now_ms)
    ctx.reference(TEMPLATE, made.name)
    return {**made.shape(), "SimpleQuery": _flag(made.simple_query)}


@action(
    "DescribeAdvancedQueryTemplate",
    service=ACTIONTRAIL,
    params=(
        Int("PageNumber", min=1, max=100_000, default=1),
        Int("PageSize", min=1, max=100, default=10),
        TEMPLATE_NAME,
    ),
)
def describe_templates(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The preset templates, then the account's own by name; TemplateName keeps those whose name contains it."""
    found = templates.listing(ctx.conn, ctx.account_id, p["TemplateName"])
    size, number = p["PageSize"], p["PageNumber"]
    page = found[(number - 1) * size : number * size]
    return {
        "TemplatePage": {
            "PageNumber": str(number),
            "PageSize": str(size),
            "Total": len(found),
            "TemplateList": [t.shape() for t in page],
        }
    }


@action("GetAdvancedQueryTemplate", service=ACTIONTRAIL, resource=(TEMPLATE, "TemplateId"), params=(TEMPLATE_ID,))
def get_template(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """One template, preset or the account's own."""
    return templates.get(ctx.conn, ctx.account_id, p["TemplateId"]).shape()


@action(
    "UpdateAdvancedQueryTemplate",
    service=ACTIONTRAIL,
    rw=WRITE,
    resource=(TEMPLATE, "TemplateId"),
    params=(Bool("SimpleQuery", required=True), TEMPLATE_ID, TEMPLATE_NAME, TEMPLATE_SQL),
)
def update_template(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Change a saved template's name, SQL or SimpleQuery; presets cannot be changed."""
    new = templates.update(
        ctx.conn, ctx.account_id, p["TemplateId"], p["TemplateName"], p["TemplateSql"], p["SimpleQuery"], ctx.now_ms
    )
    return {**new.shape(), "SimpleQuery": _flag(new.simple_query)}


@action(
    "DeleteAdvancedQueryTemplate",
    service=ACTIONTRAIL,
    rw=WRITE,
    resource=(TEMPLATE, "TemplateId"),
    params=(TEMPLATE_ID,),
)
def delete_template(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete a saved template; presets cannot be deleted."""
    templates.delete(ctx.conn, ctx.account_id, p["TemplateId"])
    return {}


@action(
    "GetAdvancedQueryResult",
    service=ACTIONTRAIL,
    extension=True,
    params=(
        QUERY_SQL,
        Str("TemplateId", max_len=40, doc="run this template instead of QuerySql"),
        Int("MaxResults", min=1, max=MAX_ROWS, default=1000),
    ),
)
def get_result(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Run a read-only SQL query (QuerySql, or a template's) over the caller's own account's events as the table
    `events`; answers the column names and the rows, at most MaxResults of them (Truncated says whether more
    matched). Stopped after the server's time limit (10 s by default)."""
    sql = p["QuerySql"]
    if p["TemplateId"]:
        sql = templates.get(ctx.conn, ctx.account_id, p["TemplateId"]).sql
    if not sql:
        raise missing("QuerySql")
    result = engine.run(ctx.runtime, ctx.account_id, sql, p["MaxResults"])
    return {
        "Columns": result.columns,
        "Rows": result.rows,
        "RowCount": len(result.rows),
        "Truncated": result.truncated,
        "ElapsedMilliseconds": result.elapsed_ms,
    }

"""The console's SQL query page: run a read-only query over the account's events (GetAdvancedQueryResult), see the
rows and a bar chart of them, start from a saved or preset template, save one, and the recent queries.

Every step is an action called through dispatch as the signed-in principal (ConsoleOperation events): running a
query needs the same permission as over the API, and a run query is recorded in the query history."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape
from starlette.responses import Response
from starlette.routing import Route

from openims.actions.registry import ACTIONTRAIL
from openims.console.web import Page, endpoint, error_page
from openims.errors import ApiError

V = ACTIONTRAIL.version
DEFAULT_SQL = "SELECT eventName, count(*) AS calls FROM events GROUP BY eventName ORDER BY calls DESC"
MAX_ROWS = 500
MAX_BARS = 40


def bar_chart(columns: list[str], rows: list[list[Any]]) -> Markup | None:
    """Horizontal bars when the result is labels and a count: the first column names each bar, the last numeric
    column sizes it. None for results of another shape."""
    if len(columns) < 2 or not rows:
        return None
    numeric = [i for i in range(1, len(columns)) if all(isinstance(r[i], (int, float)) for r in rows)]
    if not numeric:
        return None
    value = numeric[-1]
    shown = rows[:MAX_BARS]
    peak = max(max(float(r[value]) for r in shown), 1.0)
    width, label_w, row_h = 960, 260, 22
    height = row_h * len(shown) + 8
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="result-chart-title">',
        f'<title id="result-chart-title">{escape(columns[value])} by {escape(columns[0])}</title>',
    ]
    for i, row in enumerate(shown):
        y = 4 + i * row_h
        bar = (width - label_w - 80) * float(row[value]) / peak
        label = escape(str(row[0] if row[0] is not None else "(none)")[:40])
        parts.append(
            f'<text class="tick" x="{label_w - 6}" y="{y + 15}" text-anchor="end">{label}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{max(bar, 1):.1f}" height="{row_h - 6}">'
            f"<title>{label}: {escape(str(row[value]))}</title></rect>"
            f'<text class="tick" x="{label_w + bar + 6:.1f}" y="{y + 15}">{escape(str(row[value]))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _templates(page: Page) -> list[dict[str, Any]]:
    found, _ = page.attempt("DescribeAdvancedQueryTemplate", {"PageSize": 100}, V)
    return found["TemplatePage"]["TemplateList"] if found else []


def _render(page: Page, sql: str, result: dict[str, Any] | None = None, error: str | None = None) -> Response:
    history, _ = page.attempt("DescribeAdvancedQueryHistory", {}, V)
    return page.render(
        "query.html",
        section="query",
        title="SQL query",
        sql=sql,
        result=result,
        error=error,
        chart=bar_chart(result["Columns"], result["Rows"]) if result else None,
        templates=_templates(page),
        history=(history or {}).get("QueryHistoryList", [])[:10],
        may_save=page.may("CreateAdvancedQueryTemplate", _version=V),
        max_rows=MAX_ROWS,
    )


def _run(page: Page, sql: str) -> Response:
    try:
        result = page.call("GetAdvancedQueryResult", {"QuerySql": sql, "MaxResults": MAX_ROWS}, V)
    except ApiError as err:
        if err.code.startswith("NoPermission"):
            return error_page(page, err)
        return _render(page, sql, error=err.message)
    # The run joins the account's query history when the viewer may write it (the run itself is recorded anyway).
    if page.may("CreateAdvancedQueryHistory", _version=V):
        page.attempt("CreateAdvancedQueryHistory", {"QuerySql": sql, "SimpleQuery": "false"}, V)
    return _render(page, sql, result)


@endpoint()
def query_page(page: Page) -> Response:
    if not page.may("GetAdvancedQueryResult", _version=V):
        return error_page(
            page, ApiError("NoPermission", "You are not authorized to do action actiontrail:GetAdvancedQueryResult.")
        )
    template_id = page.q("template")
    if template_id:
        try:
            found = page.call("GetAdvancedQueryTemplate", {"TemplateId": template_id}, V)
        except ApiError as err:
            return _render(page, DEFAULT_SQL, error=err.message)
        return _run(page, found["TemplateSql"])
    return _render(page, DEFAULT_SQL)


@endpoint()
def query_run(page: Page) -> Response:
    return _run(page, page.f("sql"))


@endpoint()
def query_save(page: Page) -> Response:
    sql, name = page.f("sql"), page.f("name")
    try:
        page.call("CreateAdvancedQueryTemplate", {"TemplateName": name, "TemplateSql": sql, "SimpleQuery": "false"}, V)
    except ApiError as err:
        if err.code.startswith("NoPermission"):
            return error_page(page, err)
        return _render(page, sql, error=err.message)
    return page.redirect("/query", f"Saved the template {name}.")


routes = [
    Route("/query", query_page, methods=["GET"]),
    Route("/query/run", query_run, methods=["POST"]),
    Route("/query/templates", query_save, methods=["POST"]),
]

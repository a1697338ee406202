"""The console's SQL query page over HTTP: run a query, see its rows and chart, start from a template, save one."""

from __future__ import annotations

from alibabacloud_ims20190815 import models as m
from markupsafe import escape

from tests.console.conftest import ROOT_PASSWORD, csrf_of, http_session, set_root_password
from tests.support import Account


def test_run_chart_templates_and_history(acct: Account) -> None:
    for n in range(2):
        acct.ims().create_user(m.CreateUserRequest(user_principal_name=acct.upn(f"c{n}"), display_name=f"c{n}"))
    set_root_password(acct)
    client = http_session(acct, acct.alias, ROOT_PASSWORD)
    page = client.get("/console/query")
    assert page.status_code == 200 and "Failed sign-ins by source IP" in page.text
    sql = "SELECT eventName, count(*) AS calls FROM events WHERE eventName = 'CreateUser' GROUP BY eventName"
    ran = client.post("/console/query/run", data={"sql": sql, "csrf_token": csrf_of(page.text)})
    assert ran.status_code == 200
    assert "<td>CreateUser</td><td>2</td>" in ran.text and 'class="chart"' in ran.text
    assert str(escape(sql)) in ran.text  # the recent queries list it
    refused = client.post("/console/query/run", data={"sql": "DELETE FROM events", "csrf_token": csrf_of(ran.text)})
    assert refused.status_code == 200 and 'role="alert"' in refused.text and "The query cannot run" in refused.text
    saved = client.post(
        "/console/query/templates", data={"sql": sql, "name": "new users", "csrf_token": csrf_of(ran.text)}
    )
    assert saved.status_code == 303
    listed = client.get("/console/query")
    assert "new users" in listed.text
    preset = client.get("/console/query", params={"template": "preset-root-activity"})
    assert preset.status_code == 200 and '<th scope="col">eventName</th>' in preset.text
    # Each step was an audited call of the console session.
    names = {e["eventName"] for e in acct.events()}
    assert {"GetAdvancedQueryResult", "CreateAdvancedQueryHistory", "CreateAdvancedQueryTemplate"} <= names

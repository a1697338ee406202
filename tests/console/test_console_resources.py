"""The console's event table names the service and every resource, keeps user names whole, and the user, group
and policy pages have a History tab with each change's old and new values; the users list is sorted by name."""

from __future__ import annotations

import json
import re

import httpx
from alibabacloud_ims20190815 import models as m
from alibabacloud_ram20150501 import models as rm

from tests.console.conftest import ROOT_PASSWORD, http_session, set_root_password
from tests.support import Account

DOCUMENT = json.dumps({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "ims:Get*", "Resource": "*"}]})


def _rows(html: str) -> list[str]:
    body = html.split('id="events-table"', 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body, flags=re.DOTALL)


def test_event_table_history_tabs_and_sorted_users(acct: Account) -> None:
    ims, ram = acct.ims(), acct.ram()
    zed, amy = acct.upn("zed"), acct.upn("amy")
    for upn in (zed, amy):
        ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=upn[:3]))
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=amy, password="Amy-pass-4567"))
    ims.update_user(m.UpdateUserRequest(user_principal_name=amy, new_display_name="Amy Pond"))
    ims.create_group(m.CreateGroupRequest(group_name="tardis"))
    ims.add_user_to_group(m.AddUserToGroupRequest(group_name="tardis", user_principal_name=amy))
    ram.create_policy(rm.CreatePolicyRequest(policy_name="Companions", policy_document=DOCUMENT))
    ram.attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_name="Companions", policy_type="Custom", user_name="amy")
    )
    # A failed sign-in of amy's: its event names her.
    anonymous = httpx.Client(base_url=acct.server.url, timeout=30)
    form = anonymous.get("/console/signin").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    anonymous.post("/console/signin", data={"login": amy, "password": "wrong-Pass-1", "csrf_token": token})
    set_root_password(acct)
    root = http_session(acct, acct.alias, ROOT_PASSWORD)

    users = root.get("/console/users").text
    assert users.index(amy) < users.index(zed)

    table = root.get("/console/events", params={"range": "1h"}).text
    rows = _rows(table)
    attach = next(r for r in rows if ">AttachPolicyToUser<" in r)
    assert ">Ram<" in attach and "Companions" in attach and amy in attach
    added = next(r for r in rows if ">AddUserToGroup<" in r)
    assert ">Ims<" in added and "tardis" in added and amy in added
    failed = next(r for r in rows if ">ConsoleSignin<" in r and "badge err" in r)
    assert amy in failed  # the resource of a failed sign-in, where known
    # A RAM user's name is broken only at its "@".
    name, domain = amy.split("@")
    assert f">{name}<wbr>@{domain}</a>" in failed or f"{name}<wbr>@{domain}" in table

    # Filtered by the resource: the table and its chart, which counts the events naming amy.
    named = root.get("/console/events", params={"range": "1h", "ResourceName": amy}).text
    assert {">AddUserToGroup<", ">AttachPolicyToUser<", ">UpdateUser<"} <= set(re.findall(r">[A-Za-z]+<", named))
    chart_src = re.search(r'data-chart-src="([^"]+)"', named).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    chart = root.get(chart_src).text
    assert f"{len(acct.events(ResourceName=amy))} in total" in chart

    history = root.get(f"/console/users/{amy}/history")
    assert history.status_code == 200
    text = history.text
    for expected in ("UpdateUser", "Amy Pond", "AddUserToGroup", "tardis", "AttachPolicyToUser", "Custom:Companions"):
        assert expected in text, expected
    assert 'aria-current="page">History' in text
    assert "Amy-pass-4567" not in text and "changed" in text  # the password, only as changed
    group = root.get("/console/groups/tardis/history").text
    assert "Members" in group and amy in group
    policy = root.get("/console/policies/Companions/history").text
    assert "AttachedUsers" in policy and amy in policy
    details = root.get(f"/console/users/{amy}").text
    assert f'href="/console/users/{amy}/history"' in details
    # Viewing a history is an audited ActionTrail read.
    viewed = acct.events(EventName="DescribeResourceLifeCycleEvents")
    assert {e["eventType"] for e in viewed} == {"ConsoleOperation"} and len(viewed) == 3

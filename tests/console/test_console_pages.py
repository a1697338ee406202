"""Console pages as an administrator reads them: what each column and message says, what a search finds, the
names a screen reader hears, and the pages that do not apply to the signed-in identity."""

from __future__ import annotations

import html
import json
import re

import httpx
from alibabacloud_ims20190815 import models as m
from alibabacloud_ram20150501 import models as rm

from openims import clock
from openims.console.history import parse_filters
from tests.console.conftest import ROOT_PASSWORD, csrf_of, http_session, set_root_password
from tests.support import Account

WHEN = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC"


def _root(acct: Account) -> httpx.Client:
    set_root_password(acct)
    return http_session(acct, acct.alias, ROOT_PASSWORD)


def test_the_recycle_bin_says_when_a_user_was_deleted_and_when_it_will_be_purged(acct: Account) -> None:
    root = _root(acct)
    upn = acct.upn("erin")
    acct.ims().create_user(m.CreateUserRequest(user_principal_name=upn, display_name="Erin"))
    before = clock.now_ms()
    root.post(f"/console/users/{upn}/delete", data={"csrf_token": csrf_of(root.get("/console/").text)})
    page = root.get("/console/recycle-bin").text
    header = re.findall(r'<th scope="col">([^<]+)</th>', page)
    row = page.split(upn, 1)[1]
    deleted, purged = (clock.parse_iso(t.replace(" ", "T") + "Z") for t in re.findall(WHEN, row)[:2])
    assert header[2:4] == ["Deleted", "Purged after"]
    assert before // 1000 * 1000 <= deleted <= clock.now_ms() < purged
    assert 'aria-label="Restore ' + upn + '"' in page


def test_root_is_told_where_its_password_is_set(acct: Account) -> None:
    root = _root(acct)
    for answer in (
        root.get("/console/me/password"),
        root.post(
            "/console/me/password",
            data={
                "csrf_token": csrf_of(root.get("/console/me").text),
                "OldPassword": ROOT_PASSWORD,
                "NewPassword": "Another-pass-12",
            },
        ),
    ):
        assert answer.status_code == 303 and answer.headers["location"] == "/console/me"
        assert "openims account set-password" in root.get("/console/me").text
    # Nothing was attempted: no ChangePassword call by root.
    assert acct.events(EventName="ChangePassword") == []


def test_event_pages_and_time_ranges_explain_bad_input(acct: Account) -> None:
    root = _root(acct)
    for bad in ("%00", "not%20an%20id", "x" * 65):
        missing = root.get(f"/console/events/{bad}")
        assert missing.status_code == 404 and "Event not found" in missing.text
    typo = root.get("/console/events", params={"range": "custom", "from": "2026-02-30T00:00", "to": "2026-03-01T00:00"})
    assert "needs real dates and times" in typo.text
    huge = root.get("/console/events", params={"range": "custom", "from": "0001-01-01T00:00", "to": "9999-12-31T23:59"})
    assert "from 1970 to 9999" in huge.text and "UTC in the form" not in huge.text
    half = root.get("/console/events", params={"range": "custom", "from": "2026-03-01T00:00"})
    assert "Enter both ends of the custom time range" in half.text


def test_user_search_looks_at_names_not_the_shared_domain(acct: Account) -> None:
    root = _root(acct)
    ims = acct.ims()
    for name, display in (("alice", "Alice"), ("bob", "Bob"), ("carl", "Carl Alington")):
        ims.create_user(m.CreateUserRequest(user_principal_name=acct.upn(name), display_name=display))

    def found(term: str) -> set[str]:
        page = root.get("/console/users", params={"q": term}).text
        return {n for n in ("alice", "bob", "carl") if acct.upn(n) in page}

    domain = acct.upn("x").split("@")[1]
    assert found("ali") == {"alice", "carl"}  # alice by name, carl by display name; not bob@...onaliyun.com
    assert found("@" + domain) == {"alice", "bob", "carl"}
    assert found("BOB") == {"bob"}


def test_row_buttons_name_what_they_act_on_and_an_empty_name_is_called_empty(acct: Account) -> None:
    root = _root(acct)
    upn = acct.upn("frank")
    ims = acct.ims()
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="Frank"))
    key_id = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key.access_key_id
    page = root.get(f"/console/users/{upn}").text
    for name in (f"Disable AccessKey {key_id}", f"Delete AccessKey {key_id}", f"Activity of AccessKey {key_id}"):
        assert f'aria-label="{name}"' in page
    refused = root.post(f"/console/users/{upn}/update", data={"csrf_token": csrf_of(page), "DisplayName": ""})
    shown = html.unescape(root.get(refused.headers["location"]).text)
    assert '"NewDisplayName" is empty' in shown and "beyond the length limit" not in shown


def test_unknown_console_addresses_and_methods_get_a_console_page(acct: Account) -> None:
    for method, path, status in (
        ("GET", "/console/nope", 404),
        ("GET", "/console/static/nope.css", 404),
        ("PUT", "/console/users", 405),
        ("DELETE", "/console/users", 405),
    ):
        answer = httpx.request(method, acct.server.url + path)
        assert answer.status_code == status, (method, path)
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["x-frame-options"] == "DENY" and answer.headers["cache-control"] == "no-store"
        assert "Content-Security-Policy" in answer.headers and "<h1" in answer.text
    assert httpx.put(acct.server.url + "/console/users").headers["allow"] == "GET, HEAD, POST"


def test_a_form_from_another_origin_or_after_the_session_ended(acct: Account) -> None:
    root = _root(acct)
    base = acct.server.url
    token = csrf_of(root.get("/console/groups").text)
    form = {"csrf_token": token, "GroupName": "ops"}
    for origin in ("http://evil.example", base.replace("http://", "https://")):
        refused = root.post("/console/groups", data=form, headers={"Origin": origin})
        assert refused.status_code == 403 and f"sent from another site ({origin})" in html.unescape(refused.text)
        assert ("OPENIMS_TRUSTED_PROXIES" in refused.text) == origin.startswith("https://")
    assert acct.ims().list_groups(m.ListGroupsRequest()).body.groups.group == []
    # A form sent after its session ended leads to sign-in, then back to the page it was on.
    root.post("/console/signout", data={"csrf_token": token})
    late = root.post("/console/groups", data=form, headers={"Origin": base, "Referer": base + "/console/groups?x=1"})
    assert late.status_code == 303
    target = httpx.URL(late.headers["location"])
    assert target.path == "/console/signin" and target.params["next"] == "/console/groups?x=1"
    assert "the form you sent was not saved" in root.get(late.headers["location"]).text
    # From elsewhere (or with no Referer) it is the console's front page.
    elsewhere = root.post("/console/groups", data=form, headers={"Referer": "http://evil.example/console/groups"})
    assert httpx.URL(elsewhere.headers["location"]).params["next"] == "/console/"
    assert acct.ims().list_groups(m.ListGroupsRequest()).body.groups.group == []


def test_the_user_filter_ignores_letter_case_like_user_names_do(acct: Account) -> None:
    root = _root(acct)
    upn = acct.upn("gina")
    ims = acct.ims()
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="Gina"))
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password="Gina-pass-1234"))
    http_session(acct, upn, "Gina-pass-1234")
    for typed in (upn, upn.upper(), "gina@" + upn.split("@")[1].upper()):
        page = root.get("/console/events", params={"range": "1h", "User": typed})
        assert page.text.count("ConsoleSignin</a>") == 1, typed
    assert (
        root.get("/console/events", params={"range": "1h", "User": "ROOT", "EventName": "ConsoleSignin"}).text.count(
            "ConsoleSignin</a>"
        )
        == 1
    )


def test_a_denied_change_is_the_not_authorized_page_naming_the_action(acct: Account) -> None:
    root = _root(acct)
    target = acct.upn("target")
    reader = acct.upn("reader")
    ims = acct.ims()
    ims.create_user(m.CreateUserRequest(user_principal_name=target, display_name="Target"))
    ims.create_user(m.CreateUserRequest(user_principal_name=reader, display_name="Reader"))
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=reader, password="Reader-pass-123"))
    acct.ram().attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_name="AliyunRAMReadOnlyAccess", policy_type="System", user_name="reader")
    )
    root.post("/console/groups", data={"csrf_token": csrf_of(root.get("/console/").text), "GroupName": "ops"})
    client = http_session(acct, reader, "Reader-pass-123")
    token = csrf_of(client.get(f"/console/users/{target}").text)
    for path, form, action in (
        (f"/console/users/{target}/update", {"DisplayName": "Changed"}, "ram:UpdateUser"),
        (f"/console/users/{target}/keys", {}, "ram:CreateAccessKey"),
        (f"/console/users/{target}/delete", {}, "ram:DeleteUser"),
        ("/console/groups/ops/delete", {}, "ram:DeleteGroup"),
        ("/console/groups", {"GroupName": "dev"}, "ram:CreateGroup"),
    ):
        denied = client.post(path, data={"csrf_token": token, **form})
        assert denied.status_code == 403, path
        assert "Not authorized" in denied.text and action in denied.text, path
    assert ims.get_user(m.GetUserRequest(user_principal_name=target)).body.user.display_name == "Target"
    assert [g.group_name for g in ims.list_groups(m.ListGroupsRequest()).body.groups.group] == ["ops"]


def test_a_page_offers_only_the_changes_its_viewer_may_make(acct: Account) -> None:
    root = _root(acct)
    ims, ram = acct.ims(), acct.ram()
    lead, dev, prod = acct.upn("lead"), acct.upn("dev-a"), acct.upn("prod-x")
    for upn in (lead, dev, prod):
        ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=upn.split("@")[0]))
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=lead, password="Lead-pass-1234"))
    document = json.dumps(
        {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": "ram:*", "Resource": "acs:ram:*:*:user/dev-*"},
                {"Effect": "Allow", "Action": ["ram:Get*", "ram:List*"], "Resource": "*"},
            ],
        }
    )
    ram.create_policy(rm.CreatePolicyRequest(policy_name="DevUsers", policy_document=document))
    ram.attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_name="DevUsers", policy_type="Custom", user_name="lead")
    )
    client = http_session(acct, lead, "Lead-pass-1234")
    controls = ("Save details", "Create AccessKey", f"Delete {dev}", f"Delete {prod}")
    mine = client.get(f"/console/users/{dev}").text
    assert all(c in mine for c in controls[:3]) and "Your permissions do not allow" not in mine
    theirs = client.get(f"/console/users/{prod}").text
    assert not any(f">{c}<" in theirs for c in controls)
    for action in ("ram:UpdateUser", "ram:CreateAccessKey", "ram:DeleteUser"):
        assert f"<code>{action}</code>" in theirs
    # Root is offered everything; settings are read-only for a viewer who may not change them.
    assert all(f">{c}<" in root.get(f"/console/users/{prod}").text for c in controls[:2])
    ims.create_group(m.CreateGroupRequest(group_name="ops"))
    assert ">Add member<" not in client.get("/console/groups/ops").text
    assert "<code>ram:AddUserToGroup</code>" in client.get("/console/groups/ops").text
    assert ">Add member<" in root.get("/console/groups/ops").text
    policy = client.get("/console/settings/password-policy").text
    assert '<fieldset class="bare" disabled>' in policy and "Save password policy" not in policy
    assert "Save password policy" in root.get("/console/settings/password-policy").text


def test_every_history_link_means_what_it_says(acct: Account) -> None:
    """The overview's and the history's one-click links use only parameters the history understands."""
    root = _root(acct)
    links = set()
    for page in ("/console/", "/console/events"):
        links |= {html.unescape(h) for h in re.findall(r'href="(/console/events\?[^"]+)"', root.get(page).text)}
    assert any("MFAUsed=false" in link for link in links)
    for link in links:
        query = dict(httpx.URL(link).params)
        asked = {k for k in query if k not in ("range", "start", "end", "token", "sig")}
        understood = {k for k, _ in parse_filters(query, clock.now_ms()).attributes}
        assert asked == understood, link


def test_a_filter_the_history_cannot_apply_is_called_out(acct: Account) -> None:
    root = _root(acct)
    for query, says in (
        ({"MFAUsed": "maybe"}, 'The MFA filter cannot be "maybe"'),
        ({"EventRW": "Foo"}, 'The Read/write filter cannot be "Foo"'),
        ({"range": "5y"}, 'There is no time range "5y"'),
    ):
        page = html.unescape(root.get("/console/events", params=query).text)
        assert says in page, query
    # The investigation counts successful sign-ins only: not the password step of an MFA sign-in, nor failures.
    http_session(acct, acct.alias, ROOT_PASSWORD)
    bad = httpx.Client(base_url=acct.server.url)
    bad.post(
        "/console/signin",
        data={
            "login": acct.alias,
            "password": "Wrong-password-1",
            "csrf_token": csrf_of(bad.get("/console/signin").text),
        },
    )
    link = html.unescape(re.search(r'href="([^"]+)">Sign-ins without MFA', root.get("/console/events").text).group(1))
    rows = root.get(link).text
    assert rows.count("ConsoleSignin</a>") == 2 and "InvalidCredentials" not in rows  # this test's two sign-ins


def test_chart_bars_link_within_the_page_range(acct: Account) -> None:
    root = _root(acct)
    page = root.get("/console/events", params={"range": "24h"}).text
    chart_src = html.unescape(re.search(r'data-chart-src="([^"]+)"', page).group(1))
    f = parse_filters(dict(httpx.URL(chart_src).params), clock.now_ms())
    chart = root.get(chart_src).text
    slices = [
        parse_filters(dict(httpx.URL(html.unescape(h)).params), clock.now_ms())
        for h in re.findall(r'<a href="(/console/events\?[^"]+)"><rect', chart)
    ]
    assert slices
    assert min(s.start_ms for s in slices) == f.start_ms and max(s.end_ms for s in slices) == f.end_ms

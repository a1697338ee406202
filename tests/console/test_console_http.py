"""The console over plain HTTP, for what a browser would not do on its own: forged and cross-site form
posts, cookie attributes, stale sessions, denied pages, network masks, session lifetime, exports."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time

import httpx
import sqlalchemy as sa
from alibabacloud_ims20190815 import models as m

from openims import clock
from openims.console.sessions import token_hash
from openims.signin import lockout
from openims.store.tables.console import console_sessions
from openims.store.tables.credentials import login_profiles
from tests.console.conftest import ROOT_PASSWORD, csrf_of, http_session, set_root_password
from tests.support import Account

PASSWORD = "Member-pass-975"


def _member(acct: Account, name: str, password: str = PASSWORD) -> str:
    upn = acct.upn(name)
    ims = acct.ims()
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name=name))
    ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=password))
    return upn


def _root(acct: Account) -> httpx.Client:
    set_root_password(acct)
    return http_session(acct, acct.alias, ROOT_PASSWORD)


def _user_exists(acct: Account, upn: str) -> bool:
    users = acct.ims().list_users(m.ListUsersRequest()).body.users.user or []
    return upn in {u.user_principal_name for u in users}


def test_a_post_without_the_csrf_token_is_refused(acct: Account) -> None:
    client = _root(acct)
    upn_name = "mallory"
    form = {"name": upn_name, "DisplayName": "Mallory"}
    missing = client.post("/console/users", data=form)
    assert missing.status_code == 403 and "security token is missing or wrong" in missing.text
    wrong = client.post("/console/users", data={**form, "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    # A right token from another site's page is refused too (the browser names the page's origin).
    token = csrf_of(client.get("/console/users/new").text)
    cross = client.post(
        "/console/users", data={**form, "csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    assert not _user_exists(acct, acct.upn(upn_name))
    # With its token, the same form works.
    done = client.post("/console/users", data={**form, "csrf_token": token})
    assert done.status_code == 303 and _user_exists(acct, acct.upn(upn_name))
    # The sign-in form is protected as well (login CSRF): no pre-session token, no sign-in.
    bare = httpx.post(f"{acct.server.url}/console/signin", data={"login": acct.alias, "password": ROOT_PASSWORD})
    assert bare.status_code == 403 and "openims_console" not in bare.headers.get("set-cookie", "")


def test_session_cookie_attributes_storage_and_sign_out(acct: Account) -> None:
    set_root_password(acct)
    # Behind a TLS-terminating proxy on this host (trusted by name), as a production console runs.
    with acct.server.sibling(OPENIMS_TRUSTED_PROXIES="127.0.0.1") as behind_proxy:
        secure = httpx.Client(base_url=behind_proxy.url, follow_redirects=False)
        done = secure.post(
            "/console/signin",
            data={
                "login": acct.account_id,
                "password": ROOT_PASSWORD,
                "csrf_token": csrf_of(secure.get("/console/signin").text),
            },
            headers={"X-Forwarded-Proto": "https"},
        )
    cookie = done.headers["set-cookie"]
    assert done.status_code == 303 and cookie.startswith("openims_console=")
    for attribute in ("HttpOnly", "Path=/console", "SameSite=lax", "Secure"):
        assert attribute in cookie
    client = httpx.Client(base_url=acct.server.url, follow_redirects=False)
    token = csrf_of(client.get("/console/signin").text)
    # A client's own X-Forwarded-Proto, with no trusted proxy, is ignored.
    plain = client.post(
        "/console/signin",
        data={"login": acct.alias, "password": ROOT_PASSWORD, "csrf_token": token},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert "Secure" not in plain.headers["set-cookie"]  # over plain HTTP the browser would drop a Secure cookie
    value = client.cookies["openims_console"]
    # Only the token's hash is stored, so a copy of the database opens no session.
    with acct.server.runtime.db.read() as conn:
        stored = (
            conn.execute(
                sa.select(console_sessions.c.token_hash).where(console_sessions.c.account_id == acct.account_id)
            )
            .scalars()
            .all()
        )
    assert token_hash(value) in stored and value not in stored
    page = client.get("/console/")
    assert page.status_code == 200
    for header in ("content-security-policy", "x-frame-options", "x-content-type-options"):
        assert header in page.headers
    assert page.headers["cache-control"] == "no-store"
    # Sign-out ends the session on the server: the old cookie is worthless afterwards.
    client.post("/console/signout", data={"csrf_token": csrf_of(page.text)})
    stale = httpx.Client(base_url=acct.server.url, follow_redirects=False, cookies={"openims_console": value})
    again = stale.get("/console/users")
    assert again.status_code == 303 and again.headers["location"].startswith("/console/signin?next=%2Fconsole%2Fusers")
    late = stale.post("/console/users", data={"name": "x", "csrf_token": "y"})
    assert late.status_code == 303 and late.headers["location"].startswith("/console/signin?")


def test_a_ram_user_sees_only_what_its_permissions_allow(acct: Account) -> None:
    upn = _member(acct, "erin")
    client = http_session(acct, upn, PASSWORD)
    home = client.get("/console/")
    assert home.status_code == 200 and "Your permissions do not allow reading the account summary" in home.text
    assert "<code>ram:GetAccountSummary</code>" in home.text
    # Its menu offers only its own account's pages, and landing on the overview logged no denial.
    menu = home.text.split('aria-label="Main"')[1].split("</nav>")[0]
    assert ">Overview<" in menu and ">Users<" not in menu and ">Event history<" not in menu
    assert acct.events(EventName="GetAccountSummary", User=upn) == []
    users = client.get("/console/users")
    assert users.status_code == 403
    assert "Not authorized" in users.text and "ram:ListUsers" in users.text
    history = client.get("/console/events")
    assert history.status_code == 403 and "actiontrail:LookupEvents" in history.text
    # Its own page works (self-service), and the denials are audited like API calls, as console operations.
    assert client.get("/console/me").status_code == 200
    denied = acct.events(EventName="ListUsers", User=upn)[0]
    assert denied["errorCode"] == "NoPermission" and denied["eventType"] == "ConsoleOperation"
    assert denied["userIdentity"]["type"] == "ram-user" and denied["userIdentity"]["sessionContext"]
    # Its own password it may change (self-service).
    form = client.get("/console/me/password")
    changed = client.post(
        "/console/me/password",
        data={
            "csrf_token": csrf_of(form.text),
            "old_password": PASSWORD,
            "new_password": "Member-pass-864",
            "confirm_password": "Member-pass-864",
        },
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/console/me"
    # Removing its console access ends its session at once, and for good: giving access back (or restoring the
    # user from the recycle bin) does not revive a session left idle meanwhile.
    ims = acct.ims()
    user_id = ims.get_user(m.GetUserRequest(user_principal_name=upn)).body.user.user_id
    for take, give in (
        (
            lambda: ims.update_login_profile(m.UpdateLoginProfileRequest(user_principal_name=upn, status="Inactive")),
            lambda: ims.update_login_profile(m.UpdateLoginProfileRequest(user_principal_name=upn, status="Active")),
        ),
        (
            lambda: ims.delete_user(m.DeleteUserRequest(user_principal_name=upn)),
            lambda: ims.restore_user_from_recycle_bin(m.RestoreUserFromRecycleBinRequest(user_id=user_id)),
        ),
        (
            lambda: ims.delete_login_profile(m.DeleteLoginProfileRequest(user_principal_name=upn)),
            lambda: ims.create_login_profile(m.CreateLoginProfileRequest(user_principal_name=upn, password=PASSWORD)),
        ),
    ):
        client = http_session(acct, upn, "Member-pass-864")
        take()
        give()
        ended = client.get("/console/me")
        assert ended.status_code == 303 and ended.headers["location"].startswith("/console/signin")


def test_login_network_masks_and_session_duration(acct: Account) -> None:
    upn = _member(acct, "frank")
    root = _root(acct)
    page = root.get("/console/settings/security")
    fields = {
        "csrf_token": csrf_of(page.text),
        "LoginNetworkMasks": "10.0.0.0/8",
        "LoginSessionDuration": "2",
        "MFAOperationForLogin": "independent",
        "MaxIdleDaysForUsers": "730",
        "MaxIdleDaysForAccessKeys": "730",
        "AllowUserToChangePassword": "on",
        "AllowUserToManageMFADevices": "on",
    }
    saved = root.post("/console/settings/security", data=fields)
    assert saved.status_code == 303
    event = acct.events(EventName="SetSecurityPreference")[0]
    assert event["eventType"] == "ConsoleOperation" and event["requestParameters"]["LoginNetworkMasks"] == "10.0.0.0/8"
    # From 127.0.0.1, outside the masks, the right password does not open a session.
    client = httpx.Client(base_url=acct.server.url, follow_redirects=False)
    refused = client.post(
        "/console/signin",
        data={"login": upn, "password": PASSWORD, "csrf_token": csrf_of(client.get("/console/signin").text)},
    )
    assert refused.status_code == 401 and "not allowed from this network" in refused.text
    assert acct.events(EventName="ConsoleSignin", User=upn)[0]["errorCode"] == "LoginNetworkDenied"
    # Let the loopback in: the session lasts LoginSessionDuration hours.
    root.post("/console/settings/security", data={**fields, "LoginNetworkMasks": "127.0.0.0/8"})
    member = http_session(acct, upn, PASSWORD)
    with acct.server.runtime.db.read() as conn:
        row = conn.execute(
            sa.select(console_sessions).where(
                console_sessions.c.token_hash == token_hash(member.cookies["openims_console"])
            )
        ).one()
    assert row.expires_ms - row.created_ms == 2 * 3600 * 1000 and row.stage == "active"


def test_users_groups_recycle_bin_and_keys(acct: Account) -> None:
    root = _root(acct)
    token = csrf_of(root.get("/console/").text)
    upn = acct.upn("grace")
    created_user = root.post("/console/users", data={"csrf_token": token, "name": "grace", "DisplayName": "Grace"})
    assert created_user.status_code == 303
    found = root.get("/console/users", params={"q": "GRAC"})
    assert upn in found.text
    # Editing: an emptied field is cleared; an emptied display name is refused with the API's error.
    root.post(
        f"/console/users/{upn}/update",
        data={"csrf_token": token, "DisplayName": "Grace H", "Email": "g@example.com", "Comments": "on call"},
    )
    root.post(
        f"/console/users/{upn}/update",
        data={"csrf_token": token, "DisplayName": "Grace H", "Email": "", "Comments": ""},
    )
    shown = acct.ims().get_user(m.GetUserRequest(user_principal_name=upn)).body.user
    assert (shown.display_name, shown.email, shown.comments) == ("Grace H", "", "")
    refused = root.post(
        f"/console/users/{upn}/update", data={"csrf_token": token, "DisplayName": "", "Email": "", "Comments": ""}
    )
    assert "InvalidParameter.NewDisplayName.Length" in root.get(refused.headers["location"]).text
    assert upn not in root.get("/console/users", params={"q": "nobody-like-this"}).text
    # Groups and membership.
    assert root.post("/console/groups", data={"csrf_token": token, "GroupName": "ops"}).status_code == 303
    root.post("/console/groups/ops/members", data={"csrf_token": token, "UserPrincipalName": upn})
    assert upn in root.get("/console/groups/ops").text
    groups = acct.ims().list_groups_for_user(m.ListGroupsForUserRequest(user_principal_name=upn)).body.groups.group
    assert [g.group_name for g in groups] == ["ops"]
    conflict = root.post("/console/groups/ops/delete", data={"csrf_token": token})
    assert "DeleteConflict" in root.get(conflict.headers["location"]).text
    root.post("/console/groups/ops/members/remove", data={"csrf_token": token, "UserPrincipalName": upn})
    root.post("/console/groups/ops/delete", data={"csrf_token": token})
    assert "ops" not in root.get("/console/groups").text.split("<tbody>")[1]
    # AccessKeys: the secret appears on the creation page only; disable, then delete.
    posted = root.post(f"/console/users/{upn}/keys", data={"csrf_token": token})
    assert posted.status_code == 303 and posted.headers["location"] == "/console/access-keys/created"
    created = root.get(posted.headers["location"])
    key_id = re.search(r'id="key-id">([^<]+)<', created.text).group(1)
    secret = re.search(r'id="key-secret">([^<]+)<', created.text).group(1)
    # Reloading the page shows the secret no more, and creates nothing.
    again = root.get(posted.headers["location"])
    assert again.status_code == 200 and "already shown" in again.text and secret not in again.text
    user_page = root.get(f"/console/users/{upn}").text
    assert key_id in user_page and secret not in user_page
    root.post(f"/console/users/{upn}/keys/{key_id}/status", data={"csrf_token": token, "Status": "Inactive"})
    keys = acct.ims().list_access_keys(m.ListAccessKeysRequest(user_principal_name=upn)).body.access_keys.access_key
    assert [(k.access_key_id, k.status) for k in keys] == [(key_id, "Inactive")]
    root.post(f"/console/users/{upn}/keys/{key_id}/delete", data={"csrf_token": token})
    assert not acct.ims().list_access_keys(m.ListAccessKeysRequest(user_principal_name=upn)).body.access_keys.access_key
    # Delete to the recycle bin, then restore.
    gone = root.post(f"/console/users/{upn}/delete", data={"csrf_token": token})
    assert "moved to the recycle bin" in root.get(gone.headers["location"]).text
    assert not _user_exists(acct, upn)
    binned = root.get("/console/recycle-bin").text
    user_id = re.search(r"/console/recycle-bin/(\d+)/restore", binned).group(1)
    root.post(f"/console/recycle-bin/{user_id}/restore", data={"csrf_token": token})
    assert _user_exists(acct, upn)
    names = [e["eventName"] for e in acct.events(ResourceName=upn)]
    assert {"CreateUser", "DeleteUser"} <= set(names)
    assert acct.events(EventName="AddUserToGroup")[0]["referencedResources"]["ACS::RAM::User"] == [upn]
    assert all(e["eventType"] == "ConsoleOperation" for e in acct.events(EventName="DeleteUser"))
    for event in acct.events(EventName="CreateAccessKey"):
        assert secret not in json.dumps(event)


def test_history_is_audited_filtered_and_exported(acct: Account) -> None:
    upn = _member(acct, "heidi")
    root = _root(acct)
    page = root.get("/console/events", params={"range": "1h", "EventName": "Create*"})
    assert page.status_code == 200
    assert "CreateLoginProfile" in page.text and "CreateUser" in page.text
    # The chart is loaded after the table, only with the signature of this recorded view.
    chart_src = re.search(r'data-chart-src="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    chart = root.get(chart_src)
    assert chart.status_code == 200 and "<svg" in chart.text and "2 in total" in chart.text
    assert root.get(chart_src.replace("EventName=Create", "EventName=Delete")).status_code == 403
    # Viewing the history is itself a LookupEvents read, recorded as a console operation with its filters.
    viewed = acct.events(EventName="LookupEvents", User="root")[0]
    assert viewed["eventType"] == "ConsoleOperation"
    assert viewed["requestParameters"]["LookupAttribute.1.Value"] == "Create*"
    # The MFA filter: root's console sign-in did not use MFA.
    no_mfa = root.get("/console/events", params={"range": "1h", "EventName": "ConsoleSignin", "MFAUsed": "false"})
    assert no_mfa.text.count("ConsoleSignin</a>") == 1
    with_mfa = root.get("/console/events", params={"range": "1h", "EventName": "ConsoleSignin", "MFAUsed": "true"})
    assert "No events match." in with_mfa.text
    # JSON export of everything about the member: the full records.
    exported = root.get("/console/events/export.json", params={"range": "1h", "ResourceName": upn})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/json")
    assert "attachment" in exported.headers["content-disposition"]
    records = json.loads(exported.text)
    assert [r["eventName"] for r in records] == ["CreateLoginProfile", "CreateUser"]
    assert records[0]["requestParameters"]["Password"] == "******" and PASSWORD not in exported.text
    rows = list(
        csv.DictReader(
            io.StringIO(root.get("/console/events/export.csv", params={"range": "1h", "ResourceName": upn}).text)
        )
    )
    assert [(r["eventName"], r["userName"], r["eventType"]) for r in rows] == [
        ("CreateLoginProfile", "root", "ApiCall"),
        ("CreateUser", "root", "ApiCall"),
    ]
    export_event = acct.events(EventName="LookupEvents", User="root")[0]
    assert export_event["requestParameters"]["Export"] == "CSV"
    # One event by its ID; an unknown ID is a 404 page.
    event_id = records[0]["eventId"]
    detail = root.get(f"/console/events/{event_id}")
    assert detail.status_code == 200 and event_id in detail.text
    assert root.get("/console/events/NO-SUCH-EVENT").status_code == 404


def test_root_sign_in_lockout_and_safe_redirects(acct: Account) -> None:
    set_root_password(acct)
    client = httpx.Client(base_url=acct.server.url, follow_redirects=False)
    token = csrf_of(client.get("/console/signin").text)
    for _ in range(lockout.ROOT_MAX_ATTEMPTS):
        bad = client.post(
            "/console/signin", data={"login": acct.alias, "password": "not-the-password", "csrf_token": token}
        )
        assert bad.status_code == 401
    assert "locked for" in bad.text
    locked = client.post("/console/signin", data={"login": acct.alias, "password": ROOT_PASSWORD, "csrf_token": token})
    assert locked.status_code == 401 and "locked until" in locked.text
    assert acct.events(EventName="ConsoleSignin")[0]["errorCode"] == "LoginProfile.Locked"
    # Setting the password again (the operator's way out) lifts the lockout.
    set_root_password(acct)
    ok = client.post(
        "/console/signin",
        data={"login": acct.alias, "password": ROOT_PASSWORD, "csrf_token": token, "next": "https://evil.example/"},
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/console/"


def test_an_expired_password_must_be_changed_before_anything_else(acct: Account) -> None:
    upn = _member(acct, "ivan")
    acct.ims().set_password_policy(m.SetPasswordPolicyRequest(max_password_age=30))
    # White-box: age the password (as one the user chose) past MaxPasswordAge instead of waiting 31 days.
    with acct.server.runtime.db.transaction() as conn:
        conn.execute(
            sa.update(login_profiles)
            .where(login_profiles.c.account_id == acct.account_id)
            .values(password_set_ms=clock.now_ms() - 31 * 24 * 3600 * 1000, password_initial=False)
        )
    client = httpx.Client(base_url=acct.server.url, follow_redirects=False)
    token = csrf_of(client.get("/console/signin").text)
    signed = client.post("/console/signin", data={"login": upn, "password": PASSWORD, "csrf_token": token})
    assert signed.status_code == 303 and signed.headers["location"] == "/console/signin/change-password"
    assert client.get("/console/users").headers["location"] == "/console/signin/change-password"
    form = client.get("/console/signin/change-password")
    assert "Change your password to continue" in form.text
    session_token = csrf_of(form.text)
    mismatch = client.post(
        "/console/signin/change-password",
        data={
            "csrf_token": session_token,
            "old_password": PASSWORD,
            "new_password": "Renewed-pass-1357",
            "confirm_password": "Renewed-pass-1358",
        },
    )
    assert mismatch.status_code == 400 and "differ" in mismatch.text
    weak = client.post(
        "/console/signin/change-password",
        data={
            "csrf_token": session_token,
            "old_password": PASSWORD,
            "new_password": "short",
            "confirm_password": "short",
        },
    )
    assert weak.status_code == 400 and "password policy" in weak.text
    done = client.post(
        "/console/signin/change-password",
        data={
            "csrf_token": session_token,
            "old_password": PASSWORD,
            "new_password": "Renewed-pass-1357",
            "confirm_password": "Renewed-pass-1357",
        },
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/"
    assert client.get("/console/me").status_code == 200
    changed = acct.events(EventName="ChangePassword", User=upn)
    assert [e.get("errorCode") for e in changed] == [None, "InvalidParameter.NewPassword.Length"]
    assert all(e["eventType"] == "ConsoleOperation" for e in changed)
    # With HardExpire an expired password cannot even open that page.
    acct.ims().set_password_policy(m.SetPasswordPolicyRequest(max_password_age=30, hard_expire=True))
    with acct.server.runtime.db.transaction() as conn:
        conn.execute(
            sa.update(login_profiles)
            .where(login_profiles.c.account_id == acct.account_id)
            .values(password_set_ms=clock.now_ms() - 31 * 24 * 3600 * 1000)
        )
    fresh = httpx.Client(base_url=acct.server.url, follow_redirects=False)
    refused = fresh.post(
        "/console/signin",
        data={"login": upn, "password": "Renewed-pass-1357", "csrf_token": csrf_of(fresh.get("/console/signin").text)},
    )
    assert refused.status_code == 401 and "has expired" in refused.text


def test_set_password_refuses_weak_passwords_and_unknown_accounts(acct: Account) -> None:
    server = acct.server
    base = [sys.executable, "-m", "openims", "--data-dir", str(server.data_dir), "account", "set-password"]
    short = subprocess.run(
        [*base, "--account", acct.alias],
        input="short\n",
        capture_output=True,
        text=True,
        env=server.env,
        timeout=60,
        check=False,
    )
    assert short.returncode == 2 and "10 to 128 printable ASCII characters" in short.stderr
    unknown = subprocess.run(
        [*base, "--account", "no-such-alias"],
        input=ROOT_PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=server.env,
        timeout=60,
        check=False,
    )
    assert unknown.returncode == 2 and "no account 'no-such-alias'" in unknown.stderr
    # Without a password the root identity cannot sign in to the console, and says how to set one.
    client = httpx.Client(base_url=server.url, follow_redirects=False)
    refused = client.post(
        "/console/signin",
        data={
            "login": acct.alias,
            "password": ROOT_PASSWORD,
            "csrf_token": csrf_of(client.get("/console/signin").text),
        },
    )
    assert refused.status_code == 401 and "openims account set-password" in refused.text
    query = sa.text("SELECT password_hash FROM accounts WHERE id = :id")
    with server.runtime.db.read() as conn:
        stored = conn.execute(query, {"id": acct.account_id}).scalar()
    assert stored is None
    set_root_password(acct)
    with server.runtime.db.read() as conn:
        stored = conn.execute(query, {"id": acct.account_id}).scalar()
    assert stored.startswith("$argon2id$") and ROOT_PASSWORD not in stored
    # The account's history shows it, without the password.
    [event] = acct.events(EventName="SetAccountPassword")
    assert (event["userIdentity"]["type"], event["userAgent"], event["eventRW"]) == (
        "root-account",
        "openims-cli",
        "Write",
    )
    assert ROOT_PASSWORD not in json.dumps(event)


def test_a_control_character_in_a_login_name_is_a_refused_sign_in(acct: Account) -> None:
    """PostgreSQL cannot even look such a name up: on every backend it names nobody, and the attempt is on
    the record of the account it names."""
    client = httpx.Client(base_url=acct.server.url, follow_redirects=False)
    token = csrf_of(client.get("/console/signin").text)
    for login in (f"bob\x00@{acct.alias}", f"bob@{acct.alias}\x00", f"{acct.alias}\x00"):
        refused = client.post("/console/signin", data={"login": login, "password": "whatever-1", "csrf_token": token})
        assert refused.status_code == 401, refused.text
    signins = acct.events(EventName="ConsoleSignin")
    assert [e["additionalEventData"]["loginAccount"] for e in signins] == ["bob\ufffd"]
    assert signins[0]["errorCode"] == "InvalidCredentials"


def test_the_integrity_page_verifies_the_log_and_the_event_page_shows_its_position(acct: Account) -> None:
    set_root_password(acct)
    client = http_session(acct, acct.alias, ROOT_PASSWORD)
    created = acct.ims().create_user(m.CreateUserRequest(user_principal_name=acct.upn("logged"), display_name="l"))
    event_id = acct.event_for(created.body.request_id)["eventId"]
    deadline = time.monotonic() + 30
    while "covered by the checkpoint" not in (detail := client.get(f"/console/events/{event_id}").text):
        assert time.monotonic() < deadline, detail
        time.sleep(0.5)
    assert re.search(r"position \d+, covered by the checkpoint of \d+ events", detail)
    page = client.get("/console/integrity")
    assert page.status_code == 200 and "Newest signed checkpoint" in page.text and "Events covered" in page.text
    # `Verify now` starts a background job and returns at once; the page shows its progress, then its result.
    started = client.post("/console/integrity/verify", data={"csrf_token": csrf_of(page.text)})
    assert started.status_code == 303 and started.headers["location"] == "/console/integrity"
    deadline = time.monotonic() + 60
    while "Verifying" in (shown := client.get("/console/integrity")).text:
        assert shown.headers["refresh"] == "2" and "<progress" in shown.text
        assert time.monotonic() < deadline, shown.text
        time.sleep(0.3)
    assert "Intact" in shown.text and "refresh" not in shown.headers, shown.text
    (event,) = acct.events(EventName="VerifyEventLog")  # recorded as the job ends, before it shows as done
    assert event["eventType"] == "ConsoleOperation" and "errorCode" not in event
    assert event["responseElements"]["Events"] >= 1

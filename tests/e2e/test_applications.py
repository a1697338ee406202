"""OAuth applications and their secrets through the official IMS SDK: limits, defaults, events, and secrets
that are shown once and never stored or recorded in the clear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alibabacloud_ims20190815 import models as m
from sqlalchemy import inspect, select
from Tea.exceptions import TeaException

from openims.store.schema import load_all
from tests.support import Account, Server


def fails(call, code: str, status: int) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TeaException) as info:
        call()
    assert (info.value.code, info.value.statusCode) == (code, status), info.value.message


def stored_anywhere(server: Server, needle: str) -> bool:
    """Whether `needle` appears in any row of any table, or (SQLite) anywhere in the database files."""
    if server.backend == "sqlite":
        for path in Path(server.data_dir).glob("openims.db*"):
            if needle.encode() in path.read_bytes():
                return True
    with server.runtime.db.read() as conn:
        present = set(inspect(conn).get_table_names())
        for table in (t for t in load_all().sorted_tables if t.name in present):
            for row in conn.execute(select(table)).all():
                if any(needle in (v.decode("latin-1") if isinstance(v, bytes) else str(v)) for v in row):
                    return True
    return False


def test_web_application_lifecycle_is_audited(acct: Account) -> None:
    ims = acct.ims()
    created = ims.create_application(
        m.CreateApplicationRequest(
            app_name="portal",
            display_name="Portal",
            app_type="WebApp",
            redirect_uris="https://portal.example.com/callback;http://localhost:8080/cb",
            predefined_scopes="openid;aliuid;profile",
            required_scopes="openid;/acs/ccc",
        )
    ).body
    app = created.application
    assert app.app_id.isdigit() and app.account_id == acct.account_id and app.app_name == "portal"
    assert (app.app_type, app.display_name, app.protocol_version) == ("WebApp", "Portal", "2.0")
    # SDK defaults for a WebApp: a secret is always required, single tenant, tokens 1 hour / 90 days.
    assert (app.secret_required, app.is_multi_tenant, app.access_token_validity, app.refresh_token_validity) == (
        True,
        False,
        3600,
        7776000,
    )
    assert app.redirect_uris.redirect_uri == ["https://portal.example.com/callback", "http://localhost:8080/cb"]
    scopes = app.delegated_scope.predefined_scopes.predefined_scope
    # a required scope outside PredefinedScopes is not made required (the SDK's rule)
    assert [(s.name, s.required) for s in scopes] == [("openid", True), ("aliuid", False), ("profile", False)]
    assert all(s.description for s in scopes)

    got = ims.get_application(m.GetApplicationRequest(app_id=app.app_id)).body.application
    assert got.to_map() == app.to_map()

    updated = ims.update_application(
        m.UpdateApplicationRequest(
            app_id=app.app_id,
            new_display_name="Portal 2",
            new_access_token_validity=900,
            new_refresh_token_validity=7200,
            new_is_multi_tenant=True,
            new_secret_required=False,
            new_redirect_uris="https://portal2.example.com/cb",
            new_predefined_scopes="openid;/acs/alidns",
            new_required_scopes="/acs/alidns",
        )
    ).body.application
    assert (
        updated.display_name,
        updated.access_token_validity,
        updated.refresh_token_validity,
        updated.is_multi_tenant,
    ) == ("Portal 2", 900, 7200, True)
    assert updated.secret_required is True  # WebApp keeps requiring a secret whatever is asked
    assert updated.redirect_uris.redirect_uri == ["https://portal2.example.com/cb"]
    assert [(s.name, s.required) for s in updated.delegated_scope.predefined_scopes.predefined_scope] == [
        ("openid", False),
        ("/acs/alidns", True),
    ]
    assert updated.update_date >= updated.create_date

    listed = ims.list_applications().body.applications.application
    assert [(a.app_id, a.display_name) for a in listed] == [(app.app_id, "Portal 2")]

    deleted = ims.delete_application(m.DeleteApplicationRequest(app_id=app.app_id)).body
    fails(lambda: ims.get_application(m.GetApplicationRequest(app_id=app.app_id)), "EntityNotExist.Application", 404)
    assert ims.list_applications().body.applications.application == []

    for request_id, name, rw in (
        (created.request_id, "CreateApplication", "Write"),
        (deleted.request_id, "DeleteApplication", "Write"),
    ):
        event = acct.event_for(request_id)
        assert (event["eventName"], event["eventRW"], event["resourceType"], event["resourceName"]) == (
            name,
            rw,
            "ACS::RAM::Application",
            app.app_id,
        )
    assert acct.events(EventName="CreateApplication")[0]["responseElements"]["Application"]["AppId"] == app.app_id
    for name in ("GetApplication", "UpdateApplication", "ListApplications"):
        events = [e for e in acct.events(EventName=name) if "errorCode" not in e]
        assert events, name
    update_event = acct.events(EventName="UpdateApplication")[0]
    assert (update_event["eventRW"], update_event["resourceName"]) == ("Write", app.app_id)
    assert acct.events(EventName="GetApplication")[-1]["eventRW"] == "Read"


def test_native_and_server_application_defaults(acct: Account) -> None:
    ims = acct.ims()
    native = ims.create_application(
        m.CreateApplicationRequest(
            app_name="cli", display_name="CLI", app_type="NativeApp", redirect_uris="http://127.0.0.1/cb"
        )
    ).body.application
    assert (native.secret_required, native.is_multi_tenant, native.refresh_token_validity) == (False, True, 2592000)
    assert native.delegated_scope.predefined_scopes.predefined_scope == []
    native = ims.update_application(
        m.UpdateApplicationRequest(app_id=native.app_id, new_secret_required=True)
    ).body.application
    assert native.secret_required is True

    server = ims.create_application(
        m.CreateApplicationRequest(
            app_name="scim",
            display_name="SCIM sync",
            app_type="ServerApp",
            secret_required=False,
            is_multi_tenant=False,
            predefined_scopes="/internal/ram/usersync",
            protocol_version="2.1",
        )
    ).body.application
    assert (server.secret_required, server.is_multi_tenant, server.protocol_version) == (True, False, "2.1")
    # without AppName the application is named by its ID
    unnamed = ims.create_application(
        m.CreateApplicationRequest(display_name="No name", app_type="WebApp")
    ).body.application
    assert unnamed.app_name == unnamed.app_id


def test_predefined_scopes_by_type(acct: Account) -> None:
    ims = acct.ims()
    names = lambda t: [
        s.name
        for s in ims.list_predefined_scopes(
            m.ListPredefinedScopesRequest(app_type=t)
        ).body.predefined_scopes.predefined_scope
    ]
    assert names("WebApp")[:3] == ["openid", "aliuid", "profile"]
    assert names("ServerApp") == ["/internal/ram/usersync"]
    everything = ims.list_predefined_scopes(m.ListPredefinedScopesRequest()).body.predefined_scopes.predefined_scope
    assert {s.name for s in everything} >= set(names("WebApp")) | set(names("ServerApp")) and all(
        s.description for s in everything
    )
    fails(
        lambda: ims.list_predefined_scopes(m.ListPredefinedScopesRequest(app_type="Mobile")),
        "InvalidParameter.AppType",
        400,
    )
    event = acct.events(EventName="ListPredefinedScopes")[0]
    assert event["eventRW"] == "Read" and event["errorCode"] == "InvalidParameter.AppType"


def test_application_validation_and_duplicates(acct: Account) -> None:
    ims = acct.ims()
    ims.create_application(m.CreateApplicationRequest(app_name="dup", display_name="Dup", app_type="WebApp"))
    web = lambda **kw: m.CreateApplicationRequest(
        **{"app_name": "ok", "display_name": "OK", "app_type": "WebApp", **kw}
    )
    cases = [
        (web(app_name="DUP"), "EntityAlreadyExists.Application", 409),
        (web(app_name="bad name"), "InvalidParameter.AppName.InvalidChars", 400),
        (web(app_name="a" * 65), "InvalidParameter.AppName.Length", 400),
        (web(display_name="x" * 25), "InvalidParameter.DisplayName.Length", 400),
        (web(display_name=None), "MissingParameter", 400),
        (web(app_type=None), "MissingParameter", 400),
        (web(app_type="DesktopApp"), "InvalidParameter.AppType", 400),
        (web(access_token_validity=899), "InvalidParameter.AccessTokenValidity", 400),
        (web(access_token_validity=10801), "InvalidParameter.AccessTokenValidity", 400),
        (web(refresh_token_validity=7199), "InvalidParameter.RefreshTokenValidity", 400),
        (web(refresh_token_validity=31536001), "InvalidParameter.RefreshTokenValidity", 400),
        (web(protocol_version="1.0"), "InvalidParameter.ProtocolVersion", 400),
        (web(predefined_scopes="openid;/internal/ram/usersync"), "InvalidParameter.PredefinedScopes.Unsupported", 400),
        (web(redirect_uris="not a uri"), "InvalidParameter.RedirectUris.Format", 400),
        (web(redirect_uris="https://a.example.com/cb#frag"), "InvalidParameter.RedirectUris.Format", 400),
        (
            web(redirect_uris=";".join(f"https://e.example.com/{i}" for i in range(11))),
            "InvalidParameter.RedirectUris.Length",
            400,
        ),
    ]
    for request, code, status in cases:
        fails(lambda request=request: ims.create_application(request), code, status)
    failed = acct.events(EventName="CreateApplication")
    assert sorted(e["errorCode"] for e in failed if "errorCode" in e) == sorted(code for _, code, _ in cases)
    assert len(ims.list_applications().body.applications.application) == 1

    fails(lambda: ims.get_application(m.GetApplicationRequest(app_id="123")), "EntityNotExist.Application", 404)
    fails(lambda: ims.get_application(m.GetApplicationRequest()), "MissingParameter", 400)
    fails(
        lambda: ims.update_application(m.UpdateApplicationRequest(app_id="123", new_display_name="x")),
        "EntityNotExist.Application",
        404,
    )
    fails(lambda: ims.delete_application(m.DeleteApplicationRequest(app_id="123")), "EntityNotExist.Application", 404)
    app_id = ims.list_applications().body.applications.application[0].app_id
    fails(
        lambda: ims.update_application(m.UpdateApplicationRequest(app_id=app_id, new_predefined_scopes="email")),
        "InvalidParameter.NewPredefinedScopes.Unsupported",
        400,
    )
    fails(
        lambda: ims.update_application(m.UpdateApplicationRequest(app_id=app_id, new_access_token_validity=60)),
        "InvalidParameter.NewAccessTokenValidity",
        400,
    )
    assert acct.events(EventName="UpdateApplication")[0]["resourceName"] == app_id


def test_application_quota(acct: Account) -> None:
    ims = acct.ims()
    for i in range(50):
        ims.create_application(
            m.CreateApplicationRequest(app_name=f"app{i}", display_name=f"App {i}", app_type="NativeApp")
        )
    fails(
        lambda: ims.create_application(
            m.CreateApplicationRequest(app_name="one-more", display_name="x", app_type="WebApp")
        ),
        "LimitExceeded.Application",
        409,
    )
    assert len(ims.list_applications().body.applications.application) == 50


def test_app_secrets_are_shown_once_and_never_stored_or_recorded(acct: Account, server: Server) -> None:
    ims = acct.ims()
    app_id = ims.create_application(
        m.CreateApplicationRequest(app_name="web", display_name="Web", app_type="WebApp")
    ).body.application.app_id
    first = ims.create_app_secret(m.CreateAppSecretRequest(app_id=app_id)).body
    second = ims.create_app_secret(m.CreateAppSecretRequest(app_id=app_id)).body
    values = [first.app_secret.app_secret_value, second.app_secret.app_secret_value]
    assert all(len(v) >= 32 for v in values) and values[0] != values[1]
    assert first.app_secret.app_id == app_id and first.app_secret.app_secret_id and first.app_secret.create_date
    fails(lambda: ims.create_app_secret(m.CreateAppSecretRequest(app_id=app_id)), "LimitExceeded.AppSecret", 409)

    got = ims.get_app_secret(m.GetAppSecretRequest(app_id=app_id, app_secret_id=first.app_secret.app_secret_id)).body
    assert got.app_secret.app_secret_id == first.app_secret.app_secret_id and got.app_secret.create_date
    assert got.app_secret.app_secret_value is None  # never shown again
    ids = ims.list_app_secret_ids(m.ListAppSecretIdsRequest(app_id=app_id)).body.app_secrets.app_secret
    assert sorted(s.app_secret_id for s in ids) == sorted(
        [first.app_secret.app_secret_id, second.app_secret.app_secret_id]
    )
    assert all(s.app_id == app_id and s.create_date for s in ids)

    deleted = ims.delete_app_secret(
        m.DeleteAppSecretRequest(app_id=app_id, app_secret_id=first.app_secret.app_secret_id)
    ).body
    fails(
        lambda: ims.get_app_secret(m.GetAppSecretRequest(app_id=app_id, app_secret_id=first.app_secret.app_secret_id)),
        "EntityNotExist.AppSecret",
        404,
    )
    fails(
        lambda: ims.delete_app_secret(m.DeleteAppSecretRequest(app_id=app_id, app_secret_id="nope")),
        "EntityNotExist.AppSecret",
        404,
    )
    fails(lambda: ims.create_app_secret(m.CreateAppSecretRequest(app_id="42")), "EntityNotExist.Application", 404)
    fails(lambda: ims.list_app_secret_ids(m.ListAppSecretIdsRequest(app_id="42")), "EntityNotExist.Application", 404)
    fails(lambda: ims.get_app_secret(m.GetAppSecretRequest(app_id=app_id)), "MissingParameter", 400)
    third = ims.create_app_secret(m.CreateAppSecretRequest(app_id=app_id)).body  # room again after the delete
    values.append(third.app_secret.app_secret_value)

    created_event = acct.event_for(first.request_id)
    assert (
        created_event["eventName"],
        created_event["eventRW"],
        created_event["resourceType"],
        created_event["resourceName"],
    ) == ("CreateAppSecret", "Write", "ACS::RAM::Application", app_id)
    assert created_event["responseElements"]["AppSecret"]["AppSecretValue"] == "******"
    assert created_event["responseElements"]["AppSecret"]["AppSecretId"] == first.app_secret.app_secret_id
    assert acct.event_for(deleted.request_id)["eventName"] == "DeleteAppSecret"
    assert acct.event_for(got.request_id)["eventName"] == "GetAppSecret"
    assert acct.events(EventName="ListAppSecretIds")
    everything = json.dumps(acct.events())
    assert not any(v in everything for v in values)
    assert not any(stored_anywhere(server, v) for v in values)

    # deleting the application removes its secrets with it
    ims.delete_application(m.DeleteApplicationRequest(app_id=app_id))
    fails(lambda: ims.list_app_secret_ids(m.ListAppSecretIdsRequest(app_id=app_id)), "EntityNotExist.Application", 404)


def test_applications_are_private_to_their_account(acct: Account, server: Server) -> None:
    other = server.new_account()
    app_id = (
        acct.ims()
        .create_application(m.CreateApplicationRequest(app_name="mine", display_name="Mine", app_type="WebApp"))
        .body.application.app_id
    )
    fails(
        lambda: other.ims().get_application(m.GetApplicationRequest(app_id=app_id)), "EntityNotExist.Application", 404
    )
    fails(
        lambda: other.ims().create_app_secret(m.CreateAppSecretRequest(app_id=app_id)),
        "EntityNotExist.Application",
        404,
    )
    # the same name is free in another account
    other.ims().create_application(m.CreateApplicationRequest(app_name="mine", display_name="Mine", app_type="WebApp"))

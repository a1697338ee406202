"""OAuth 2.0 / OpenID Connect for applications, as a client built with Authlib uses it: the code flow with PKCE
against a NativeApp (the person signs in and consents with the console's forms over HTTP), the ID token checked
with the published keys, userinfo, refresh, and refusal once the user, the application or its secret is gone;
every step findable with LookupEvents, no token or secret in any event or row."""

from __future__ import annotations

import json
import time

import httpx
import pyotp
import pytest
from alibabacloud_ims20190815 import models as m
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client

from tests.console.conftest import ROOT_PASSWORD, set_root_password
from tests.e2e.test_applications import stored_anywhere
from tests.oauth_support import (
    CALLBACK,
    Browser,
    application,
    authorize_url,
    client,
    discovery,
    redirected_to_client,
    secret_of,
    user_with_password,
    verified_id_token,
)
from tests.support import Account


def _events(acct: Account, app_id: str) -> list[dict]:  # type: ignore[type-arg]
    return acct.events(ResourceName=app_id)


def issued_again(issued: list[dict]) -> dict:  # type: ignore[type-arg]
    return next(e for e in issued if e.get("errorCode"))


def _by_name(found: list[dict], name: str) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in found if e["eventName"] == name]


def _signed_in_native_app(acct: Account, name: str) -> tuple[str, str, dict, OAuth2Client, dict]:  # type: ignore[type-arg]
    """A user `name` signed in through the browser to a new NativeApp, which got its tokens with PKCE:
    (UPN, AppId, discovery document, the app's client, the tokens)."""
    upn = user_with_password(acct, name)
    app_id = application(acct, "NativeApp")
    meta = discovery(acct)
    oauth = client(acct, app_id)
    url, verifier, _ = authorize_url(acct, oauth)
    browser = Browser.open(acct)
    back = redirected_to_client(browser.consent(browser.sign_in(browser.walk(url), upn)))
    token = oauth.fetch_token(
        meta["token_endpoint"],
        authorization_response=f"{CALLBACK}?code={back['code']}&state={back['state']}",
        code_verifier=verifier,
    )
    return upn, app_id, meta, oauth, token


def test_native_app_code_flow_with_pkce_refresh_and_user_deletion(acct: Account) -> None:
    upn = user_with_password(acct, "alice")
    app_id = application(acct, "NativeApp")
    meta = discovery(acct)
    assert meta["issuer"] == acct.server.url
    assert meta["authorization_endpoint"] == acct.server.url + "/oauth2/v1/auth"
    assert meta["token_endpoint"] == acct.server.url + "/v1/token"
    assert meta["jwks_uri"] == acct.server.url + "/v1/keys"
    assert meta["code_challenge_methods_supported"] == ["S256"]

    oauth = client(acct, app_id)
    url, verifier, nonce = authorize_url(acct, oauth)
    browser = Browser.open(acct)
    # Not signed in: the console's sign-in first, then the consent form, then back to the client with a code.
    signin = browser.walk(url)
    consent = browser.sign_in(signin, upn)
    assert "Test app" in consent.text and "profile" in consent.text
    back = redirected_to_client(browser.consent(consent))
    token = oauth.fetch_token(
        meta["token_endpoint"],
        authorization_response=f"{CALLBACK}?code={back['code']}&state={back['state']}",
        code_verifier=verifier,
    )
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    assert token["scope"] == "openid profile aliuid" and token["refresh_token"]
    claims = verified_id_token(acct, token["id_token"], app_id, nonce)
    user = acct.ims().get_user(m.GetUserRequest(user_principal_name=upn)).body.user
    assert (claims["upn"], claims["uid"], claims["aid"], claims["name"]) == (
        upn,
        user.user_id,
        acct.account_id,
        "Alice",
    )
    assert claims["login_name"] == "alice" and claims["amr"] == ["pwd"]
    assert user.user_id not in claims["sub"] and "alice" not in claims["sub"]
    # The code is good once.
    with pytest.raises(OAuthError) as reused:
        client(acct, app_id).fetch_token(
            meta["token_endpoint"],
            authorization_response=f"{CALLBACK}?code={back['code']}&state={back['state']}",
            code_verifier=verifier,
        )
    assert reused.value.error == "invalid_grant"
    info = httpx.get(meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"})
    assert info.status_code == 200 and info.json()["sub"] == claims["sub"] and info.json()["upn"] == upn

    # Consent is asked once: the next authorization goes straight back with a code.
    url2, _verifier2, _ = authorize_url(acct, oauth)
    again = redirected_to_client(browser.walk(url2))
    assert again["code"] != back["code"]
    # Unless the client asks for it again.
    url3, _, _ = authorize_url(acct, oauth, prompt="consent")
    assert 'name="decision"' in browser.walk(url3).text

    refreshed = oauth.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] != token["refresh_token"]
    introspect = httpx.post(
        meta["introspection_endpoint"], data={"token": refreshed["access_token"], "client_id": app_id}
    ).json()
    assert introspect["active"] is True and introspect["username"] == upn and introspect["client_id"] == app_id

    # The user is deleted: its tokens are refused everywhere.
    acct.ims().delete_user(m.DeleteUserRequest(user_principal_name=upn))
    with pytest.raises(OAuthError) as gone:
        oauth.refresh_token(meta["token_endpoint"], refresh_token=refreshed["refresh_token"])
    assert gone.value.error == "invalid_grant"
    after = httpx.post(meta["introspection_endpoint"], data={"token": refreshed["access_token"], "client_id": app_id})
    assert after.json() == {"active": False}
    denied = httpx.get(meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    assert denied.status_code == 401

    found = _events(acct, app_id)
    granted = _by_name(found, "OAuthAuthorize")
    assert [e.get("errorCode") for e in granted] == [None, None]
    assert {e["additionalEventData"]["consent"] for e in granted} == {"given", "stored"}
    issued = _by_name(found, "OAuthIssueToken")
    assert sorted(str(e.get("errorCode")) for e in issued) == ["None", "invalid_grant"]
    refreshes = _by_name(found, "OAuthRefreshToken")
    assert sorted(str(e.get("errorCode")) for e in refreshes) == ["None", "invalid_grant"]
    refused = next(e for e in refreshes if e.get("errorCode"))
    assert "deleted or disabled" in refused["errorMessage"]
    assert _by_name(found, "OAuthIntrospectToken")[0]["errorCode"] == "InactiveToken"
    # Each names the application, and the user wherever it is known (a code that no longer exists names none).
    for event in granted + issued + refreshes:
        assert event["serviceName"] == "OAuth" and event["resourceName"].split(";")[0] == app_id
        assert event["userIdentity"]["userName"] == ("" if event is issued_again(issued) else upn)
    # The user's events name it too.
    assert {e["eventName"] for e in acct.events(User=upn)} >= {"OAuthAuthorize", "OAuthIssueToken"}
    # Nothing handed out is in any event, or stored anywhere in the clear.
    bodies = json.dumps(found)
    for value in (back["code"], token["access_token"], token["refresh_token"], refreshed["refresh_token"]):
        assert value not in bodies
        assert not stored_anywhere(acct.server, value)


def test_a_user_with_mfa_passes_its_code_on_the_way(acct: Account) -> None:
    upn = user_with_password(acct, "ivan")
    ims = acct.ims()
    device = ims.create_virtual_mfadevice(m.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="ivan")).body
    seed = device.virtual_mfadevice.base_32string_seed
    otp, now = pyotp.TOTP(seed), time.time()
    ims.bind_mfadevice(
        m.BindMFADeviceRequest(
            user_principal_name=upn,
            serial_number=device.virtual_mfadevice.serial_number,
            authentication_code_1=otp.at(now - 60),
            authentication_code_2=otp.at(now - 30),
        )
    )
    app_id = application(acct, "NativeApp")
    meta = discovery(acct)
    oauth = client(acct, app_id)
    url, verifier, nonce = authorize_url(acct, oauth)
    browser = Browser.open(acct)
    mfa_step = browser.sign_in(browser.walk(url), upn)
    assert 'name="code"' in mfa_step.text
    consent = browser.submit(mfa_step, "/console/signin/mfa", code=otp.now())
    back = redirected_to_client(browser.consent(consent))
    token = oauth.fetch_token(
        meta["token_endpoint"],
        authorization_response=f"{CALLBACK}?code={back['code']}&state={back['state']}",
        code_verifier=verifier,
    )
    assert verified_id_token(acct, token["id_token"], app_id, nonce)["amr"] == ["pwd", "mfa"]
    authorized = _by_name(_events(acct, app_id), "OAuthAuthorize")[0]
    assert authorized["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"] == "true"
    assert acct.events(ResourceName=app_id, MFAUsed="true")


def test_web_app_authenticates_with_its_secret_and_loses_its_tokens_with_it(acct: Account) -> None:
    upn = user_with_password(acct, "bob")
    app_id = application(acct, "WebApp")
    secret_id, secret = secret_of(acct, app_id)
    _other_id, other = secret_of(acct, app_id)
    meta = discovery(acct)
    oauth = client(acct, app_id, secret)
    url, verifier, nonce = authorize_url(acct, oauth)
    browser = Browser.open(acct)
    back = redirected_to_client(browser.consent(browser.sign_in(browser.walk(url), upn)))
    # A wrong secret is refused, and recorded.
    with pytest.raises(OAuthError) as wrong:
        client(acct, app_id, "x" * 64).fetch_token(
            meta["token_endpoint"], authorization_response=f"{CALLBACK}?code={back['code']}&state={back['state']}"
        )
    assert wrong.value.error == "invalid_client"
    token = oauth.fetch_token(
        meta["token_endpoint"],
        authorization_response=f"{CALLBACK}?code={back['code']}&state={back['state']}",
        code_verifier=verifier,
    )
    verified_id_token(acct, token["id_token"], app_id, nonce)

    acct.ims().delete_app_secret(m.DeleteAppSecretRequest(app_id=app_id, app_secret_id=secret_id))
    with pytest.raises(OAuthError) as refused:
        oauth.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert refused.value.error == "invalid_client"
    # Even presented by the application with its other secret, the tokens issued under the deleted one are dead.
    with pytest.raises(OAuthError) as dead:
        client(acct, app_id, other).refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert dead.value.error == "invalid_grant"
    inactive = httpx.post(meta["introspection_endpoint"], data={"token": token["access_token"]}, auth=(app_id, other))
    assert inactive.json() == {"active": False}

    found = _events(acct, app_id)
    failures = [e for e in found if e["eventName"] in ("OAuthIssueToken", "OAuthRefreshToken") and e.get("errorCode")]
    assert sorted(e["errorCode"] for e in failures) == ["invalid_client", "invalid_client", "invalid_grant"]
    assert secret not in json.dumps(found) and other not in json.dumps(found)


def test_deleting_the_application_ends_its_tokens(acct: Account) -> None:
    _upn, app_id, meta, oauth, token = _signed_in_native_app(acct, "carol")
    acct.ims().delete_application(m.DeleteApplicationRequest(app_id=app_id))
    with pytest.raises(OAuthError) as gone:
        oauth.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert gone.value.error == "invalid_client"
    denied = httpx.get(meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"})
    assert denied.status_code == 401


def test_disabling_the_users_console_logon_ends_its_tokens(acct: Account) -> None:
    upn, _app_id, meta, oauth, token = _signed_in_native_app(acct, "heidi")
    ims = acct.ims()
    ims.update_login_profile(m.UpdateLoginProfileRequest(user_principal_name=upn, status="Inactive"))
    # Re-enabling does not bring the tokens back: they ended with the access.
    ims.update_login_profile(m.UpdateLoginProfileRequest(user_principal_name=upn, status="Active"))
    with pytest.raises(OAuthError) as ended:
        oauth.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert ended.value.error == "invalid_grant" and "lost console logon" in str(ended.value.description)


def test_refused_requests_and_revocation_are_audited(acct: Account) -> None:
    upn = user_with_password(acct, "dave")
    app_id = application(acct, "NativeApp", scopes="openid;profile")
    meta = discovery(acct)
    browser = Browser.open(acct)
    oauth = client(acct, app_id, scope="openid profile")
    # Sign in first, through an authorization whose redirect URI is not exactly the application's: an error page,
    # never a redirect to it.
    url, _, _ = authorize_url(acct, oauth)
    bad_uri = url.replace("%2Fcallback", "%2Fcallback%2Fx")
    shown = browser.sign_in(browser.walk(bad_uri), upn)
    assert shown.status_code == 400 and "not supported by client" in shown.text
    # A scope the application does not have: back to the client with invalid_scope.
    url, _, _ = authorize_url(acct, client(acct, app_id, scope="openid aliuid"))
    assert redirected_to_client(browser.walk(url))["error"] == "invalid_scope"
    # A NativeApp without PKCE.
    no_pkce, _ = oauth.create_authorization_url(meta["authorization_endpoint"])
    assert redirected_to_client(browser.walk(no_pkce))["error"] == "invalid_request"
    # The person says no.
    url, _, _ = authorize_url(acct, oauth)
    assert redirected_to_client(browser.consent(browser.walk(url), "deny"))["error"] == "access_denied"
    # Yes, then the client revokes its refresh token: both tokens end.
    url, verifier, _ = authorize_url(acct, oauth)
    back = redirected_to_client(browser.consent(browser.walk(url)))
    token = oauth.fetch_token(
        meta["token_endpoint"],
        authorization_response=f"{CALLBACK}?code={back['code']}&state={back['state']}",
        code_verifier=verifier,
    )
    revoked = httpx.post(meta["revocation_endpoint"], data={"token": token["refresh_token"], "client_id": app_id})
    assert revoked.status_code == 200
    inactive = httpx.post(meta["introspection_endpoint"], data={"token": token["access_token"], "client_id": app_id})
    assert inactive.json() == {"active": False}

    found = _events(acct, app_id)
    authorizations = sorted(str(e.get("errorCode")) for e in _by_name(found, "OAuthAuthorize"))
    assert authorizations == ["None", "access_denied", "invalid_request", "invalid_request", "invalid_scope"]
    assert all(e["userIdentity"]["userName"] == upn for e in _by_name(found, "OAuthAuthorize"))
    revocation = _by_name(found, "OAuthRevokeToken")[0]
    assert revocation.get("errorCode") is None and revocation["additionalEventData"]["tokenType"] == "refresh_token"
    assert "revoked" in _by_name(found, "OAuthIntrospectToken")[0]["errorMessage"]


def test_users_of_another_account_are_refused(acct: Account) -> None:
    app_id = application(acct, "NativeApp")
    other = acct.server.new_account()
    stranger = user_with_password(other, "mallory")
    browser = Browser.open(acct)
    url, _, _ = authorize_url(acct, client(acct, app_id))
    back = redirected_to_client(browser.sign_in(browser.walk(url), stranger))
    assert back["error"] == "access_denied"
    refusal = _by_name(_events(acct, app_id), "OAuthAuthorize")[0]
    assert refusal["errorCode"] == "access_denied" and refusal["recipientAccountId"] == acct.account_id
    assert refusal["additionalEventData"]["foreignUser"] == stranger
    assert refusal["additionalEventData"]["foreignAccountId"] == other.account_id


def test_a_replayed_refresh_token_ends_the_authorization(acct: Account) -> None:
    _upn, _app_id, meta, oauth, first = _signed_in_native_app(acct, "erin")
    second = oauth.refresh_token(meta["token_endpoint"], refresh_token=first["refresh_token"])
    with pytest.raises(OAuthError):  # the first refresh token again: stolen, or replayed
        oauth.refresh_token(meta["token_endpoint"], refresh_token=first["refresh_token"])
    with pytest.raises(OAuthError) as ended:  # and the legitimate holder's is ended with it
        oauth.refresh_token(meta["token_endpoint"], refresh_token=second["refresh_token"])
    assert ended.value.error == "invalid_grant"


def test_malformed_requests_get_oauth_errors(acct: Account) -> None:
    """Garbage at every endpoint is an OAuth error or a refusal, never a server error, and writes nothing."""
    upn = user_with_password(acct, "grace")
    app_id = application(acct, "NativeApp")
    meta = discovery(acct)
    base = acct.server.url
    huge = "x" * 20_000
    for data, headers in (
        ({}, {}),
        ({"grant_type": "authorization_code"}, {}),
        ({"grant_type": "authorization_code", "client_id": app_id, "code": huge, "redirect_uri": CALLBACK}, {}),
        ({"grant_type": "refresh_token", "client_id": app_id, "refresh_token": "a\x00b"}, {}),
        ({"grant_type": "authorization_code", "client_id": "1\x002"}, {}),
        ({"grant_type": "password", "username": upn, "password": "x"}, {}),
        ({"grant_type": "authorization_code", "code": "x"}, {"Authorization": "Basic !!!not-base64"}),
        ({"grant_type": "authorization_code", "code": "x"}, {"Authorization": f"Basic {huge}"}),
    ):
        answer = httpx.post(meta["token_endpoint"], data=data, headers=headers)
        assert answer.status_code in (400, 401), (data, answer.status_code, answer.text[:200])
        assert "error" in answer.json()
    for endpoint in (meta["revocation_endpoint"], meta["introspection_endpoint"]):
        assert httpx.post(endpoint, data={"client_id": app_id}).status_code == 400
        assert httpx.post(endpoint, data={"client_id": app_id, "token": huge}).status_code == 200
    broken = httpx.post(
        meta["token_endpoint"], content=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert broken.status_code == 400
    for header in ({}, {"Authorization": "Bearer " + huge}, {"Authorization": "Bearer a\x01b"}, {"Authorization": "x"}):
        assert httpx.get(meta["userinfo_endpoint"], headers=header).status_code in (400, 401)
    # A nonce PostgreSQL could not store, and a repeated parameter: refused, not stored.
    browser = Browser.open(acct)
    url, _, _ = authorize_url(acct, client(acct, app_id), nonce="n\x00" + huge)
    assert redirected_to_client(browser.sign_in(browser.walk(url), upn))["error"] == "invalid_request"
    url, _, _ = authorize_url(acct, client(acct, app_id))
    repeated = browser.walk(url + f"&client_id={app_id}")
    assert repeated.status_code == 400 and "Multiple" in repeated.text
    assert httpx.get(f"{base}/v1/keys").json()["keys"][0]["alg"] == "RS256"


def test_the_root_identity_signs_in_to_an_application(acct: Account) -> None:
    set_root_password(acct)
    app_id = application(acct, "NativeApp")
    meta = discovery(acct)
    oauth = client(acct, app_id)
    url, verifier, nonce = authorize_url(acct, oauth)
    browser = Browser.open(acct)
    back = redirected_to_client(browser.consent(browser.sign_in(browser.walk(url), acct.alias, ROOT_PASSWORD)))
    token = oauth.fetch_token(
        meta["token_endpoint"],
        authorization_response=f"{CALLBACK}?code={back['code']}&state={back['state']}",
        code_verifier=verifier,
    )
    claims = verified_id_token(acct, token["id_token"], app_id, nonce)
    assert (claims["uid"], claims["aid"], claims["name"], claims["login_name"]) == (
        acct.account_id,
        acct.account_id,
        acct.alias,
        acct.alias,
    )
    assert "upn" not in claims
    issued = _by_name(_events(acct, app_id), "OAuthIssueToken")[0]
    assert issued["userIdentity"]["type"] == "root-account" and issued["userIdentity"]["userName"] == "root"

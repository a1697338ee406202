"""Coverage of IMS's event catalogue (the 100 event names of ims-events.tsv): each is a registered action, and a
call with valid parameters, on a fresh account set up by earlier calls, records an event of that name.

A name whose action is not registered yet is an expected failure (non-strict), so it turns into a hard pass as
soon as its action lands."""

from __future__ import annotations

import csv
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
from Tea.exceptions import TeaException

from openims.actions import registry
from openims.actions.table import ACTIONS
from tests.conftest import backends
from tests.fake_dns import SERVERS, DnsServer, dns_backed_server
from tests.support import Account, Server

HERE = Path(__file__).resolve()
SHARED = HERE.parents[2].parent / "shared" / "reference" / "ims-events.tsv"
CATALOGUE = SHARED if SHARED.exists() else HERE.parents[1] / "data" / "ims-events.tsv"
NAMES = [row["event_name"] for row in csv.DictReader(CATALOGUE.open(), delimiter="\t")]
PASSWORD = "Catalogue-Passw0rd!1"


@pytest.fixture(scope="module", params=backends())
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from dns_backed_server(request, tmp_path_factory, "catalogue")


@dataclass
class Setup:
    """What a catalogue entry may use to prepare its call on a fresh account."""

    acct: Account
    dns: DnsServer
    stack: ExitStack
    # Sign the measured call as this (key ID, secret) instead of the root key.
    signer: tuple[str, str] | None = None
    made: dict[str, Any] = field(default_factory=dict)

    def call(self, action: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        return self.acct.call(action, params or {})

    def user(self) -> str:
        if "user" not in self.made:
            upn = self.acct.upn("catalogue")
            self.made["user_id"] = self.call("CreateUser", {"UserPrincipalName": upn, "DisplayName": "Catalogue"})[
                "User"
            ]["UserId"]
            self.made["user"] = upn
        return self.made["user"]

    def user_id(self) -> str:
        self.user()
        return self.made["user_id"]

    def key(self) -> str:
        if "key" not in self.made:
            created = self.call("CreateAccessKey", {"UserPrincipalName": self.user()})["AccessKey"]
            self.made["key"], self.made["key_secret"] = created["AccessKeyId"], created["AccessKeySecret"]
        return self.made["key"]

    def deleted_key(self) -> str:
        key = self.key()
        self.call("DeleteAccessKey", {"UserAccessKeyId": key, "UserPrincipalName": self.user()})
        return key

    def deleted_user(self) -> str:
        user_id = self.user_id()
        self.call("DeleteUser", {"UserPrincipalName": self.user()})
        return user_id

    def group(self) -> str:
        if "group" not in self.made:
            self.call("CreateGroup", {"GroupName": "catalogue"})
            self.made["group"] = "catalogue"
        return self.made["group"]

    def member(self) -> dict[str, str]:
        params = {"GroupName": self.group(), "UserPrincipalName": self.user()}
        self.call("AddUserToGroup", params)
        return params

    def login_profile(self) -> str:
        self.call(
            "CreateLoginProfile",
            {"UserPrincipalName": self.user(), "Password": PASSWORD, "PasswordResetRequired": "false"},
        )
        return self.user()

    def app(self) -> str:
        if "app" not in self.made:
            body = self.call(
                "CreateApplication", {"AppName": "catalogue", "DisplayName": "Catalogue", "AppType": "WebApp"}
            )
            self.made["app"] = body["Application"]["AppId"]
        return self.made["app"]

    def app_secret(self) -> dict[str, str]:
        secret = self.call("CreateAppSecret", {"AppId": self.app()})["AppSecret"]["AppSecretId"]
        return {"AppId": self.app(), "AppSecretId": secret}

    def mfa_device(self) -> tuple[str, str]:
        device = self.call("CreateVirtualMFADevice", {"VirtualMFADeviceName": "catalogue"})["VirtualMFADevice"]
        return device["SerialNumber"], device["Base32StringSeed"]

    def bind_codes(self) -> dict[str, str]:
        serial, seed = self.mfa_device()
        totp, now = pyotp.TOTP(seed), time.time()
        return {
            "UserPrincipalName": self.user(),
            "SerialNumber": serial,
            "AuthenticationCode1": totp.at(now - 30),
            "AuthenticationCode2": totp.at(now),
        }

    def bound_user(self) -> str:
        self.call("BindMFADevice", self.bind_codes())
        return self.user()

    def oidc(self) -> str:
        self.call(
            "CreateOIDCProvider",
            {
                "OIDCProviderName": "catalogue",
                "IssuerUrl": "https://issuer.example.com",
                "ClientIds": "client-1,client-2",
                "Fingerprints": f"{'a' * 40},{'b' * 40}",
            },
        )
        return "catalogue"

    def saml_metadata(self) -> str:
        from tests.federation_support import encode, idp_metadata, make_cert

        return encode(idp_metadata("https://idp.example.com/metadata", make_cert("idp-signing")[0]))

    def saml(self) -> str:
        self.call(
            "CreateSAMLProvider", {"SAMLProviderName": "catalogue", "EncodedSAMLMetadataDocument": self.saml_metadata()}
        )
        return "catalogue"

    def tls_issuer(self) -> str:
        from tests.federation_support import make_cert, tls_server

        root = make_cert("Catalogue Root CA", ca=True)
        leaf, key = make_cert("127.0.0.1", issuer=root)
        port = self.stack.enter_context(tls_server([leaf, root[0]], key))
        return f"https://127.0.0.1:{port}"

    def domain(self) -> str:
        name = f"c{uuid.uuid4().hex[:10]}.example.com"
        self.call("AddDomain", {"DomainName": name})
        return name

    def verifiable_domain(self) -> str:
        name = self.domain()
        record = self.call("GetDomainVerificationRecords", {"DomainName": name})["VerificationRecords"][
            "VerificationRecord"
        ][0]
        self.dns.dns.records[name] = [record["RecordValue"]]
        return name

    def credential_report(self) -> dict[str, str]:
        self.call("GenerateCredentialReport")
        deadline = time.monotonic() + 30
        while True:  # generation may be asynchronous: wait until the report can be read
            try:
                self.call("GetCredentialReport")
                return {}
            except TeaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def as_user_with_password(self) -> dict[str, str]:
        self.login_profile()
        self.key()
        self.signer = (self.made["key"], self.made["key_secret"])
        return {"OldPassword": PASSWORD, "NewPassword": PASSWORD + "x"}


S = Setup
# Every catalogue name -> how to prepare and parametrize one valid call.
CALLS: dict[str, Callable[[Setup], dict[str, str]]] = {
    "AddClientIdToOIDCProvider": lambda s: {"OIDCProviderName": s.oidc(), "ClientId": "client-3"},
    "AddDomain": lambda s: {"DomainName": f"c{uuid.uuid4().hex[:10]}.example.com"},
    "AddFingerprintToOIDCProvider": lambda s: {"OIDCProviderName": s.oidc(), "Fingerprint": "c" * 40},
    "AddUserToGroup": lambda s: {"GroupName": s.group(), "UserPrincipalName": s.user()},
    "AddUserToUserGroup": lambda s: {"GroupName": s.group(), "UserPrincipalName": s.user()},
    "BatchCreateUser": lambda s: {
        "User.1.UserPrincipalName": s.acct.upn("batch1"),
        "User.1.DisplayName": "Batch 1",
        "User.2.UserPrincipalName": s.acct.upn("batch2"),
        "User.2.DisplayName": "Batch 2",
    },
    "BindMFADevice": S.bind_codes,
    "ChangePassword": S.as_user_with_password,
    "CheckDirectoryEnabled": lambda s: {},
    "CheckResource": lambda s: {"ResourceType": "user", "ResourceName": s.user()},
    "CheckUserMFA": lambda s: {"UserPrincipalName": s.user()},
    "CreateAccessKey": lambda s: {"UserPrincipalName": s.user()},
    "CreateApplication": lambda s: {"AppName": "web", "DisplayName": "Web", "AppType": "WebApp"},
    "CreateAppSecret": lambda s: {"AppId": s.app()},
    "CreateGroup": lambda s: {"GroupName": "created"},
    "CreateLoginProfile": lambda s: {"UserPrincipalName": s.user(), "Password": PASSWORD},
    "CreateOIDCProvider": lambda s: {
        "OIDCProviderName": "created",
        "IssuerUrl": "https://login.example.com",
        "ClientIds": "client-1",
        "Fingerprints": "a" * 40,
    },
    "CreateSAMLProvider": lambda s: {"SAMLProviderName": "created", "EncodedSAMLMetadataDocument": s.saml_metadata()},
    "CreateUser": lambda s: {"UserPrincipalName": s.acct.upn("created"), "DisplayName": "Created"},
    "CreateUserGroup": lambda s: {"GroupName": "created"},
    "CreateVirtualMFADevice": lambda s: {"VirtualMFADeviceName": "created"},
    "DeleteAccessKey": lambda s: {"UserAccessKeyId": s.key(), "UserPrincipalName": s.user()},
    "DeleteAccessKeyInRecycleBin": lambda s: {"UserAccessKeyId": s.deleted_key(), "UserId": s.user_id()},
    "DeleteApplication": lambda s: {"AppId": s.app()},
    "DeleteAppSecret": S.app_secret,
    "DeleteGroup": lambda s: {"GroupName": s.group()},
    "DeleteLoginProfile": lambda s: {"UserPrincipalName": s.login_profile()},
    "DeleteOIDCProvider": lambda s: {"OIDCProviderName": s.oidc()},
    "DeleteSAMLProvider": lambda s: {"SAMLProviderName": s.saml()},
    "DeleteUser": lambda s: {"UserPrincipalName": s.user()},
    "DeleteUserGroup": lambda s: {"GroupName": s.group()},
    "DeleteUserInRecycleBin": lambda s: {"UserId": s.deleted_user()},
    "DeleteVirtualMFADevice": lambda s: {"SerialNumber": s.mfa_device()[0]},
    "DisableVirtualMFA": lambda s: {"UserPrincipalName": s.bound_user()},
    "GenerateCredentialReport": lambda s: {},
    "GetAccessKeyInfoInRecycleBin": lambda s: {"UserAccessKeyId": s.deleted_key()},
    "GetAccessKeyLastUsed": lambda s: {"UserAccessKeyId": s.key(), "UserPrincipalName": s.user()},
    "GetAccessKeyPolicy": lambda s: {"UserAccessKeyId": s.key(), "UserPrincipalName": s.user()},
    "GetAccessKeysLastUsed": lambda s: {"UserPrincipalName": s.user()},
    "GetAccountMFAInfo": lambda s: {},
    "GetAccountSecurityPracticeReport": lambda s: {},
    "GetAccountSummary": lambda s: {},
    "GetApplication": lambda s: {"AppId": s.app()},
    "GetAppSecret": S.app_secret,
    "GetCredentialReport": S.credential_report,
    "GetCustomerMFA": lambda s: {},
    "GetDefaultDomain": lambda s: {},
    "GetDirectory": lambda s: {},
    "GetDomainAlias": lambda s: {},
    "GetDomainVerificationRecords": lambda s: {"DomainName": s.domain()},
    "GetGroup": lambda s: {"GroupName": s.group()},
    "GetLoginProfile": lambda s: {"UserPrincipalName": s.login_profile()},
    "GetOIDCIssuerCertFingerprint": lambda s: {"IssuerUrl": s.tls_issuer()},
    "GetOIDCProvider": lambda s: {"OIDCProviderName": s.oidc()},
    "GetPasswordPolicy": lambda s: {},
    "GetSAMLProvider": lambda s: {"SAMLProviderName": s.saml()},
    "GetSamlSsoProperties": lambda s: {},
    "GetSamlSsoSettings": lambda s: {},
    "GetSecurityPreference": lambda s: {},
    "GetUser": lambda s: {"UserPrincipalName": s.user()},
    "GetUserInRecycleBin": lambda s: {"UserId": s.deleted_user()},
    "GetUserMFAInfo": lambda s: {"UserPrincipalName": s.bound_user()},
    "GetUserSsoSettings": lambda s: {},
    "ListAccessKeys": lambda s: {"UserPrincipalName": s.user()},
    "ListAccessKeysInRecycleBin": lambda s: {"UserId": (s.deleted_key(), s.user_id())[1]},
    "ListApplications": lambda s: {},
    "ListAppSecretIds": lambda s: {"AppId": s.app()},
    "ListDirectories": lambda s: {},
    "ListDomains": lambda s: {},
    "ListGroups": lambda s: {},
    "ListGroupsForUser": lambda s: {"UserPrincipalName": s.user()},
    "ListOIDCProviders": lambda s: {},
    "ListPredefinedScopes": lambda s: {"AppType": "WebApp"},
    "ListSAMLProviders": lambda s: {},
    "ListUserBasicInfos": lambda s: {},
    "ListUserGroups": lambda s: {},
    "ListUsers": lambda s: {},
    "ListUsersForGroup": lambda s: {"GroupName": s.member()["GroupName"]},
    "ListUsersInRecycleBin": lambda s: {},
    "ListVirtualMFADevices": lambda s: {},
    "RemoveClientIdFromOIDCProvider": lambda s: {"OIDCProviderName": s.oidc(), "ClientId": "client-2"},
    "RemoveDomain": lambda s: {"DomainName": s.domain()},
    "RemoveFingerprintFromOIDCProvider": lambda s: {"OIDCProviderName": s.oidc(), "Fingerprint": "b" * 40},
    "RemoveUserFromGroup": S.member,
    "RestoreAccessKeyFromRecycleBin": lambda s: {"UserAccessKeyId": s.deleted_key(), "UserId": s.user_id()},
    "RestoreUserFromRecycleBin": lambda s: {"UserId": s.deleted_user()},
    "SetDefaultDomain": lambda s: {"DefaultDomainName": f"c{uuid.uuid4().hex[:10]}.onaliyun.com"},
    "SetPasswordPolicy": lambda s: {"MinimumPasswordLength": "12"},
    "SetSecurityPreference": lambda s: {"AllowUserToChangePassword": "true"},
    "SetUserSsoSettings": lambda s: {"MetadataDocument": s.saml_metadata(), "SsoEnabled": "true"},
    "UnbindMFADevice": lambda s: {"UserPrincipalName": s.bound_user()},
    "UpdateAccessKey": lambda s: {"UserAccessKeyId": s.key(), "UserPrincipalName": s.user(), "Status": "Inactive"},
    "UpdateApplication": lambda s: {"AppId": s.app(), "NewDisplayName": "Renamed"},
    "UpdateGroup": lambda s: {"GroupName": s.group(), "NewComments": "updated"},
    "UpdateLoginProfile": lambda s: {"UserPrincipalName": s.login_profile(), "PasswordResetRequired": "true"},
    "UpdateOIDCProvider": lambda s: {"OIDCProviderName": s.oidc(), "NewDescription": "updated"},
    "UpdateSAMLProvider": lambda s: {"SAMLProviderName": s.saml(), "NewDescription": "updated"},
    "UpdateUser": lambda s: {"UserPrincipalName": s.user(), "NewDisplayName": "Renamed"},
    "UpdateUserGroup": lambda s: {"GroupName": s.group(), "NewComments": "updated"},
    "Verify": lambda s: {"DomainName": s.verifiable_domain()},
}


def _cases() -> list[Any]:
    cases = []
    for name in NAMES:
        pending = ACTIONS.lookup(registry.IMS.version, name) is None
        cases.append(
            pytest.param(
                name,
                id=name,
                marks=pytest.mark.xfail(pending, reason=f"{name} is not a registered action yet", strict=False),
            )
        )
    return cases


def test_the_table_covers_exactly_the_catalogue() -> None:
    assert len(NAMES) == 100 == len(set(NAMES))
    assert sorted(CALLS) == sorted(NAMES)


def _slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def test_extensions_index_lists_every_openims_defined_action() -> None:
    docs = HERE.parents[2] / "docs"
    index = (docs / "extensions.md").read_text()
    rows = re.findall(r"^\| (\w+) \| (Read|Write) \|", index, re.MULTILINE)
    declared = {a.name: a.rw for a in ACTIONS.all() if a.extension}
    assert dict(rows) == declared, "docs/extensions.md must list exactly the actions declared extension=True"
    sdk_less = {
        row["event_name"] for row in csv.DictReader(CATALOGUE.open(), delimiter="\t") if row["in_official_sdk"] == "no"
    }
    assert {n for n in sdk_less if ACTIONS.lookup(registry.IMS.version, n)} <= set(declared)
    for target, anchor in re.findall(r"\]\(([\w.-]+\.md)?#([\w-]+)\)", index):
        text = (docs / target).read_text() if target else index
        slugs = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
        assert anchor in slugs, f"{target or 'extensions.md'}#{anchor} does not exist"


@pytest.mark.parametrize("name", _cases())
def test_catalogue_name_is_an_audited_action(name: str, acct: Account, server: Server) -> None:
    assert ACTIONS.lookup(registry.IMS.version, name) is not None, f"{name} is not a registered action"
    with ExitStack() as stack:
        setup = Setup(acct, SERVERS[server.port], stack)
        params = CALLS[name](setup)
        key_id, secret = setup.signer or (None, None)
        body = acct.call(name, params, key_id=key_id, secret=secret)
    event = acct.event_for(body["RequestId"])
    assert event["eventName"] == name and event["serviceName"] == "Ims" and "errorCode" not in event
    assert event["eventRW"] == ACTIONS.lookup(registry.IMS.version, name).rw  # type: ignore[union-attr]

"""Who called from where: the caller's IP (events, acs:SourceIp, AccessKey network policies) and https
(acs:SecureTransport) come from X-Forwarded-For / X-Forwarded-Proto only when a proxy named in
OPENIMS_TRUSTED_PROXIES (none by default) sent them; from anyone else they are ignored, so a client cannot
claim another address or TLS."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from alibabacloud_ims20190815 import models as m
from alibabacloud_ram20150501 import models as rm

from tests.support import Account, Server, free_port

FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
SECURE_ONLY = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ram:ListUsers",
                "Resource": "*",
                "Condition": {"Bool": {"acs:SecureTransport": "true"}, "IpAddress": {"acs:SourceIp": "203.0.113.0/24"}},
            }
        ],
    }
)


@pytest.fixture
def behind_proxy(server: Server) -> Iterator[Server]:
    """A second server on the same database that trusts this host as its reverse proxy."""
    with server.sibling(OPENIMS_TRUSTED_PROXIES="127.0.0.1") as other:
        yield other


def test_forwarded_headers_count_only_from_trusted_proxies(acct: Account, behind_proxy: Server) -> None:
    ims = acct.ims()
    upn = acct.upn("proxied")
    ims.create_user(m.CreateUserRequest(user_principal_name=upn, display_name="p"))
    key = ims.create_access_key(m.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    acct.ram().create_policy(rm.CreatePolicyRequest(policy_name="SecureOnly", policy_document=SECURE_ONLY))
    acct.ram().attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_name="SecureOnly", policy_type="Custom", user_name="proxied")
    )
    proxied = Account(behind_proxy, acct.account_id, acct.alias, acct.key_id, acct.secret)

    # Through the trusted proxy: the event names the client behind it, and the policy's https and
    # source-network conditions hold.
    via_proxy = proxied.call("ListUsers", key_id=key.access_key_id, secret=key.access_key_secret, headers=FORWARDED)
    assert acct.event_for(via_proxy["RequestId"])["sourceIpAddress"] == "203.0.113.9"
    # Junk where an address should be counts as unknown, never as an address.
    junk = proxied.call("GetUser", {"UserPrincipalName": upn}, headers={"X-Forwarded-For": "garbage"})
    assert acct.event_for(junk["RequestId"])["sourceIpAddress"] == ""

    # By default no proxy is trusted: the same headers change nothing.
    with pytest.raises(Exception) as info:
        acct.call("ListUsers", key_id=key.access_key_id, secret=key.access_key_secret, headers=FORWARDED)
    assert getattr(info.value, "code", None) == "NoPermission"
    spoofed = acct.call("GetUser", {"UserPrincipalName": upn}, headers=FORWARDED)
    assert acct.event_for(spoofed["RequestId"])["sourceIpAddress"] == "127.0.0.1"


def test_a_bad_trusted_proxies_setting_stops_serve(server: Server) -> None:
    env = {**server.env, "OPENIMS_TRUSTED_PROXIES": "10.0.0.0/8,proxy.example"}
    out = subprocess.run(
        [sys.executable, "-m", "openims", "--data-dir", str(server.data_dir), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0 and "OPENIMS_TRUSTED_PROXIES" in out.stderr and "proxy.example" in out.stderr

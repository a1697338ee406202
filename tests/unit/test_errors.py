"""Error messages name entities in words, as Alibaba's messages do, whatever the error code's spelling."""

from __future__ import annotations

from openims.errors import already_exists, describe, not_found


def test_entities_in_words() -> None:
    assert describe("User") == "user"
    assert describe("VirtualMFADevice") == "virtual MFA device"
    assert describe("User.LoginProfile") == "login profile of the user"
    assert describe("SAMLProvider") == "SAML provider"
    assert describe("User.AccessKey") == "AccessKey of the user"
    assert already_exists("User.LoginProfile", "a@b").message == "The login profile of the user already exists: a@b."
    err = not_found("OIDCProvider", "x")
    assert (err.code, err.message) == ("EntityNotExist.OIDCProvider", "The OIDC provider does not exist: x.")

"""SAML user SSO state (openims.federation.saml_sso):

- `saml_authn_requests`: the AuthnRequests the console sent an identity provider (SP-initiated sign-in) and
  not yet answered. A Response whose InResponseTo names one consumes it (deleted in the sign-in's
  transaction), so each request is answered once; rows die at `expires_ms` (housekeeping) or with the account.
- `saml_assertions_used`: the ID of every Assertion that signed someone in, until the Assertion's own
  validity ends. The primary key makes a second use of the same Assertion fail in every server process,
  SQLite or PostgreSQL; after `expires_ms` the Assertion is refused as expired anyway, so the row may go.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table

from openims.store.schema import metadata

saml_authn_requests = Table(
    "saml_authn_requests",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    # The console page to open after sign-in (a local path, checked again when used).
    Column("next_path", String(512), nullable=False, server_default="/console/"),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)
Index("ix_saml_authn_requests_expires", saml_authn_requests.c.expires_ms)
Index("ix_saml_authn_requests_account", saml_authn_requests.c.account_id)

saml_assertions_used = Table(
    "saml_assertions_used",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("assertion_id", String(256), primary_key=True),
    Column("used_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)
Index("ix_saml_assertions_used_expires", saml_assertions_used.c.expires_ms)

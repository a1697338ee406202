"""Federation tables: OIDC and SAML identity providers, and the account's user-based SSO settings."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from openims.store.schema import metadata

oidc_providers = Table(
    "oidc_providers",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("issuer_url", String(255), nullable=False),
    Column("description", String(256), nullable=False, server_default=""),
    # Comma-joined, as on the wire; neither a client ID nor a fingerprint can hold a comma.
    Column("client_ids", Text, nullable=False, server_default=""),
    Column("fingerprints", Text, nullable=False, server_default=""),
    Column("issuance_limit_time", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
Index("uq_oidc_providers_account_name", oidc_providers.c.account_id, oidc_providers.c.name, unique=True)
Index("uq_oidc_providers_account_issuer", oidc_providers.c.account_id, oidc_providers.c.issuer_url, unique=True)

saml_providers = Table(
    "saml_providers",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("description", String(256), nullable=False, server_default=""),
    Column("authn_sign_algo", String(16), nullable=False),
    # The Base64 document exactly as uploaded (GetSAMLProvider returns it), and what was read from it.
    Column("metadata_document", Text, nullable=False),
    Column("entity_id", String(1024), nullable=False),
    Column("certificates", Text, nullable=False),  # JSON list of the signing certificates' facts
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
Index("uq_saml_providers_account_name", saml_providers.c.account_id, saml_providers.c.name, unique=True)

# One row per account once SetUserSsoSettings has been called; absent means the defaults.
user_sso_settings = Table(
    "user_sso_settings",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("sso_enabled", Boolean, nullable=False),
    Column("sso_login_with_domain", Boolean, nullable=False),
    Column("auxiliary_domain", String(128), nullable=False, server_default=""),
    Column("authn_sign_algo", String(16), nullable=False),
    Column("metadata_document", Text, nullable=False, server_default=""),
    Column("entity_id", String(1024), nullable=False, server_default=""),
    Column("certificates", Text, nullable=False, server_default="[]"),
    Column("updated_ms", BigInteger, nullable=False),
)

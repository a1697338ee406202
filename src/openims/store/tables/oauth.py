"""The OAuth 2.0 / OpenID Connect authorization server's state (`openims.oauth`).

- `oauth_signing_keys`: the ID-token signing keys. The private JWK is sealed with the master key (context: the
  key ID), as every other secret at rest; the public JWK is what `/v1/keys` publishes. A key signs for
  `signing_keys.ROTATE_AFTER_MS`, then a new one takes over and the old one stays published a while longer,
  so ID tokens it signed still verify.
- `oauth_consents`: one row per (application, user) that consented, with the scopes consented to. The root
  identity consents as `subject = account ID` with `user_id` NULL.
- `oauth_codes`: authorization codes waiting to be exchanged, keyed by the SHA-256 of the code (the code itself is
  never stored), deleted when redeemed or expired.
- `oauth_tokens`: one row per issued access token (and its refresh token), keyed by their SHA-256 hashes, never
  the tokens. `grant_id` ties together every token of one authorization, so a refresh token presented again after
  it was rotated ends all of them. `secret_id` is the application secret the client authenticated with: deleting
  that secret deletes its tokens (ON DELETE CASCADE), as deleting the application or the user does.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, LargeBinary, String, Table, Text, false

from openims.store.schema import metadata

oauth_signing_keys = Table(
    "oauth_signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(8), nullable=False),
    Column("private_sealed", LargeBinary, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)
Index("ix_oauth_signing_keys_created", oauth_signing_keys.c.created_ms)

oauth_consents = Table(
    "oauth_consents",
    metadata,
    Column("app_id", String(24), ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True),
    # The user's ID, or the account ID for the root identity.
    Column("subject", String(24), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(24), ForeignKey("users.id", ondelete="CASCADE")),
    Column("scope", Text, nullable=False),
    Column("granted_ms", BigInteger, nullable=False),
)
Index("ix_oauth_consents_user", oauth_consents.c.user_id)

oauth_codes = Table(
    "oauth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("app_id", String(24), ForeignKey("applications.id", ondelete="CASCADE"), nullable=False),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(24), ForeignKey("users.id", ondelete="CASCADE")),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("nonce", String(255)),
    Column("code_challenge", String(128)),
    Column("code_challenge_method", String(8)),
    Column("auth_time_ms", BigInteger, nullable=False),
    Column("mfa_authenticated", Boolean, nullable=False, server_default=false()),
    Column("expires_ms", BigInteger, nullable=False),
)
Index("ix_oauth_codes_expires", oauth_codes.c.expires_ms)
Index("ix_oauth_codes_app_nonce", oauth_codes.c.app_id, oauth_codes.c.nonce)
Index("ix_oauth_codes_user", oauth_codes.c.user_id)

oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("grant_id", String(32), nullable=False),
    Column("access_hash", String(64), nullable=False, unique=True),
    Column("refresh_hash", String(64), unique=True),
    Column("app_id", String(24), ForeignKey("applications.id", ondelete="CASCADE"), nullable=False),
    Column("secret_id", String(64), ForeignKey("app_secrets.id", ondelete="CASCADE")),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(24), ForeignKey("users.id", ondelete="CASCADE")),
    Column("scope", Text, nullable=False),
    Column("auth_time_ms", BigInteger, nullable=False),
    Column("issued_ms", BigInteger, nullable=False),
    Column("access_expires_ms", BigInteger, nullable=False),
    Column("refresh_expires_ms", BigInteger),
    # The later of the two expiries: housekeeping deletes the row then.
    Column("expires_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger),
    # "rotated" (a refresh replaced it), "revoked" (/v1/revoke), "reuse" (its family ended), "user" (access ended).
    Column("revoked_reason", String(16)),
)
Index("ix_oauth_tokens_grant", oauth_tokens.c.grant_id)
Index("ix_oauth_tokens_expires", oauth_tokens.c.expires_ms)
Index("ix_oauth_tokens_user", oauth_tokens.c.user_id)
Index("ix_oauth_tokens_app", oauth_tokens.c.app_id)
Index("ix_oauth_tokens_secret", oauth_tokens.c.secret_id)

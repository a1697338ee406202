"""Web console state: server-side sessions, and the root account's console sign-in lockout.

- `console_sessions`: one row per browser session. `token_hash` is the SHA-256 (hex) of the random cookie
  value, so a copy of the database does not hand out live sessions. `stage` is what the session may do:
  `mfa` (password right, a TOTP code is due), `bind_mfa` (must bind an MFA device first),
  `change_password` (must change the password first) or `active`. `pending_sealed` holds, for the `mfa`
  stage, the password sealed with the master key (context: the token hash) so the second step can
  complete the sign-in; it is erased as soon as that step ends. At the other stages it holds a just-created
  secret (AccessKey, MFA seed) between the creating POST and the page that shows it once
  (`sessions.hold_reveal` / `take_reveal`). `csrf_token` is the synchronizer token of
  every form of the session. A session dies with its account or user (ON DELETE CASCADE), at `expires_ms`,
  or at sign-out.
- `console_root_lockouts`: failed console sign-ins of each account's root identity within the current
  window, and until when sign-in is locked.
- `console_mfa_tickets`: saved MFA tickets (security preference `EnableSaveMFATicket`, `openims.signin.mfa_tickets`).
  `token_hash` is the SHA-256 (hex) of the random cookie value; `serial_number` and `device_bound_ms` name
  the MFA device bound to the user when the ticket was issued, which must still be the bound one when it is
  used. A ticket dies with its account or user (ON DELETE CASCADE), at `expires_ms`, when its user is moved
  to the recycle bin, and when the account turns the preference off.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    false,
    text,
)

from openims.store.schema import metadata

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    # NULL for the root account's sessions.
    Column("user_id", String(24), ForeignKey("users.id", ondelete="CASCADE")),
    Column("user_name", String(160), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("mfa_authenticated", Boolean, nullable=False, server_default=false()),
    Column("csrf_token", String(64), nullable=False),
    Column("pending_sealed", LargeBinary),
    # The serial number of the MFA device created while binding at first sign-in.
    Column("pending_serial", String(128)),
    # Stages still due after the current one, comma-separated (e.g. "change_password").
    Column("next_stages", String(64), nullable=False, server_default=""),
    Column("flash", Text),
    Column("source_ip", String(64), nullable=False, server_default=""),
    Column("user_agent", String(255), nullable=False, server_default=""),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
)
Index("ix_console_sessions_expires", console_sessions.c.expires_ms)
Index("ix_console_sessions_user", console_sessions.c.user_id)
Index("ix_console_sessions_account", console_sessions.c.account_id)

console_root_lockouts = Table(
    "console_root_lockouts",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("failed_attempts", Integer, nullable=False, server_default=text("0")),
    Column("first_failed_ms", BigInteger),
    Column("locked_until_ms", BigInteger),
)

console_mfa_tickets = Table(
    "console_mfa_tickets",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(24), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("serial_number", String(128), nullable=False),
    Column("device_bound_ms", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)
Index("ix_console_mfa_tickets_user", console_mfa_tickets.c.user_id)
Index("ix_console_mfa_tickets_account", console_mfa_tickets.c.account_id)
Index("ix_console_mfa_tickets_expires", console_mfa_tickets.c.expires_ms)

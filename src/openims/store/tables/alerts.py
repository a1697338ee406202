"""Alert rules, the alerts they raise, and what threshold rules remember between events.

An event that a rule matches gets its `alerts` row in the event's own transaction (openims.alerts.evaluate);
the alert deliverer claims due rows with a lease, sends them to the rule's destinations and records the outcome
on the row. The alert ID is fixed when the row is written, so every retry and every process sends the same one.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, LargeBinary, String, Table, Text, text

from openims.store import constraints
from openims.store.schema import metadata

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", String(256), nullable=False, server_default=""),
    Column("preset", String(32), nullable=False, server_default=""),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("severity", String(8), nullable=False, server_default="medium"),
    # The condition: LookupAttribute pairs as JSON `[[key, value], ...]`, a named check, or an insight type.
    Column("conditions", Text, nullable=False, server_default="[]"),
    Column("check_name", String(32), nullable=False, server_default=""),
    Column("insight_type", String(64), nullable=False, server_default=""),
    Column("insight_state", String(8), nullable=False, server_default=""),
    # Threshold rules fire when `threshold` matching events (of one `group_by` value) fall within `window_s`.
    Column("threshold", Integer, nullable=False, server_default=text("1")),
    Column("window_s", Integer, nullable=False, server_default=text("0")),
    Column("group_by", String(32), nullable=False, server_default=""),
    Column("webhook_url", String(2048), nullable=False, server_default=""),
    # The HMAC key, sealed with the master key (context: the rule ID).
    Column("webhook_secret_sealed", LargeBinary),
    Column("syslog_address", String(262), nullable=False, server_default=""),
    Column("syslog_tls", Boolean, nullable=False, server_default=text("false")),
    Column("syslog_format", String(8), nullable=False, server_default="json"),
    # Comma-separated recipients, sent through the operator's SMTP server.
    Column("email_to", String(1024), nullable=False, server_default=""),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
Index("uq_alert_rules_account_name", alert_rules.c.account_id, alert_rules.c.name, unique=True)

# A random token per account, replaced by every rule change: how every process's rule cache learns of changes
# made by another (as trail_generations does for trails).
alert_generations = Table(
    "alert_generations",
    metadata,
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("generation", BigInteger, nullable=False),
)

# When a threshold rule last fired for one group (a source IP, a user...); its row is also the lock that makes
# concurrent matching events of that group count one after another.
alert_rule_state = Table(
    "alert_rule_state",
    metadata,
    Column("rule_id", String(32), ForeignKey("alert_rules.id", ondelete="CASCADE"), primary_key=True),
    Column("group_key", String(255), primary_key=True),
    Column("last_fired_ms", BigInteger, nullable=False, server_default=text("0")),
    Column("touched_ms", BigInteger, nullable=False, server_default=text("0")),
)

alerts = Table(
    "alerts",
    metadata,
    # Derived from the rule and the triggering event (a test alert's is random): one event raises at most one
    # alert per rule, and receivers deduplicate on it.
    Column("id", String(36), primary_key=True),
    Column("account_id", String(16), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("rule_id", String(32), ForeignKey("alert_rules.id", ondelete="SET NULL")),
    Column("rule_name", String(64), nullable=False),
    Column("event_id", String(36), nullable=False, server_default=""),
    Column("created_ms", BigInteger, nullable=False),
    Column("test", Boolean, nullable=False, server_default=text("false")),
    # The alert as every destination receives it (JSON), fixed when it is raised.
    Column("body", Text, nullable=False),
    Column("lease_owner", String(64), nullable=False, server_default=""),
    Column("lease_until_ms", BigInteger, nullable=False, server_default=text("0")),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # Comma-separated destinations (webhook, syslog, email) that already have this alert.
    Column("done_targets", String(32), nullable=False, server_default=""),
    Column("last_attempt_ms", BigInteger),
    Column("last_error", Text),
    # Set when nothing is left to do: delivered everywhere, or abandoned (last_error says why).
    Column("finished_ms", BigInteger),
)
Index(
    "ix_alerts_due",
    alerts.c.next_attempt_ms,
    sqlite_where=text("finished_ms IS NULL"),
    postgresql_where=text("finished_ms IS NULL"),
)
Index("ix_alerts_account_created", alerts.c.account_id, alerts.c.created_ms)
Index("ix_alerts_rule_created", alerts.c.rule_id, alerts.c.created_ms)

constraints.register(
    "uq_alert_rules_account_name",
    "EntityAlreadyExists.AlertRule",
    "The alert rule already exists.",
    sqlite_columns="alert_rules.account_id, alert_rules.name",
)

"""Housekeeping: the purgers that keep the store bounded, and the rules enforced over time (idle AccessKeys).
Every job is listed here, in the order it runs."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Column, delete, select, tuple_

from openims import clock
from openims.actions import recycle_bin
from openims.alerts import queue as alert_queue
from openims.credentials import idle_keys
from openims.delivery import digests, outbox
from openims.insights import retention as insight_retention
from openims.integrity import retention, verify_jobs
from openims.oauth import signing_keys
from openims.runtime import Runtime
from openims.store.schema import signature_nonces
from openims.store.tables.console import console_mfa_tickets, console_sessions
from openims.store.tables.oauth import oauth_codes, oauth_tokens
from openims.store.tables.saml_sso import saml_assertions_used, saml_authn_requests

log = logging.getLogger("openims.maintenance")
BATCH = 10_000
NONCE_BATCH = 2_000


def purge_expired(expires_ms: Column[int]) -> Callable[[Runtime], int]:
    """The purger of a table whose rows live until their `expires_ms`."""

    def purge_table(rt: Runtime) -> int:
        with rt.db.transaction() as conn:
            return conn.execute(delete(expires_ms.table).where(expires_ms <= clock.now_ms())).rowcount or 0

    return purge_table


def _spent_nonces(rt: Runtime) -> int:
    """Nonces past their signature window, a batch per transaction: at 600 calls/s ten minutes leave ~360,000,
    and one transaction deleting them all held SQLite's write lock (every call's) for seconds."""
    key = (signature_nonces.c.access_key_id, signature_nonces.c.nonce)
    removed = 0
    while True:
        with rt.db.transaction() as conn:
            stale = conn.execute(
                select(*key).where(signature_nonces.c.expires_ms < clock.now_ms()).limit(NONCE_BATCH)
            ).all()
            if stale:
                conn.execute(delete(signature_nonces).where(tuple_(*key).in_([tuple(row) for row in stale])))
        removed += len(stale)
        if len(stale) < NONCE_BATCH:
            return removed


PURGERS: tuple[tuple[str, Callable[[Runtime], int]], ...] = (
    # Cut at a signed checkpoint, so the tamper-evident log still verifies (integrity/retention.py).
    ("events", retention.purge_events),
    ("nonces", _spent_nonces),
    ("recycle_bin", recycle_bin.purge),
    ("trail_batches", outbox.purge_delivered),
    ("insights", insight_retention.purge),
    ("alerts", alert_queue.purge_finished),
    ("trail_digests", digests.purge),
    ("verify_jobs", verify_jobs.purge),
    ("console_sessions", purge_expired(console_sessions.c.expires_ms)),
    # Voided tickets (their device changed) expire like the others.
    ("console_mfa_tickets", purge_expired(console_mfa_tickets.c.expires_ms)),
    # SAML: unanswered AuthnRequests, and used Assertion IDs once the Assertion would be refused as expired.
    ("saml_authn_requests", purge_expired(saml_authn_requests.c.expires_ms)),
    ("saml_assertions_used", purge_expired(saml_assertions_used.c.expires_ms)),
    ("oauth_codes", purge_expired(oauth_codes.c.expires_ms)),
    ("oauth_tokens", purge_expired(oauth_tokens.c.expires_ms)),
    ("oauth_signing_keys", signing_keys.purge_retired),
)


# Security preferences that act with time: run after the purgers, each returns how many rows it changed.
ENFORCERS: tuple[tuple[str, Callable[[Runtime], int]], ...] = (("idle_access_keys", idle_keys.disable_idle_keys),)


def purge(rt: Runtime) -> dict[str, int]:
    """Run every purger; returns the rows each removed."""
    return {name: purger(rt) for name, purger in PURGERS}


def enforce(rt: Runtime) -> dict[str, int]:
    """Run every enforcer; returns the rows each changed."""
    return {name: enforcer(rt) for name, enforcer in ENFORCERS}

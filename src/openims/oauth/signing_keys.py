"""The ID tokens' signing keys: RS256 (as Alibaba Cloud's), rotated by age, the private half sealed with the
master key like every other secret at rest, the public halves published at `/v1/keys`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import RSAKey
from sqlalchemy import Connection, delete, insert, select

from openims import clock
from openims.runtime import Runtime
from openims.store.tables.oauth import oauth_signing_keys

ALG = "RS256"
DAY_MS = 24 * 3600 * 1000
# A key signs for 30 days; then a new one takes over.
ROTATE_AFTER_MS = 30 * DAY_MS
# A retired key stays published this long, far beyond the longest ID token it signed (3 hours), so relying
# parties that cached the key set keep verifying through a rotation.
PUBLISHED_AFTER_RETIREMENT_MS = 7 * DAY_MS


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_jwk: dict[str, Any]


def _context(kid: str) -> str:
    return f"oauth-signing-key:{kid}"


def current(rt: Runtime, conn: Connection) -> SigningKey:
    """The key that signs now: the newest one younger than ROTATE_AFTER_MS, made (in `conn`'s transaction) when
    there is none. Two servers rotating at once each make one; both are published, either verifies."""
    now = clock.now_ms()
    row = conn.execute(
        select(oauth_signing_keys)
        .where(oauth_signing_keys.c.created_ms > now - ROTATE_AFTER_MS)
        .order_by(oauth_signing_keys.c.created_ms.desc())
        .limit(1)
    ).first()
    if row is not None:
        return SigningKey(row.kid, json.loads(rt.master_key.open(row.private_sealed, _context(row.kid))))
    key = RSAKey.generate_key(2048, private=True)
    kid = key.thumbprint()
    private = {**key.as_dict(private=True), "kid": kid, "alg": ALG, "use": "sig"}
    public = {**key.as_dict(private=False), "kid": kid, "alg": ALG, "use": "sig"}
    conn.execute(
        insert(oauth_signing_keys).values(
            kid=kid,
            alg=ALG,
            private_sealed=rt.master_key.seal(json.dumps(private), _context(kid)),
            public_jwk=json.dumps(public),
            created_ms=now,
        )
    )
    return SigningKey(kid, private)


def published(conn: Connection) -> list[dict[str, Any]]:
    """The public keys relying parties may see signatures of: the signing one and those retired recently."""
    oldest = clock.now_ms() - ROTATE_AFTER_MS - PUBLISHED_AFTER_RETIREMENT_MS
    rows = conn.execute(
        select(oauth_signing_keys.c.public_jwk)
        .where(oauth_signing_keys.c.created_ms > oldest)
        .order_by(oauth_signing_keys.c.created_ms.desc())
    ).scalars()
    return [json.loads(jwk) for jwk in rows]


def purge_retired(rt: Runtime) -> int:
    """Housekeeping: delete keys no longer published."""
    oldest = clock.now_ms() - ROTATE_AFTER_MS - PUBLISHED_AFTER_RETIREMENT_MS
    with rt.db.transaction() as conn:
        return conn.execute(delete(oauth_signing_keys).where(oauth_signing_keys.c.created_ms <= oldest)).rowcount or 0

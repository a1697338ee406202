"""Every identifier format in one place."""

from __future__ import annotations

import secrets
import string
import time
import uuid

_AK_ALPHABET = string.ascii_letters + string.digits


def account_id() -> str:
    """16 digits, never starting with 0, like Alibaba account IDs."""
    return str(secrets.randbelow(9 * 10**15) + 10**15)


def user_id() -> str:
    """RAM user and group IDs: 16+ digits."""
    return str(secrets.randbelow(9 * 10**15) + 10**15) + f"{secrets.randbelow(100):02d}"


def access_key_id() -> str:
    return "LTAI" + "".join(secrets.choice(_AK_ALPHABET) for _ in range(20))


def access_key_secret() -> str:
    return "".join(secrets.choice(_AK_ALPHABET) for _ in range(30))


def request_id() -> str:
    return str(uuid.uuid4()).upper()


def event_id() -> str:
    """A UUID ordered by time (version 7: the Unix time in milliseconds, then 74 random bits). Each new event's ID
    sorts after those of earlier milliseconds, so the unique indexes on event IDs (events, the log's queue and
    leaves) grow at one end, as the time indexes do, instead of each event writing to a random page of each."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(secrets.token_bytes(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    return str(uuid.UUID(int=value)).upper()


def app_secret_id() -> str:
    """OAuth application secret IDs: 32 letters and digits."""
    return "".join(secrets.choice(_AK_ALPHABET) for _ in range(32))


def app_secret() -> str:
    """OAuth application secret values (client secrets): 64 letters and digits."""
    return "".join(secrets.choice(_AK_ALPHABET) for _ in range(64))


def verification_token() -> str:
    """The random part of a domain's DNS TXT challenge."""
    return secrets.token_hex(16)


def oauth_token() -> str:
    """OAuth authorization codes, access and refresh tokens: 256 random bits, URL-safe (stored only hashed)."""
    return secrets.token_urlsafe(32)


def oauth_token_id() -> str:
    """The row ID of an issued OAuth token, and of the authorization (grant) its refreshes descend from."""
    return secrets.token_hex(16)

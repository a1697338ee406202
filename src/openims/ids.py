"""Every identifier format in one place."""
from __future__ import annotations

import secrets
import string
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
    return str(uuid.uuid4()).upper()

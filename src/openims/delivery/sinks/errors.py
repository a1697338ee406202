"""Turning library exceptions into `DeliveryError`s that cannot leak credentials."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..batch import DeliveryError

log = logging.getLogger("openims.delivery")


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every non-empty secret replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def unreachable(what: str, exc: BaseException, secrets: Iterable[str | None] = ()) -> DeliveryError:
    """A failed delivery to an address the trail's owner chose: the status says only that it failed, since
    telling a refused address, a closed port and a filtered one apart would make trails a scanner of the
    server's networks; the reason goes to the server log, for the operator."""
    log.warning("%s failed: %s", what, redact(f"{type(exc).__name__}: {exc}", secrets))
    return DeliveryError(f"{what} failed: could not connect and deliver (the server log has the reason)")


def delivery_error(what: str, exc: BaseException, secrets: Iterable[str | None] = ()) -> DeliveryError:
    """A `DeliveryError` saying `what` failed and why; raise it `from None` so the raw cause is not logged."""
    return DeliveryError(redact(f"{what}: {type(exc).__name__}: {exc}", secrets))

"""Turning library exceptions into `DeliveryError`s that cannot leak credentials."""

from __future__ import annotations

from collections.abc import Iterable

from ..batch import DeliveryError


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every non-empty secret replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def delivery_error(what: str, exc: BaseException, secrets: Iterable[str | None] = ()) -> DeliveryError:
    """A `DeliveryError` saying `what` failed and why; raise it `from None` so the raw cause is not logged."""
    return DeliveryError(redact(f"{what}: {type(exc).__name__}: {exc}", secrets))

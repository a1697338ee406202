"""Virtual MFA: RFC 6238 TOTP (SHA-1, 6 digits, 30 s steps) via pyotp, and the QR code of its otpauth:// URI.

Verification accepts a code of the current step or one step either side (clock skew), and only of a step
later than the last one the device accepted, so a code that worked once never works again.
"""

from __future__ import annotations

import base64
import enum
import hmac
import io

import pyotp
import qrcode

from openims import clock

STEP_SECONDS = 30
DIGITS = 6
SKEW_STEPS = 1


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    # Right code, but of a step already used: a replay.
    REUSED = "reused"


def new_seed() -> str:
    """A random 160-bit Base32 seed (RFC 4226's recommended length)."""
    return pyotp.random_base32()


def current_step(at_seconds: float | None = None) -> int:
    return int((clock.now() if at_seconds is None else at_seconds) // STEP_SECONDS)


def code_at(seed: str, step: int) -> str:
    return pyotp.TOTP(seed, digits=DIGITS, interval=STEP_SECONDS).generate_otp(step)


def provisioning_uri(seed: str, label: str, issuer: str) -> str:
    """The `otpauth://totp/...` URI authenticator apps scan."""
    return pyotp.TOTP(seed, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=label, issuer_name=issuer)


def qr_png(text: str) -> bytes:
    """A PNG QR code of `text`."""
    image = qrcode.make(text, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def qr_png_base64(text: str) -> str:
    """A PNG QR code of `text`, base64-encoded."""
    return base64.b64encode(qr_png(text)).decode()


def _matches(seed: str, code: str, step: int) -> bool:
    return hmac.compare_digest(code_at(seed, step).encode(), code.encode())


def _well_formed(code: str) -> bool:
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def verify(seed: str, code: str, last_step: int | None, at_seconds: float | None = None) -> tuple[Verdict, int | None]:
    """Check one code; on ACCEPTED also returns the step it belongs to (store it as the new last step)."""
    if not _well_formed(code):
        return Verdict.WRONG, None
    now = current_step(at_seconds)
    reused = False
    for step in range(now - SKEW_STEPS, now + SKEW_STEPS + 1):
        if _matches(seed, code, step):
            if last_step is None or step > last_step:
                return Verdict.ACCEPTED, step
            reused = True
    return (Verdict.REUSED if reused else Verdict.WRONG), None


def verify_pair(
    seed: str, first: str, second: str, last_step: int | None, at_seconds: float | None = None
) -> tuple[Verdict, int | None]:
    """Check two consecutive codes (as when binding a device); the second must be within the skew window.
    On ACCEPTED returns the second code's step."""
    if not (_well_formed(first) and _well_formed(second)):
        return Verdict.WRONG, None
    now = current_step(at_seconds)
    reused = False
    for second_step in range(now - SKEW_STEPS, now + SKEW_STEPS + 1):
        if _matches(seed, first, second_step - 1) and _matches(seed, second, second_step):
            if last_step is None or second_step - 1 > last_step:
                return Verdict.ACCEPTED, second_step
            reused = True
    return (Verdict.REUSED if reused else Verdict.WRONG), None

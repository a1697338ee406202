"""RFC 6238 TOTP: the codes authenticator apps compute, the skew window, replay refusal, and the QR code."""

from __future__ import annotations

import base64
import io
from urllib.parse import parse_qs, urlparse

import pyotp
from PIL import Image

from openims.credentials import totp
from openims.credentials.totp import Verdict

# RFC 6238 Appendix B: SHA-1 seed "12345678901234567890"; the 8-digit codes' last 6 digits are the 6-digit codes.
RFC_SEED = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = {59: "287082", 1111111109: "081804", 1111111111: "050471", 1234567890: "005924", 2000000000: "279037"}


def test_codes_match_rfc_6238_test_vectors() -> None:
    for at, code in RFC_VECTORS.items():
        assert totp.code_at(RFC_SEED, totp.current_step(at)) == code
        assert totp.verify(RFC_SEED, code, None, at_seconds=at) == (Verdict.ACCEPTED, at // 30)


def test_one_step_of_skew_is_accepted_either_side_but_not_two() -> None:
    seed = totp.new_seed()
    assert len(seed) == 32 and base64.b32decode(seed)
    now = 1_700_000_000.0
    step = totp.current_step(now)
    for offset in (-1, 0, 1):
        assert totp.verify(seed, totp.code_at(seed, step + offset), None, now)[0] is Verdict.ACCEPTED
    for offset in (-2, 2):
        assert totp.verify(seed, totp.code_at(seed, step + offset), None, now)[0] is Verdict.WRONG


def test_a_code_of_a_used_step_is_never_accepted_again() -> None:
    seed = totp.new_seed()
    now = 1_700_000_000.0
    step = totp.current_step(now)
    code = totp.code_at(seed, step)
    verdict, used = totp.verify(seed, code, None, now)
    assert verdict is Verdict.ACCEPTED and used == step
    assert totp.verify(seed, code, used, now) == (Verdict.REUSED, None)
    # an older code, even inside the skew window, is refused too
    assert totp.verify(seed, totp.code_at(seed, step - 1), used, now) == (Verdict.REUSED, None)
    assert totp.verify(seed, totp.code_at(seed, step + 1), used, now) == (Verdict.ACCEPTED, step + 1)


def test_malformed_codes_are_wrong() -> None:
    seed = totp.new_seed()
    for code in ("", "12345", "1234567", "abcdef", "12 456", "１２３４５６"):
        assert totp.verify(seed, code, None)[0] is Verdict.WRONG
        assert totp.verify_pair(seed, code, code, None)[0] is Verdict.WRONG


def test_binding_needs_two_consecutive_codes() -> None:
    seed = totp.new_seed()
    now = 1_700_000_000.0
    step = totp.current_step(now)
    first, second = totp.code_at(seed, step - 1), totp.code_at(seed, step)
    assert totp.verify_pair(seed, first, second, None, now) == (Verdict.ACCEPTED, step)
    assert totp.verify_pair(seed, second, first, None, now)[0] is Verdict.WRONG
    assert totp.verify_pair(seed, first, first, None, now)[0] is Verdict.WRONG
    assert (
        totp.verify_pair(seed, totp.code_at(seed, step - 3), totp.code_at(seed, step - 2), None, now)[0]
        is Verdict.WRONG
    )
    assert totp.verify_pair(seed, first, second, step, now) == (Verdict.REUSED, None)


def test_pyotp_agrees_with_our_codes() -> None:
    seed = totp.new_seed()
    now = 1_700_000_123.0
    assert pyotp.TOTP(seed).at(now) == totp.code_at(seed, totp.current_step(now))


def test_qr_code_is_a_png_of_the_otpauth_uri() -> None:
    seed = totp.new_seed()
    uri = totp.provisioning_uri(seed, "phone@acme", "OpenIMS")
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    assert parse_qs(parsed.query)["secret"] == [seed] and parse_qs(parsed.query)["issuer"] == ["OpenIMS"]
    png = base64.b64decode(totp.qr_png_base64(uri))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size[0] == image.size[1] > 100

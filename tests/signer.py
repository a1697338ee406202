"""A hand-rolled V3/v2 signer for the tests that must tamper with what the SDK would send
(stale timestamps, replayed nonces, altered bodies)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import httpx


def _utc(offset_s: float = 0) -> str:
    return datetime.fromtimestamp(datetime.now(UTC).timestamp() + offset_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def v3_request(
    url: str,
    key_id: str,
    secret: str,
    action: str,
    params: dict[str, str],
    version: str = "2019-08-15",
    nonce: str | None = None,
    time_offset_s: float = 0,
    body: bytes = b"",
) -> httpx.Request:
    query = sorted(params.items())
    headers = {
        "host": url.split("://", 1)[1].rstrip("/"),
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": _utc(time_offset_s),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    signed = sorted(headers)
    canon_query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in query)
    canonical = "\n".join(
        [
            "POST",
            "/",
            canon_query,
            "".join(f"{h}:{headers[h]}\n" for h in signed),
            ";".join(signed),
            headers["x-acs-content-sha256"],
        ]
    )
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders={';'.join(signed)},Signature={signature}"
    )
    return httpx.Request("POST", f"{url}/?{canon_query}", headers=headers, content=body)


def v2_params(
    key_id: str,
    secret: str,
    action: str,
    params: dict[str, str],
    version: str = "2019-08-15",
    nonce: str | None = None,
    time_offset_s: float = 0,
    method: str = "POST",
) -> dict[str, str]:
    allp = {
        "Action": action,
        "Version": version,
        "Format": "JSON",
        "AccessKeyId": key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "Timestamp": _utc(time_offset_s),
        **params,
    }
    canon = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(allp.items()))
    to_sign = f"{method}&%2F&{quote(canon, safe='~')}"
    allp["Signature"] = base64.b64encode(
        hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    ).decode()
    return allp


def send(request: httpx.Request) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        return client.send(request)


def post_form(url: str, params: dict[str, str]) -> httpx.Response:
    return httpx.post(
        url + "/", content=urlencode(params), headers={"content-type": "application/x-www-form-urlencoded"}, timeout=30
    )

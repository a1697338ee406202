"""Request signing for the benchmark: Alibaba's V3 `ACS3-HMAC-SHA256` (what the official SDKs send by
default) and AWS SigV4 for the moto reference.

`python bench/signer.py` runs the self-test: requests signed here must pass the reference verifier in
/work/shared/reference/verify_signatures.py (imported, not copied), and a tampered one must fail.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

# Every benchmark request is POST / with an empty body, so the payload hash is a constant.
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
REFERENCE_DIR = Path("/work/shared/reference")


def canonical_query(params: dict[str, str]) -> str:
    """Pairs sorted by key, both sides percent-encoded with only `~` (and unreserved chars) left as is.
    The same string is sent on the wire, so the server decodes exactly what was signed."""
    return "&".join(f"{quote(k, safe='~')}={quote(str(v), safe='~')}" for k, v in sorted(params.items()))


def sign_v3(
    access_key_id: str,
    secret: str,
    host: str,
    action: str,
    version: str,
    params: dict[str, str],
    *,
    date: str | None = None,
    nonce: str | None = None,
) -> tuple[str, dict[str, str]]:
    """Sign `POST /?<params>` with an empty body. Returns (query string, headers to send).

    A fresh nonce and the current time are used unless given, so every request is a new, unreplayed one.
    """
    query = canonical_query(params)
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-content-sha256": EMPTY_SHA256,
        "x-acs-date": date or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "x-acs-version": version,
    }
    # Keys above are already lower-case and sorted, which is what SignedHeaders requires.
    signed = ";".join(headers)
    canon_headers = "".join(f"{k}:{v}\n" for k, v in headers.items())
    canonical = f"POST\n/\n{query}\n{canon_headers}\n{signed}\n{EMPTY_SHA256}"
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={access_key_id},SignedHeaders={signed},Signature={signature}"
    )
    return query, headers


def sign_sigv4_form(
    host: str,
    body: bytes,
    region: str = "us-east-1",
    service: str = "iam",
    access_key: str = "testing",
    secret: str = "testing",
) -> dict[str, str]:
    """Headers for an AWS query-API POST / (form body) signed with botocore's SigV4Auth.
    moto does not verify signatures; we sign anyway so the client does comparable work per request."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(
        method="POST",
        url=f"http://{host}/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials(access_key, secret), service, region).add_auth(req)
    return {k.lower(): v for k, v in req.headers.items()}


def self_test() -> None:
    """Check sign_v3 against the reference verifier; raises AssertionError on a mismatch."""
    sys.path.insert(0, str(REFERENCE_DIR))
    try:
        import verify_signatures as ref  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(REFERENCE_DIR))
    from urllib.parse import urlsplit

    cases: list[tuple[str, str, dict[str, str]]] = [
        (
            "CreateUser",
            "2019-08-15",
            {
                "UserPrincipalName": "alice+test@example.onaliyun.com",
                "DisplayName": "Alice / Ops ~ é",
                "Comments": "a b*c",
                "Tag.1.Key": "team",
                "Tag.1.Value": "sre & sec",
            },
        ),
        ("GetAccountSummary", "2019-08-15", {}),
        (
            "LookupEvents",
            "2020-07-06",
            {"LookupAttribute.1.Key": "EventName", "LookupAttribute.1.Value": "GetUser", "MaxResults": "50"},
        ),
    ]

    def verified(query: str, headers: dict[str, str]) -> bool:
        # The reference takes the request target and every received value of each lower-case header name.
        ok, _why = ref.verify_v3("POST", f"/?{query}", {k.lower(): [v] for k, v in headers.items()}, b"")
        return bool(ok)

    for action, version, params in cases:
        query, headers = sign_v3(ref.AK, ref.SECRET, "127.0.0.1:8470", action, version, params)
        assert verified(urlsplit(f"/?{query}").query, headers), f"{action}: reference rejects it"
        tampered = dict(headers, **{"x-acs-action": "DeleteUser"})
        assert not verified(query, tampered), f"{action}: tampered request verified"
        assert not verified(query + "&Extra=1", headers), f"{action}: extra param verified"
    # Two signings of the same request must differ (fresh nonce), or a replay-protecting server refuses them.
    nonces = {sign_v3("a", "b", "h", "X", "v", {})[1]["x-acs-signature-nonce"] for _ in range(2)}
    assert len(nonces) == 2, "the nonce repeats"
    # SigV4 path: botocore must produce an Authorization header for the moto requests.
    assert sign_sigv4_form("127.0.0.1:1", b"Action=GetUser")["authorization"].startswith("AWS4-HMAC-SHA256 ")


if __name__ == "__main__":
    self_test()
    print("signer self-test: OK (sign_v3 verified by /work/shared/reference/verify_signatures.py:verify_v3)")

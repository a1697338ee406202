"""Request authentication: V3 `ACS3-HMAC-SHA256` and legacy RPC v2 HMAC-SHA1, timestamp window, key state.

Knows nothing about actions. The nonce is only checked for reuse when the call's transaction records it
(dispatch), so a replay is refused even across restarts and server processes sharing one database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from sqlalchemy import Connection, bindparam, select

from openims import clock
from openims.api.protocol import RpcRequest
from openims.errors import ApiError
from openims.params import has_control
from openims.principal import RAM_USER, ROOT, Principal
from openims.runtime import Runtime
from openims.store.prepared import Prepared
from openims.store.schema import access_keys, accounts, users

V3_ALGORITHM = "ACS3-HMAC-SHA256"
# Headers a V3 signature must cover, or an attacker could change the nonce, time or body of a signed request.
V3_REQUIRED_SIGNED = ("x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256")
V2_REQUIRED = ("AccessKeyId", "Signature", "SignatureNonce", "Timestamp")
MAX_NONCE = 128


class AuthError(ApiError):
    """An authentication failure; `principal` is set when the key is known, so the failure is audited."""

    def __init__(self, code: str, message: str, principal: Principal | None = None, for_caller: str = "") -> None:
        super().__init__(code, message, 404 if code.endswith(".NotFound") else None, for_caller=for_caller)
        self.principal = principal


@dataclass(frozen=True)
class Authenticated:
    principal: Principal
    nonce: str
    nonce_expires_ms: int


@dataclass(frozen=True)
class KeyRecord:
    principal: Principal
    secret: str
    status: str
    # The connection the key was read on, when the call gave one: a key check reads what else it needs about the
    # key there, in the same state (inside a group transaction that state includes the writes grouped before).
    reader: Callable[[], Connection] | None = None


# A check run once the signature is proven; it may raise AuthError (for example a key's network policy).
KeyCheck = Callable[[Runtime, KeyRecord, RpcRequest], None]


@dataclass(frozen=True)
class _Signed:
    """What a request's signature claims, and how to check it against a secret."""

    key_id: str
    timestamp: str
    nonce: str
    to_sign: str
    signature: str
    sign: Callable[[str], str]  # the signature a secret gives over to_sign
    # The string to sign as a SignatureDoesNotMatch error shows it: the SDKs compare it with their own to
    # tell a wrong secret from a wrong canonicalization (aliyunsdkcore splits the message at ':').
    shown: str
    body_matches: bool = True

    def verified_by(self, secret: str) -> bool:
        return self.body_matches and _same(self.sign(secret), self.signature)


def authenticate(
    rt: Runtime,
    req: RpcRequest,
    checks: Sequence[KeyCheck] = (),
    secret_params: Collection[str] = (),
    reader: Callable[[], Connection] | None = None,
) -> Authenticated:
    """Verify the request's signature, key state and timestamp, then run `checks` in order.
    `secret_params` are masked in the string to sign that a SignatureDoesNotMatch error shows; the key is read
    on the connection `reader` gives (the call's own), else on a read connection of its own."""
    if "authorization" in req.headers:
        signed = _v3(req)
    elif "Signature" in req.params:
        signed = _v2(req, secret_params)
    else:
        raise AuthError(
            "IncompleteSignature",
            "The request is not signed: send an Authorization header (V3) or a Signature parameter (v2).",
        )
    timestamp, nonce = signed.timestamp, signed.nonce
    key = load_key(rt, signed.key_id, reader)
    if not signed.verified_by(key.secret):
        # The string to sign goes to the caller only: events and logs record the message without it.
        raise AuthError(
            "SignatureDoesNotMatch",
            "The request signature does not conform to Alibaba Cloud standards.",
            key.principal,
            for_caller=f" server string to sign is:{signed.shown}",
        )
    # Checked once the key is known, so that the refusal is audited in its account.
    if len(nonce) > MAX_NONCE:
        raise AuthError(
            "IncompleteSignature", f"The signature nonce is longer than {MAX_NONCE} characters.", key.principal
        )
    if has_control(nonce):
        raise AuthError(
            "IncompleteSignature", "The signature nonce must not contain control characters.", key.principal
        )
    if key.status != "Active":
        raise AuthError("InvalidAccessKeyId.Inactive", "The specified AccessKey is disabled.", key.principal)
    try:
        sent_ms = clock.parse_iso(timestamp)
    except ValueError:
        raise AuthError(
            "InvalidTimeStamp.Format",
            f"The timestamp {timestamp!r} is not of the form YYYY-MM-DDThh:mm:ssZ.",
            key.principal,
        ) from None
    window_ms = rt.settings.signature_window_seconds * 1000
    if abs(clock.now_ms() - sent_ms) > window_ms:
        raise AuthError(
            "InvalidTimeStamp.Expired",
            "The specified timestamp or date header has expired: it must be within 15 minutes of the server time "
            "(UTC).",
            key.principal,
        )
    for check in checks:
        check(rt, key, req)
    return Authenticated(key.principal, nonce, sent_ms + window_ms)


def claimed_key_id(req: RpcRequest) -> str:
    """The AccessKey ID a request says it is signed with (V3 Credential, or v2 AccessKeyId), unverified."""
    algorithm, _, rest = req.headers.get("authorization", "").partition(" ")
    if algorithm == V3_ALGORITHM:
        for part in rest.split(","):
            name, eq, value = part.strip().partition("=")
            if eq and name == "Credential":
                return value
        return ""
    return req.params.get("AccessKeyId", "")


_KEY_QUERY = Prepared(
    select(
        access_keys.c.account_id,
        access_keys.c.user_id,
        access_keys.c.secret_sealed,
        access_keys.c.status,
        access_keys.c.deleted_ms,
        users.c.upn,
        users.c.deleted_ms.label("user_deleted"),
        accounts.c.authz_version,
    )
    .select_from(
        access_keys.outerjoin(users, users.c.id == access_keys.c.user_id).join(
            accounts, accounts.c.id == access_keys.c.account_id
        )
    )
    .where(access_keys.c.id == bindparam("key_id"))
)


def load_key(rt: Runtime, key_id: str, reader: Callable[[], Connection] | None = None) -> KeyRecord:
    """The key's owner and secret (read on the connection `reader` gives, when given); a key in the recycle bin,
    or of a deleted user, does not exist, nor does an ID with a control character (which PostgreSQL could not
    even look up)."""
    row = None
    if not has_control(key_id):
        with rt.db.read(reader) as conn:
            row = _KEY_QUERY.first(conn, {"key_id": key_id})
    if row is None:
        raise AuthError("InvalidAccessKeyId.NotFound", "The specified AccessKey ID does not exist.")
    account_id, user_id, sealed, status, deleted_ms, upn, user_deleted, authz_version = row
    if deleted_ms is not None or (user_id is not None and (upn is None or user_deleted is not None)):
        raise AuthError("InvalidAccessKeyId.NotFound", "The specified AccessKey ID does not exist.")
    secret = rt.secret_cache.get(key_id)
    if secret is None:
        secret = rt.master_key.open(sealed, context=key_id)
        rt.secret_cache[key_id] = secret
    if user_id is None:
        principal = Principal(account_id, ROOT, account_id, "root", key_id, authz_version=authz_version)
    else:
        principal = Principal(account_id, RAM_USER, user_id, upn, key_id, user_id=user_id, authz_version=authz_version)
    return KeyRecord(principal, secret, status, reader)


def _v3(req: RpcRequest) -> _Signed:
    algorithm, _, rest = req.headers["authorization"].partition(" ")
    if algorithm != V3_ALGORITHM:
        raise AuthError("IncompleteSignature", f"Unsupported signature algorithm {algorithm!r}; use {V3_ALGORITHM}.")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, value = part.strip().partition("=")
        if eq:
            fields[name] = value
    if not all(fields.get(f) for f in ("Credential", "SignedHeaders", "Signature")):
        raise AuthError(
            "IncompleteSignature", "The Authorization header must carry Credential, SignedHeaders and Signature."
        )
    signed = fields["SignedHeaders"].split(";")
    missing = [h for h in V3_REQUIRED_SIGNED if h not in signed or h not in req.headers]
    if missing or any(h not in req.headers for h in signed):
        raise AuthError(
            "IncompleteSignature",
            f"The signature must cover the headers {', '.join(V3_REQUIRED_SIGNED)}, and every signed header must be "
            "sent.",
        )
    payload_hash = hashlib.sha256(req.body).hexdigest()
    pairs = sorted(parse_qsl(req.raw_query, keep_blank_values=True))
    canon_query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in pairs)
    canon_headers = "".join(f"{h}:{req.headers[h].strip()}\n" for h in signed)
    canonical = "\n".join([req.method, req.path or "/", canon_query, canon_headers, ";".join(signed), payload_hash])
    # Only a hash of the request: safe to show whatever the parameters hold.
    to_sign = f"{V3_ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return _Signed(
        fields["Credential"],
        req.headers["x-acs-date"],
        req.headers["x-acs-signature-nonce"],
        to_sign,
        fields["Signature"],
        lambda secret: hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest(),
        shown=to_sign,
        body_matches=_same(req.headers["x-acs-content-sha256"], payload_hash),
    )


def _v2(req: RpcRequest, secret_names: Collection[str]) -> _Signed:
    params = req.params
    absent = [p for p in V2_REQUIRED if not params.get(p)]
    if absent:
        raise AuthError("IncompleteSignature", f"The v2 signature needs the parameters {', '.join(absent)}.")
    if params.get("SignatureMethod", "HMAC-SHA1") != "HMAC-SHA1":
        raise AuthError(
            "IncompleteSignature", "Unsupported SignatureMethod; use HMAC-SHA1 (or the V3 ACS3-HMAC-SHA256 signature)."
        )

    def string_to_sign(mask: bool) -> str:
        canon = "&".join(
            f"{quote(k, safe='~')}={quote('******' if mask and k in secret_names else v, safe='~')}"
            for k, v in sorted(params.items())
            if k != "Signature"
        )
        return f"{req.method}&%2F&{quote(canon, safe='~')}"

    to_sign = string_to_sign(mask=False)
    return _Signed(
        params["AccessKeyId"],
        params["Timestamp"],
        params["SignatureNonce"],
        to_sign,
        params["Signature"],
        lambda secret: base64.b64encode(
            hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
        ).decode(),
        shown=string_to_sign(mask=True),
    )


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison that also accepts non-ASCII input (compare_digest rejects it as str)."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))

"""The authorization server's HTTP endpoints, on Alibaba Cloud's paths (docs/oauth.md):

| Alibaba Cloud                                            | OpenIMS                               |
| -------------------------------------------------------- | ------------------------------------- |
| https://signin.aliyun.com/oauth2/v1/auth                 | /oauth2/v1/auth (the console asks)    |
| https://oauth.aliyun.com/v1/token                        | /v1/token                             |
| https://oauth.aliyun.com/v1/revoke                       | /v1/revoke                            |
| https://oauth.aliyun.com/v1/userinfo                     | /v1/userinfo                          |
| https://oauth.aliyun.com/v1/keys                         | /v1/keys                              |
| https://oauth.aliyun.com/.well-known/openid-configuration | /.well-known/openid-configuration     |
| (none)                                                   | /v1/introspect (RFC 7662)             |
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc6749 import ResourceProtector
from authlib.oauth2.rfc6749.errors import InvalidClientError, OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenValidator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from openims.actions.applications import SCOPES
from openims.api import protocol
from openims.audit.event import Origin
from openims.oauth import events, owners, signing_keys, tokens
from openims.oauth.events import Step
from openims.oauth.grants import AUTH_METHODS
from openims.oauth.owners import SCOPE_CLAIMS
from openims.oauth.server import Answer, Incoming, Server, exchange, issuer, refusal
from openims.runtime import Runtime

AUTHORIZE_PATH = "/oauth2/v1/auth"
# The console page that signs the user in and asks for consent: the console's cookie is scoped to /console.
CONSENT_PAGE = "/console/oauth2/authorize"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def origin_of(request: Request) -> Origin:
    return Origin(
        protocol.client_ip(request.scope)[:64],
        request.headers.get("user-agent", "")[:512],
        "https" if request.url.scheme == "https" else "http",
    )


def _check_basic(authorization: str) -> None:
    """HTTP Basic credentials Authlib can read: base64 of UTF-8 (it would fail on anything else)."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return
    try:
        base64.b64decode(value, validate=True).decode()
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are both ValueErrors
        raise InvalidClientError(status_code=401, description="The Basic credentials are not well formed.") from exc


async def incoming(request: Request) -> Incoming:
    """The request as Authlib reads it: refused over plain HTTP but to a loopback address, as OAuth requires, and
    with unreadable Basic credentials."""
    _check_basic(request.headers.get("authorization", ""))
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        data = await request.form()
        form = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
    return Incoming(request.method, str(request.url), request.headers, list(request.query_params.multi_items()), form)


def _json(answer: Answer) -> Response:
    status, body, headers = answer
    response = JSONResponse(body, status_code=status, headers=NO_STORE)
    for name, value in headers:
        if name.lower() not in ("content-type", "cache-control", "pragma"):
            response.headers[name] = value
    return response


def _refusal(err: OAuth2Error) -> Response:
    """A request refused before it reached Authlib (plain HTTP, unreadable credentials)."""
    return JSONResponse(dict(err.get_body()), status_code=err.status_code or 400, headers=NO_STORE)


def routes(rt: Runtime) -> list[Route]:
    """The endpoints, for the server's app."""

    def discovery_document() -> dict[str, Any]:
        base = issuer(rt)
        return {
            "issuer": base,
            "authorization_endpoint": base + AUTHORIZE_PATH,
            "token_endpoint": base + "/v1/token",
            "userinfo_endpoint": base + "/v1/userinfo",
            "revocation_endpoint": base + "/v1/revoke",
            "introspection_endpoint": base + "/v1/introspect",
            "jwks_uri": base + "/v1/keys",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [signing_keys.ALG],
            "scopes_supported": [s for s, (_, types) in SCOPES.items() if "WebApp" in types or "NativeApp" in types],
            "claims_supported": ["iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash"]
            + [c for names in SCOPE_CLAIMS.values() for c in names],
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["consent"],
        }

    async def discovery(_request: Request) -> Response:
        return JSONResponse(discovery_document())

    def key_set() -> dict[str, Any]:
        with rt.db.read() as conn:
            published = signing_keys.published(conn)
        if not published:
            with rt.db.transaction() as conn:
                signing_keys.current(rt, conn)  # the first relying party to look finds a key
                published = signing_keys.published(conn)
        return {"keys": published}

    async def keys(_request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(key_set))

    async def authorize(request: Request) -> Response:
        """Alibaba's path, handed to the console page (whose session cookie is scoped to /console)."""
        query = request.url.query
        return RedirectResponse(CONSENT_PAGE + ("?" + query if query else ""), status_code=302)

    def protocol_endpoint(name: Callable[[Incoming], str], work: Callable[[Server, Incoming], Answer]) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                req = await incoming(request)
            except OAuth2Error as err:
                return _refusal(err)
            step = Step(name(req))
            return _json(await run_in_threadpool(exchange, rt, step, origin_of(request), lambda s: work(s, req)))

        return endpoint

    def token_event(req: Incoming) -> str:
        return events.REFRESH if req.payload.grant_type == "refresh_token" else events.ISSUE

    async def introspect(request: Request) -> Response:
        try:
            req = await incoming(request)
        except OAuth2Error as err:
            return _refusal(err)
        step = Step(events.INTROSPECT)

        def work(server: Server) -> Answer:
            answer: Answer = server.create_endpoint_response("introspection", req)
            # An active token is the everyday answer to a resource server: not recorded.
            step.silent = answer[0] < 400 and bool(answer[1].get("active"))
            return answer

        def refused(answer: Answer) -> tuple[str, str] | None:
            """A refused introspection, and one that found no active token (an answer, 200, but recorded)."""
            if answer[0] >= 400 or answer[1].get("active"):
                return refusal(answer)
            return "InactiveToken", f"The token is not active: {step.details.get('reason', 'unknown')}."

        return _json(await run_in_threadpool(exchange, rt, step, origin_of(request), work, refused))

    def user_info(req: Incoming) -> Answer:
        with rt.db.read() as conn:
            validator = Bearer(conn)
            protector = ResourceProtector()
            protector.register_token_validator(validator)
            try:
                token = protector.validate_request(["openid"], req)
            except OAuth2Error as err:
                return err()  # type: ignore[no-any-return]
            assert token.owner is not None
            return 200, owners.claims(rt, token.owner, token.get_scope()), []

    async def userinfo(request: Request) -> Response:
        try:
            req = await incoming(request)
        except OAuth2Error as err:
            return _refusal(err)
        return _json(await run_in_threadpool(user_info, req))

    return [
        Route("/.well-known/openid-configuration", discovery, methods=["GET"]),
        Route("/v1/keys", keys, methods=["GET"]),
        Route(AUTHORIZE_PATH, authorize, methods=["GET"]),
        Route(
            "/v1/token",
            protocol_endpoint(token_event, lambda server, req: server.create_token_response(req)),
            methods=["POST"],
        ),
        Route(
            "/v1/revoke",
            protocol_endpoint(lambda _req: events.REVOKE, lambda s, req: s.create_endpoint_response("revocation", req)),
            methods=["POST"],
        ),
        Route("/v1/introspect", introspect, methods=["POST"]),
        Route("/v1/userinfo", userinfo, methods=["GET", "POST"]),
    ]


class Bearer(BearerTokenValidator):  # type: ignore[misc]
    """Access tokens presented to the userinfo endpoint."""

    def __init__(self, conn: Any) -> None:
        super().__init__()
        self._conn = conn

    def authenticate_token(self, token_string: str) -> tokens.Token | None:
        found = tokens.find(self._conn, token_string, "access_token")
        return found if found is not None and not found.refresh else None

"""HTTP <-> RPC: parse what the SDKs send into an `RpcRequest`; render results and errors as they expect."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response

from openims import ids, jsontext
from openims.errors import ApiError

MAX_BODY = 1 << 20  # 1 MiB: the largest parameter we accept (a SAML metadata document) is far smaller


@dataclass
class RpcRequest:
    method: str
    path: str
    raw_query: str
    body: bytes
    headers: dict[str, str]
    params: dict[str, str]
    action: str
    version: str
    source_ip: str
    user_agent: str
    host: str
    request_id: str
    fmt: str = "JSON"
    # http or https as the client reached us (through a trusted proxy: as it reached the proxy).
    scheme: str = "http"


class Unreadable(ApiError):
    """A request refused while it was read (a body too large, or not UTF-8), with what could be read of it:
    a request that names a known AccessKey is audited in that key's account, like a bad signature."""

    def __init__(self, code: str, message: str, status: int | None, request: RpcRequest) -> None:
        super().__init__(code, message, status)
        self.request = request


async def read_request(request: Request) -> RpcRequest:
    """Collect action, version and parameters from the query string and a form body."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.scope["headers"]}
    raw_query = request.scope.get("query_string", b"").decode("latin-1")
    params = dict(parse_qsl(raw_query, keep_blank_values=True))
    read = RpcRequest(
        method=request.method,
        path=request.scope.get("path", "/"),
        raw_query=raw_query,
        body=b"",
        headers=headers,
        params=params,
        action=headers.get("x-acs-action") or params.get("Action", ""),
        version=headers.get("x-acs-version") or params.get("Version", ""),
        source_ip=client_ip(request.scope),
        user_agent=headers.get("user-agent", ""),
        host=headers.get("host", ""),
        request_id=ids.request_id(),
        fmt="XML" if params.get("Format", "").upper() == "XML" else "JSON",
        scheme="https" if request.scope.get("scheme") == "https" else "http",
    )
    if request.method not in ("POST", "PUT"):
        return read
    too_large = f"The request body exceeds {MAX_BODY} bytes."
    length = headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise Unreadable("RequestTooLarge", too_large, 413, read)
    # Read as it comes, so a chunked body without a length stops at the limit instead of filling memory.
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_BODY:
            raise Unreadable("RequestTooLarge", too_large, 413, read)
    body = bytes(received)
    if body and headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        try:
            form = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise Unreadable("InvalidParameter", "The form body is not valid UTF-8.", None, read) from None
        params = {**params, **dict(form)}
    return replace(
        read,
        body=body,
        params=params,
        action=headers.get("x-acs-action") or params.get("Action", ""),
        version=headers.get("x-acs-version") or params.get("Version", ""),
        fmt="XML" if params.get("Format", "").upper() == "XML" else "JSON",
    )


def client_ip(scope: Any) -> str:
    """The caller's address: the TCP peer, or what a trusted proxy forwarded (uvicorn puts it in the scope).
    Anything that is not an IP address (a proxy forwarding junk) counts as unknown, which no address
    condition or network policy allows."""
    client = scope.get("client")
    try:
        return str(ipaddress.ip_address(client[0])) if client else ""
    except ValueError:
        return ""


def render(body: dict[str, Any], req: RpcRequest | None, status: int = 200, root: str | None = None) -> Response:
    """A success body (or an error envelope) as JSON, or XML when the caller asked with Format=XML."""
    request_id = body.get("RequestId", "")
    headers = {"x-acs-request-id": request_id}
    if req is not None and req.fmt == "XML":
        tag = root or f"{req.action}Response"
        xml = f'<?xml version="1.0" encoding="UTF-8"?><{tag}>{_to_xml(body)}</{tag}>'
        return Response(xml, status_code=status, media_type="text/xml;charset=utf-8", headers=headers)
    return Response(
        jsontext.dumps(body),
        status_code=status,
        media_type="application/json;charset=utf-8",
        headers=headers,
    )


def error_body(err: ApiError, request_id: str, host: str) -> dict[str, Any]:
    return {
        "RequestId": request_id,
        "HostId": host or "ims.aliyuncs.com",
        "Code": err.code,
        "Message": err.message + err.for_caller,
        "Recommend": recommend(err.code),
        **err.extra,
    }


def render_error(err: ApiError, req: RpcRequest | None, request_id: str, host: str) -> Response:
    return render(error_body(err, request_id, host), req, err.status, root="Error")


def recommend(code: str) -> str:
    """What to try next, per code family (Alibaba links a troubleshooting page; we are offline)."""
    hints = {
        "SignatureDoesNotMatch": "Check the AccessKey secret and that the request is signed as sent "
        "(ACS3-HMAC-SHA256 or HMAC-SHA1 v2).",
        "IncompleteSignature": "Sign the request with an official SDK, or include every required signature field.",
        "SignatureNonceUsed": "Use a new random SignatureNonce for every request.",
        "InvalidTimeStamp": "Sync the client clock: the timestamp must be within 15 minutes of the server's, in UTC.",
        "InvalidAccessKeyId": "Use an AccessKey that exists, is Active and belongs to a live user.",
        "NoPermission": "Ask the account's administrator to grant the action on the resource.",
        "MissingParameter": "Supply every required parameter; see docs/api.md.",
        "InvalidParameter": "Check the parameter's format and limits in docs/api.md.",
        "EntityNotExist": "Check the name; list the resources to see what exists.",
        "EntityAlreadyExists": "Choose another name, or use the existing resource.",
        "InvalidAction": "Check the action name and API version (IMS 2019-08-15, ActionTrail 2020-07-06, RAM "
        "2015-05-01).",
        "InvalidVersion": "Check the API version (IMS 2019-08-15, ActionTrail 2020-07-06, RAM 2015-05-01).",
        "LimitExceeded": "A quota is reached: delete something first (GetAccountSummary shows usage and quotas).",
        "DeleteConflict": "Remove what still depends on the resource first, as the message says.",
        "InternalError": "Retry later; if it persists, the server log has the details under this RequestId.",
    }
    for prefix, hint in hints.items():
        if code.startswith(prefix):
            return hint
    return "See the action's errors in docs/api.md and the guide in docs/ for its family."


# A name XML accepts as an element. Keys that are not (a caller's made-up parameter name recorded in an
# event's requestParameters, say) become <Item Key="...">, so no caller can break or inject markup.
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")
# Characters XML 1.0 cannot carry at all, not even as references: shown as U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(value: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", value), {'"': "&quot;"})


def _to_xml(value: Any, tag: str | None = None) -> str:
    if isinstance(value, jsontext.Stored):
        value = jsontext.loads(value.text)
    if tag is not None and not _XML_NAME.fullmatch(tag):
        inner = _to_xml(value)
        return (
            f'<Item Key="{_xml_text(tag)}">{inner}</Item>'
            if not isinstance(value, list)
            else "".join(f'<Item Key="{_xml_text(tag)}">{_to_xml(v)}</Item>' for v in value)
        )
    if isinstance(value, dict):
        inner = "".join(_to_xml(v, k) for k, v in value.items())
    elif isinstance(value, list):
        # Alibaba's XML repeats the element for each list item: {"User": [a, b]} -> <User>a</User><User>b</User>
        return "".join(_to_xml(v, tag) for v in value)
    elif isinstance(value, bool):
        inner = "true" if value else "false"
    elif value is None:
        inner = ""
    else:
        inner = _xml_text(str(value))
    return f"<{tag}>{inner}</{tag}>" if tag else inner

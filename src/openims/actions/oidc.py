"""OIDC identity providers (for role-based SSO with OIDC tokens), and the issuer certificate fingerprint."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, delete, func, insert, select, update

from openims import clock, ids
from openims.actions.context import CallContext
from openims.actions.paging import MARKER, max_items, page
from openims.actions.registry import WRITE, action
from openims.actions.saml import PROVIDER_NAME_RULE
from openims.errors import ApiError, already_exists, not_found
from openims.federation import oidc_fingerprint
from openims.net import egress
from openims.params import Int, Str, StrList
from openims.store import constraints
from openims.store.tables.federation import oidc_providers

log = logging.getLogger("openims.federation")

OIDC = "ACS::RAM::OIDCProvider"
# Alibaba Cloud's published RAM limits (the SDK docs state none).
MAX_OIDC_PROVIDERS = 100
MAX_CLIENT_IDS = 50
MAX_FINGERPRINTS = 5
DEFAULT_ISSUANCE_LIMIT_HOURS = 12

NAME = Str("OIDCProviderName", required=True, **PROVIDER_NAME_RULE)
ISSUER_URL = Str("IssuerUrl", required=True, min_len=1, max_len=255)
CLIENT_ID_RULE: dict[str, Any] = {
    "min_len": 1,
    "max_len": 128,
    "pattern": r"[A-Za-z0-9][A-Za-z0-9._:/-]*",
    "pattern_doc": "can contain letters, digits, periods (.), hyphens (-), underscores (_), colons (:) and forward "
    "slashes (/), "
    "and cannot start with one of those special characters",
}
FINGERPRINT_RULE: dict[str, Any] = {
    "min_len": 1,
    "max_len": 128,
    "pattern": r"[0-9A-Fa-f]{40}",
    "pattern_doc": "must be the SHA-1 fingerprint of the issuer's HTTPS CA certificate: 40 hexadecimal digits",
}
ISSUANCE_LIMIT = Int("IssuanceLimitTime", min=1, max=168)
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?|[0-9A-Fa-f:.]+"
)

constraints.register(
    "uq_oidc_providers_account_name",
    "EntityAlreadyExists.OIDCProvider",
    "The OIDC provider already exists.",
    sqlite_columns="oidc_providers.account_id, oidc_providers.name",
)
constraints.register(
    "uq_oidc_providers_account_issuer",
    "EntityAlreadyExists.OIDCProvider.IssuerUrl",
    "Another OIDC provider of the account has this issuer URL.",
    sqlite_columns="oidc_providers.account_id, oidc_providers.issuer_url",
)


def issuer_address(url: str) -> tuple[str, int]:
    """Host and port of a valid issuer URL: https, a host, no user info, query or fragment (any port)."""

    def bad(why: str) -> ApiError:
        return ApiError("InvalidParameter.IssuerUrl.Format", f'The parameter - "IssuerUrl" is not valid: it {why}.')

    if any(c.isspace() or ord(c) < 32 for c in url):
        raise bad("must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme != "https" or not url.startswith("https://"):
        raise bad("must start with https://")
    if "?" in url or "#" in url:
        raise bad("must not contain a query (?) or a fragment (#)")
    if "@" in parts.netloc:
        raise bad("must not contain logon information (@)")
    try:
        port = parts.port or 443
    except ValueError:
        raise bad("has an invalid port") from None
    host = parts.hostname or ""
    if not host or not _HOST.fullmatch(host):
        raise bad("must name a valid host")
    return host, port


def _client_ids(name: str) -> StrList:
    return StrList(name, item=Str(name, **CLIENT_ID_RULE), comma_separated=True)


def _fingerprints(name: str) -> StrList:
    return StrList(name, item=Str(name, **FINGERPRINT_RULE), comma_separated=True)


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _check_counts(client_ids: list[str], fingerprints: list[str]) -> None:
    if len(client_ids) > MAX_CLIENT_IDS:
        raise ApiError(
            "LimitExceeded.OIDCProvider.ClientId", f"An OIDC provider can have at most {MAX_CLIENT_IDS} client IDs."
        )
    if len(fingerprints) > MAX_FINGERPRINTS:
        raise ApiError(
            "LimitExceeded.OIDCProvider.Fingerprint",
            f"An OIDC provider can have at most {MAX_FINGERPRINTS} fingerprints.",
        )


def _split(stored: str) -> list[str]:
    return [v for v in stored.split(",") if v]


def _view(ctx: CallContext, row: Row[Any]) -> dict[str, Any]:
    created, updated = clock.iso(row.created_ms), clock.iso(row.updated_ms)
    return {
        "Arn": f"acs:ram::{ctx.account_id}:oidc-provider/{row.name}",
        "OIDCProviderName": row.name,
        "IssuerUrl": row.issuer_url,
        "Description": row.description,
        "ClientIds": row.client_ids,
        "Fingerprints": row.fingerprints,
        "IssuanceLimitTime": row.issuance_limit_time,
        "CreateDate": created,
        "UpdateDate": updated,
        "GmtCreate": created,
        "GmtModified": updated,
    }


def _find(ctx: CallContext, name: str) -> Row[Any]:
    row = ctx.conn.execute(
        select(oidc_providers).where(
            oidc_providers.c.account_id == ctx.account_id, func.lower(oidc_providers.c.name) == name.lower()
        )
    ).first()
    if row is None:
        raise not_found("OIDCProvider", name)
    ctx.reference(OIDC, row.name)
    return row


def _save(ctx: CallContext, row: Row[Any], **changes: Any) -> dict[str, Any]:
    ctx.conn.execute(
        update(oidc_providers).where(oidc_providers.c.id == row.id).values(updated_ms=ctx.now_ms, **changes)
    )
    return {
        "OIDCProvider": _view(ctx, ctx.conn.execute(select(oidc_providers).where(oidc_providers.c.id == row.id)).one())
    }


@action(
    "CreateOIDCProvider",
    rw=WRITE,
    resource=(OIDC, "OIDCProviderName"),
    arn="oidc-provider/{OIDCProviderName}",
    params=(
        NAME,
        ISSUER_URL,
        _client_ids("ClientIds"),
        _fingerprints("Fingerprints"),
        Str("Description", max_len=256),
        Int("IssuanceLimitTime", min=1, max=168, default=DEFAULT_ISSUANCE_LIMIT_HOURS),
    ),
)
def create_oidc_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Create an OIDC identity provider."""
    name, issuer = p["OIDCProviderName"], p["IssuerUrl"]
    issuer_address(issuer)
    client_ids, fingerprints = _unique(p["ClientIds"]), _unique([f.lower() for f in p["Fingerprints"]])
    _check_counts(client_ids, fingerprints)
    mine = oidc_providers.c.account_id == ctx.account_id
    if ctx.conn.execute(
        select(oidc_providers.c.id).where(mine, func.lower(oidc_providers.c.name) == name.lower())
    ).first():
        raise already_exists("OIDCProvider", name)
    if ctx.conn.execute(select(oidc_providers.c.id).where(mine, oidc_providers.c.issuer_url == issuer)).first():
        raise ApiError(
            "EntityAlreadyExists.OIDCProvider.IssuerUrl",
            f"Another OIDC provider of the account has the issuer URL {issuer}.",
        )
    if (
        ctx.conn.execute(select(func.count()).select_from(oidc_providers).where(mine)).scalar_one()
        >= MAX_OIDC_PROVIDERS
    ):
        raise ApiError(
            "LimitExceeded.OIDCProvider", f"An account can have at most {MAX_OIDC_PROVIDERS} OIDC providers."
        )
    row_id = ids.user_id()
    ctx.conn.execute(
        insert(oidc_providers).values(
            id=row_id,
            account_id=ctx.account_id,
            name=name,
            issuer_url=issuer,
            description=p["Description"] or "",
            client_ids=",".join(client_ids),
            fingerprints=",".join(fingerprints),
            issuance_limit_time=p["IssuanceLimitTime"],
            created_ms=ctx.now_ms,
            updated_ms=ctx.now_ms,
        )
    )
    return {
        "OIDCProvider": _view(ctx, ctx.conn.execute(select(oidc_providers).where(oidc_providers.c.id == row_id)).one())
    }


@action("GetOIDCProvider", params=(NAME,), resource=(OIDC, "OIDCProviderName"), arn="oidc-provider/{OIDCProviderName}")
def get_oidc_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Query an OIDC identity provider."""
    return {"OIDCProvider": _view(ctx, _find(ctx, p["OIDCProviderName"]))}


@action(
    "UpdateOIDCProvider",
    rw=WRITE,
    resource=(OIDC, "OIDCProviderName"),
    arn="oidc-provider/{OIDCProviderName}",
    params=(NAME, _client_ids("ClientIds"), ISSUANCE_LIMIT, Str("NewDescription", max_len=256)),
)
def update_oidc_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Change an OIDC identity provider's description or token issuance limit, or replace all its client IDs."""
    row = _find(ctx, p["OIDCProviderName"])
    changes: dict[str, Any] = {}
    if p["ClientIds"]:
        client_ids = _unique(p["ClientIds"])
        _check_counts(client_ids, [])
        changes["client_ids"] = ",".join(client_ids)
    if p["IssuanceLimitTime"] is not None:
        changes["issuance_limit_time"] = p["IssuanceLimitTime"]
    if p["NewDescription"] is not None:
        changes["description"] = p["NewDescription"]
    return _save(ctx, row, **changes)


@action(
    "DeleteOIDCProvider",
    rw=WRITE,
    params=(NAME,),
    resource=(OIDC, "OIDCProviderName"),
    arn="oidc-provider/{OIDCProviderName}",
)
def delete_oidc_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Delete an OIDC identity provider."""
    row = _find(ctx, p["OIDCProviderName"])
    ctx.conn.execute(delete(oidc_providers).where(oidc_providers.c.id == row.id))
    return {}


@action("ListOIDCProviders", params=(MARKER, max_items(100, 100)))
def list_oidc_providers(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """List the account's OIDC identity providers."""
    query = select(oidc_providers).where(oidc_providers.c.account_id == ctx.account_id)
    rows, fields = page(ctx.conn, query, oidc_providers.c.name, p["Marker"], p["MaxItems"])
    return {"OIDCProviders": {"OIDCProvider": [_view(ctx, r) for r in rows]}, **fields}


def _edit_list(ctx: CallContext, name: str, column: str, entity: str, value: str, add: bool) -> dict[str, Any]:
    """Add `value` to, or remove it from, the provider's comma-joined `column` (client IDs or fingerprints)."""
    row = _find(ctx, name)
    values = _split(getattr(row, column))
    if add:
        if value in values:
            raise ApiError(
                f"EntityAlreadyExists.OIDCProvider.{entity}",
                f"The {entity} {value} is already bound to the OIDC provider {row.name}.",
            )
        values.append(value)
        _check_counts(values if column == "client_ids" else [], values if column == "fingerprints" else [])
    elif value in values:
        values.remove(value)
    else:
        raise ApiError(
            f"EntityNotExist.OIDCProvider.{entity}",
            f"The {entity} {value} is not bound to the OIDC provider {row.name}.",
        )
    return _save(ctx, row, **{column: ",".join(values)})


CLIENT_ID = Str("ClientId", required=True, **CLIENT_ID_RULE)
FINGERPRINT = Str("Fingerprint", required=True, **FINGERPRINT_RULE)


@action(
    "AddClientIdToOIDCProvider",
    rw=WRITE,
    params=(NAME, CLIENT_ID),
    resource=(OIDC, "OIDCProviderName"),
    arn="oidc-provider/{OIDCProviderName}",
)
def add_client_id_to_oidc_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Add a client ID to an OIDC identity provider."""
    return _edit_list(ctx, p["OIDCProviderName"], "client_ids", "ClientId", p["ClientId"], add=True)


@action(
    "RemoveClientIdFromOIDCProvider",
    rw=WRITE,
    params=(NAME, CLIENT_ID),
    resource=(OIDC, "OIDCProviderName"),
    arn="oidc-provider/{OIDCProviderName}",
)
def remove_client_id_from_oidc_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Remove a client ID from an OIDC identity provider."""
    return _edit_list(ctx, p["OIDCProviderName"], "client_ids", "ClientId", p["ClientId"], add=False)


@action(
    "AddFingerprintToOIDCProvider",
    rw=WRITE,
    params=(NAME, FINGERPRINT),
    resource=(OIDC, "OIDCProviderName"),
    arn="oidc-provider/{OIDCProviderName}",
)
def add_fingerprint_to_oidc_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Add an HTTPS CA certificate fingerprint to an OIDC identity provider."""
    return _edit_list(ctx, p["OIDCProviderName"], "fingerprints", "Fingerprint", p["Fingerprint"].lower(), add=True)


@action(
    "RemoveFingerprintFromOIDCProvider",
    rw=WRITE,
    params=(NAME, FINGERPRINT),
    resource=(OIDC, "OIDCProviderName"),
    arn="oidc-provider/{OIDCProviderName}",
)
def remove_fingerprint_from_oidc_provider(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Remove a certificate fingerprint from an OIDC identity provider."""
    return _edit_list(ctx, p["OIDCProviderName"], "fingerprints", "Fingerprint", p["Fingerprint"].lower(), add=False)


def _fetch_fingerprint(ctx: CallContext, p: dict[str, Any]) -> oidc_fingerprint.IssuerFingerprint:
    host, port = issuer_address(p["IssuerUrl"])
    policy = egress.Policy(ctx.runtime.settings.egress_allowed_networks)
    try:
        return oidc_fingerprint.fingerprint(host, port, policy=policy)
    except oidc_fingerprint.FetchError as err:
        # One answer for every failure: telling a refused address, a closed port, a filtered one and a host
        # that does not speak TLS apart would make this action a scanner of the server's networks.
        where = egress.hostport(host, port)
        log.info("request %s: no certificate chain from the OIDC issuer %s: %s", ctx.request_id, where, err.why)
        raise ApiError(
            "InvalidParameter.IssuerUrl.Unreachable",
            f"The issuer {p['IssuerUrl']} cannot be used: no TLS certificate chain could be fetched from it. The "
            "host must resolve to a public address (or one the server's operator allows), accept the connection "
            "and complete a TLS handshake.",
        ) from None


@action("GetOIDCIssuerCertFingerprint", params=(ISSUER_URL,), extension=True, prepare=_fetch_fingerprint)
def get_oidc_issuer_cert_fingerprint(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Connect to an OIDC issuer over TLS and return the SHA-1 fingerprint to pin: that of the last certificate
    in the chain its host serves (the top intermediate or root CA). OpenIMS extension."""
    found = ctx.prepared
    chain = [
        {
            "Fingerprint": c.fingerprint,
            "Subject": c.subject,
            "Issuer": c.issuer,
            "NotBefore": clock.iso(c.not_before_ms),
            "NotAfter": clock.iso(c.not_after_ms),
        }
        for c in found.chain
    ]
    return {
        "IssuerUrl": p["IssuerUrl"],
        "Fingerprint": found.pinned.fingerprint,
        "Certificate": chain[-1],
        "CertificateChain": {"Certificate": chain},
        "ChainComplete": found.chain_complete,
    }

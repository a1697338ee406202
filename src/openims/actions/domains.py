"""The account's domains: the default domain of UserPrincipalNames, auxiliary `*.onaliyun.com` domains, and custom
domains proven by a DNS TXT record before users may use them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, delete, func, insert, or_, select, update

from openims import accounts, clock, ids
from openims.actions.context import CallContext
from openims.actions.registry import WRITE, action
from openims.errors import ApiError, already_exists, invalid, not_found
from openims.federation.dns_verify import DnsError, lookup_txt
from openims.params import Str
from openims.store.schema import accounts as accounts_table
from openims.store.schema import users
from openims.store.tables.apps_domains import domains

DOMAIN = "ACS::RAM::Domain"
MAX_DOMAINS = 20  # rows per account: custom domains plus former auxiliary defaults
HOSTNAME = r"(?=.{4,64}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]"
HOSTNAME_DOC = "must be a domain name such as example.com: labels of letters, digits and hyphens, separated by periods"
TXT_PREFIX = "openims-domain-verification="


class DomainName(Str):
    """A domain name parameter, compared and stored in lower case without a trailing period."""

    def convert(self, value: str) -> Any:
        return super().convert(value.strip().rstrip(".").lower())


DOMAIN_PARAM = DomainName(
    "DomainName", required=True, min_len=4, max_len=64, pattern=HOSTNAME, pattern_doc=HOSTNAME_DOC
)
# SetDefaultDomain's rule from the SDK: letters, digits, periods, underscores, hyphens; no leading, trailing or
# double hyphen.
DEFAULT_PARAM = DomainName(
    "DefaultDomainName",
    required=True,
    min_len=4,
    max_len=64,
    pattern=r"(?!-)(?!.*--)(?!.*\.\.)(?=.*\.)[a-z0-9._-]+(?<![-.])",
    pattern_doc="can contain letters, digits, periods, underscores and hyphens, and cannot start or "
    "end with a hyphen or contain two consecutive hyphens",
)


def _own_domain(ctx: CallContext) -> str:
    return accounts.default_domain(accounts.alias_of(ctx.conn, ctx.account_id))


def _row(ctx: CallContext, name: str) -> Row[Any] | None:
    return ctx.conn.execute(
        select(domains).where(domains.c.account_id == ctx.account_id, domains.c.name == name)
    ).first()


def _find(ctx: CallContext, name: str) -> Row[Any]:
    row = _row(ctx, name)
    if row is None:
        raise not_found("Domain", name)
    return row


def _user_count(ctx: CallContext, name: str) -> int:
    """Users (live or in the recycle bin) whose UserPrincipalName is in the domain."""
    return ctx.conn.execute(
        select(func.count())
        .select_from(users)
        .where(users.c.account_id == ctx.account_id, func.lower(users.c.upn).endswith("@" + name, autoescape=True))
    ).scalar_one()


def _view(ctx: CallContext, name: str, row: Row[Any] | None, default: str) -> dict[str, Any]:
    own = name == _own_domain(ctx)
    created = (
        row.created_ms
        if row is not None
        else ctx.conn.execute(
            select(accounts_table.c.created_ms).where(accounts_table.c.id == ctx.account_id)
        ).scalar_one()
    )
    verified = row.verified_ms if row is not None else created
    return {
        "DomainName": name,
        "DomainType": row.domain_type if row is not None else "Auxiliary",
        "Status": row.status if row is not None else "Verified",
        "IsDefault": name == default,
        "IsAccountAliasDomain": own,
        "UserCount": _user_count(ctx, name),
        "CreateDate": clock.iso(created),
        "VerifyDate": clock.iso(verified) if verified else "",
    }


def _challenge(row: Row[Any]) -> dict[str, Any]:
    return {
        "RecordType": "TXT",
        "HostRecord": "@",
        "RecordName": row.name,
        "RecordValue": TXT_PREFIX + row.verification_token,
    }


def _taken_elsewhere(ctx: CallContext, name: str) -> bool:
    """Another account already owns the name: verified there, or it is that account's own alias domain."""
    verified = ctx.conn.execute(
        select(domains.c.account_id).where(
            domains.c.name == name, domains.c.status == "Verified", domains.c.account_id != ctx.account_id
        )
    ).first()
    if verified:
        return True
    if name.endswith(accounts.DOMAIN_SUFFIX):
        alias = name[: -len(accounts.DOMAIN_SUFFIX)]
        return (
            ctx.conn.execute(
                select(accounts_table.c.id).where(
                    accounts_table.c.alias == alias, accounts_table.c.id != ctx.account_id
                )
            ).first()
            is not None
        )
    return False


def _check_room(ctx: CallContext) -> None:
    count = ctx.conn.execute(
        select(func.count()).select_from(domains).where(domains.c.account_id == ctx.account_id)
    ).scalar_one()
    if count >= MAX_DOMAINS:
        raise ApiError(
            "LimitExceeded.Domain", f"An account can have at most {MAX_DOMAINS} domains besides its own alias domain."
        )


@action(
    "SetDefaultDomain",
    rw=WRITE,
    params=(DEFAULT_PARAM,),
    resource=(DOMAIN, "DefaultDomainName"),
    arn="domain/{DefaultDomainName}",
)
def set_default_domain(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Make a domain the default of new UserPrincipalNames: any free `<prefix>.onaliyun.com`, or one of the
    account's verified custom domains. Existing users keep their names, and the former default keeps resolving."""
    name = p["DefaultDomainName"]
    own = _own_domain(ctx)
    row = _row(ctx, name)
    if name != own and row is None:
        if not name.endswith(accounts.DOMAIN_SUFFIX):
            raise not_found("Domain", name)
        if _taken_elsewhere(ctx, name):
            raise already_exists("Domain", name)
        _check_room(ctx)
        ctx.conn.execute(
            insert(domains).values(
                account_id=ctx.account_id,
                name=name,
                domain_type="Auxiliary",
                status="Verified",
                is_default=False,
                verification_token=ids.verification_token(),
                created_ms=ctx.now_ms,
                verified_ms=ctx.now_ms,
            )
        )
    elif row is not None and row.status != "Verified":
        raise invalid(
            "DefaultDomainName",
            "NotVerified",
            f"The domain {name} is not verified yet: publish its TXT record (GetDomainVerificationRecords) and call "
            "Verify.",
        )
    ctx.conn.execute(
        update(domains).where(domains.c.account_id == ctx.account_id, domains.c.is_default).values(is_default=False)
    )
    if name != own:
        ctx.conn.execute(
            update(domains)
            .where(domains.c.account_id == ctx.account_id, domains.c.name == name)
            .values(is_default=True)
        )
    return {"DefaultDomainName": name}


@action(
    "AddDomain",
    rw=WRITE,
    params=(DOMAIN_PARAM,),
    resource=(DOMAIN, "DomainName"),
    arn="domain/{DomainName}",
    extension=True,
)
def add_domain(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Add a custom domain, pending until its DNS TXT record is verified; the response carries the record to publish."""
    name = p["DomainName"]
    if name.endswith(accounts.DOMAIN_SUFFIX):
        raise invalid(
            "DomainName",
            "Reserved",
            f"The domain {name} is an auxiliary domain: choose it with SetDefaultDomain instead of adding it.",
        )
    if _row(ctx, name) is not None:
        raise already_exists("Domain", name)
    if _taken_elsewhere(ctx, name):
        raise ApiError("EntityAlreadyExists.Domain", f"The domain {name} is already verified by another account.")
    _check_room(ctx)
    ctx.conn.execute(
        insert(domains).values(
            account_id=ctx.account_id,
            name=name,
            domain_type="Custom",
            status="Pending",
            is_default=False,
            verification_token=ids.verification_token(),
            created_ms=ctx.now_ms,
        )
    )
    row = _find(ctx, name)
    default = accounts.user_domains(ctx.conn, ctx.account_id)[0]
    return {
        "Domain": {**_view(ctx, name, row, default), "VerificationRecords": {"VerificationRecord": [_challenge(row)]}}
    }


@action(
    "GetDomainVerificationRecords",
    params=(DOMAIN_PARAM,),
    resource=(DOMAIN, "DomainName"),
    arn="domain/{DomainName}",
    extension=True,
)
def get_domain_verification_records(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The DNS TXT record that proves control of a custom domain (random per domain, fixed until it is removed)."""
    row = _find(ctx, p["DomainName"])
    if row.domain_type != "Custom":
        raise invalid(
            "DomainName", "NotCustom", f"The domain {row.name} is an auxiliary domain and needs no DNS verification."
        )
    return {
        "DomainName": row.name,
        "Status": row.status,
        "VerificationRecords": {"VerificationRecord": [_challenge(row)]},
    }


def _look_up(ctx: CallContext, p: dict[str, Any]) -> list[str] | DnsError | None:
    """The domain's TXT records, fetched before the call's transaction so a slow resolver never holds the
    write lock; a failed lookup is handed to the handler, which reports it only for a pending domain. Only a
    pending custom domain of the caller's account is looked up: no call makes the server ask about any other
    name (None then; the handler answers without it)."""
    row = _row(ctx, p["DomainName"])
    if row is None or row.domain_type != "Custom" or row.status == "Verified":
        return None
    try:
        return lookup_txt(p["DomainName"])
    except DnsError as exc:
        return exc


@action(
    "Verify",
    rw=WRITE,
    params=(DOMAIN_PARAM,),
    resource=(DOMAIN, "DomainName"),
    arn="domain/{DomainName}",
    extension=True,
    prepare=_look_up,
)
def verify(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Complete a pending domain verification: look up the domain's TXT records and, when the challenge is among
    them, mark the domain verified. Verifying a verified domain changes nothing."""
    row = _find(ctx, p["DomainName"])
    default = accounts.user_domains(ctx.conn, ctx.account_id)[0]
    if row.status == "Verified":
        return {"Domain": _view(ctx, row.name, row, default)}
    expected = TXT_PREFIX + row.verification_token
    found = ctx.prepared
    if found is None:  # the domain was added between the lookup and now: look it up on the next call
        found = DnsError("the domain changed during the call; retry")
    if isinstance(found, DnsError):
        raise ApiError(
            "ServiceUnavailable.DnsLookup", f"The TXT records of {row.name} could not be looked up: {found}.", 503
        )
    if expected not in [v.strip() for v in found]:
        raise ApiError(
            "InvalidParameter.DomainName.VerificationFailed",
            f"No TXT record of {row.name} holds {expected} ({len(found)} TXT record(s) found); "
            "publish it and retry once DNS has propagated.",
        )
    if _taken_elsewhere(ctx, row.name):
        raise ApiError("EntityAlreadyExists.Domain", f"The domain {row.name} is already verified by another account.")
    ctx.conn.execute(
        update(domains)
        .where(domains.c.account_id == ctx.account_id, domains.c.name == row.name)
        .values(status="Verified", verified_ms=ctx.now_ms)
    )
    return {"Domain": _view(ctx, row.name, _find(ctx, row.name), default)}


@action(
    "RemoveDomain",
    rw=WRITE,
    params=(DOMAIN_PARAM,),
    resource=(DOMAIN, "DomainName"),
    arn="domain/{DomainName}",
    extension=True,
)
def remove_domain(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Remove a domain that is neither the default nor in any user's UserPrincipalName."""
    name = p["DomainName"]
    if name == _own_domain(ctx):
        raise ApiError(
            "DeleteConflict.Domain.AccountAlias",
            f"The domain {name} belongs to the account's alias and cannot be removed.",
        )
    row = _find(ctx, name)
    if row.is_default:
        raise ApiError(
            "DeleteConflict.Domain.Default", f"The domain {name} is the default domain; set another default first."
        )
    if row.status == "Verified" and _user_count(ctx, name):
        raise ApiError(
            "DeleteConflict.Domain.User", f"Users still have UserPrincipalNames in {name}; rename or delete them first."
        )
    ctx.conn.execute(delete(domains).where(domains.c.account_id == ctx.account_id, domains.c.name == name))
    return {}


@action("ListDomains", extension=True)
def list_domains(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """Every domain of the account, the default first, with its type, verification status and user count."""
    default = accounts.user_domains(ctx.conn, ctx.account_id)[0]
    own = _own_domain(ctx)
    rows = {
        r.name: r
        for r in ctx.conn.execute(
            select(domains).where(domains.c.account_id == ctx.account_id).order_by(domains.c.created_ms, domains.c.name)
        ).all()
    }
    names = list(dict.fromkeys([default, own, *rows]))
    return {"Domains": {"Domain": [_view(ctx, n, rows.get(n), default) for n in names]}}


@action("GetDomainAlias", extension=True)
def get_domain_alias(ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    """The default domain and its aliases: the other verified domains under which the account's
    UserPrincipalNames resolve (`alice@alias` finds the same user as `alice@default`)."""
    default, *aliases = accounts.user_domains(ctx.conn, ctx.account_id)
    rows = {
        r.name: r
        for r in ctx.conn.execute(
            select(domains).where(
                domains.c.account_id == ctx.account_id, or_(domains.c.name.in_(aliases), domains.c.is_default)
            )
        ).all()
    }
    return {
        "DefaultDomainName": default,
        "DomainAliases": {
            "DomainAlias": [
                {"DomainName": n, "DomainType": rows[n].domain_type if n in rows else "Auxiliary"} for n in aliases
            ]
        },
    }

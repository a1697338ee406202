"""AccessKey network access policies, the enforcing half: from which source addresses a key may sign requests,
per key and account-wide, checked right after the signature is verified (a key check of `authenticate`).
The actions that read and set them are in actions/access_key_policy.py.

The policy document (OpenIMS's format; see docs/recycle-bin-and-keys.md):
    {"Version": "1", "Conditions": [{"SourceIp": ["203.0.113.0/24", "2001:db8::/32"], "Description": "office"}]}
A request is allowed when its source address is in any condition. A key-level and the account-level policy
both apply: a request must satisfy each one that is set. The unrestricted policy (0.0.0.0/0 and ::/0) is
what a key or account without a policy has; setting it removes the restriction.

Compiled policies are cached per process under the account's `authz_version`, which the key lookup reads
and which database triggers bump whenever a policy row changes (migration 0009): the check reads the
database only after a change, and a change applies from the next call in every process.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence
from functools import lru_cache

from sqlalchemy import Connection, select

from openims.api import signing
from openims.api.protocol import RpcRequest
from openims.authz.cache import LruCache
from openims.errors import ApiError, invalid
from openims.params import load_json
from openims.principal import Principal
from openims.runtime import PerDatabase, Runtime
from openims.store.tables.keys import access_key_policies

VERSION = "1"
MAX_CONDITIONS = 10
MAX_IP_ITEMS = 100
MAX_DOCUMENT = 8192
UNRESTRICTED = ("0.0.0.0/0", "::/0")
DEFAULT_DOCUMENT = json.dumps(
    {"Version": VERSION, "Conditions": [{"SourceIp": list(UNRESTRICTED)}]}, separators=(",", ":")
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _bad(message: str) -> ApiError:
    return invalid("AccessKeyPolicy", "Format", f'The parameter - "AccessKeyPolicy" is not valid: {message}.')


def parse(text: str) -> tuple[str, tuple[Network, ...] | None]:
    """Validate a policy document; returns its canonical JSON and its networks (None when unrestricted)."""
    try:
        doc = load_json(text)
    except ValueError:
        raise _bad("it must be a JSON object") from None
    if not isinstance(doc, dict) or set(doc) - {"Version", "Conditions"}:
        raise _bad('it must be a JSON object with only "Version" and "Conditions"')
    if doc.get("Version") != VERSION:
        raise _bad(f'"Version" must be "{VERSION}"')
    conditions = doc.get("Conditions")
    if not isinstance(conditions, list) or not conditions:
        raise _bad('"Conditions" must be a non-empty list (use 0.0.0.0/0 and ::/0 to allow every address)')
    if len(conditions) > MAX_CONDITIONS:
        raise ApiError(
            "LimitExceeded.AccessKeyPolicy.Conditions", f"A policy can have at most {MAX_CONDITIONS} conditions."
        )
    canonical, networks = [], []
    for i, cond in enumerate(conditions, 1):
        if not isinstance(cond, dict) or set(cond) - {"SourceIp", "Description"}:
            raise _bad(f'condition {i} must be an object with "SourceIp" and an optional "Description"')
        ips = cond.get("SourceIp")
        if not isinstance(ips, list) or not ips or not all(isinstance(ip, str) for ip in ips):
            raise _bad(f'condition {i}: "SourceIp" must be a non-empty list of IP addresses or CIDR blocks')
        description = cond.get("Description", "")
        if not isinstance(description, str) or len(description) > 128:
            raise _bad(f'condition {i}: "Description" must be a string of at most 128 characters')
        for ip in ips:
            try:
                networks.append(ipaddress.ip_network(ip.strip(), strict=False))
            except ValueError:
                raise _bad(f"condition {i}: {ip[:64]!r} is not an IP address or CIDR block") from None
        canonical.append(
            {"SourceIp": [ip.strip() for ip in ips], **({"Description": description} if description else {})}
        )
    if len(networks) > MAX_IP_ITEMS:
        raise ApiError(
            "LimitExceeded.AccessKeyPolicy.IpItems",
            f"A policy can list at most {MAX_IP_ITEMS} addresses or CIDR blocks.",
        )
    text = json.dumps({"Version": VERSION, "Conditions": canonical}, ensure_ascii=False, separators=(",", ":"))
    unrestricted = any(n.prefixlen == 0 for n in networks if n.version == 4) and any(
        n.prefixlen == 0 for n in networks if n.version == 6
    )
    return text, None if unrestricted else tuple(networks)


@lru_cache(maxsize=4096)
def _compiled(document: str) -> tuple[Network, ...] | None:
    return parse(document)[1]


def allows(networks: Sequence[Network] | None, source_ip: str) -> bool:
    if networks is None:
        return True
    try:
        ip = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


def account_row_id(account_id: str) -> str:
    return f"account:{account_id}"


Acls = tuple[tuple[Network, ...] | None, tuple[Network, ...] | None]


class PolicyCache:
    """Compiled (key policy, account policy) per AccessKey ID, for one database, with the account's
    authz_version they were read under."""

    def __init__(self) -> None:
        self._entries: LruCache[tuple[tuple[int | None, int], Acls]] = LruCache()

    def policies(self, rt: Runtime, principal: Principal, reader: Callable[[], Connection] | None = None) -> Acls:
        """The key's and its account's policies, read on the connection `reader` gives (the one the key, and with
        it `authz_version`, was read on: the entry cached under that version must be what that version holds),
        else on a read connection of its own."""
        key_id, version = principal.access_key_id, (principal.authz_version, rt.db.epoch)
        entry = self._entries.get(key_id)
        if entry is not None and principal.authz_version is not None and entry[0] == version:
            return entry[1]
        rows = (key_id, account_row_id(principal.account_id))
        with rt.db.read(reader) as conn:
            found = {
                r.id: r.document
                for r in conn.execute(
                    select(access_key_policies.c.id, access_key_policies.c.document).where(
                        access_key_policies.c.id.in_(rows)
                    )
                )
            }
        acls = (
            _compiled(found[key_id]) if key_id in found else None,
            _compiled(found[rows[1]]) if rows[1] in found else None,
        )
        if principal.authz_version is not None:
            self._entries.put(key_id, (version, acls))
        return acls


cache = PerDatabase(PolicyCache)


def check_source(rt: Runtime, key: signing.KeyRecord, req: RpcRequest) -> None:
    """A key check: refuse (and audit in the key's account) a request from outside the key's policies."""
    principal = key.principal
    key_acl, account_acl = cache(rt).policies(rt, principal, key.reader)
    for networks, whose in ((key_acl, "AccessKey's"), (account_acl, "account's AccessKey")):
        if not allows(networks, req.source_ip):
            raise signing.AuthError(
                "NoPermission",
                f"The {whose} network access policy does not allow requests "
                f"from {req.source_ip or 'an unknown address'}.",
                principal,
            )

"""Bulk-load synthetic ActionTrail events straight into an OpenIMS SQLite database (server stopped).

Calling the API a million times would take many minutes; executemany in large transactions takes
well under a minute. Rows follow the `events` table in src/openims/store/schema.py and the event
record shape in src/openims/audit/event.py: a skewed mix of IMS event names (reads dominate, as in a
real account), root and RAM-user callers, 3% of them console operations in MFA-authenticated sessions, times
spread over the last 30 days, a compact ~1 KB JSON body.
"""

from __future__ import annotations

import json
import queue
import random
import sqlite3
import threading
import time
import uuid
from pathlib import Path

EVENT_NAMES_TSV = Path("/work/shared/reference/ims-events.tsv")
# Relative frequency of the common calls; every other IMS event name gets weight 0.3. GetUser is
# about 13% of rows, so a LookupEvents on EventName=GetUser has ~130k candidates over 1M events.
HOT = {
    "GetUser": 12,
    "ListUsers": 10,
    "ListAccessKeys": 8,
    "GetAccessKeyLastUsed": 6,
    "ListGroupsForUser": 5,
    "GetLoginProfile": 4,
    "GetAccountSummary": 3,
    "ListGroups": 3,
    "UpdateUser": 2,
    "CreateUser": 2,
    "CreateAccessKey": 1.5,
    "AddUserToGroup": 1.5,
    "DeleteUser": 0.5,
    "LookupEvents": 4,
    "DescribeTrails": 1,
}
READ_PREFIXES = ("Get", "List", "Check", "Lookup", "Describe", "Query")
IPS = ["203.0.113.7", "198.51.100.23", "192.0.2.44", "10.12.0.8", "10.12.3.91", "172.16.5.17"]
USER_AGENT = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/2.13.3 TeaDSL/1 alibabacloud-ims20190815/3.5.0"


def _event_names() -> tuple[list[str], list[float]]:
    names = [line.split("\t", 1)[0] for line in EVENT_NAMES_TSV.read_text().splitlines()[1:] if line.strip()]
    names += [n for n in HOT if n not in names]
    return names, [HOT.get(n, 0.3) for n in names]


def _resource_type(name: str) -> str:
    for word, rtype in (
        ("Group", "ACS::RAM::Group"),
        ("AccessKey", "ACS::RAM::AccessKey"),
        ("OIDC", "ACS::RAM::OIDCProvider"),
        ("SAML", "ACS::RAM::SAMLProvider"),
        ("Application", "ACS::RAM::Application"),
        ("Trail", "ACS::ActionTrail::Trail"),
    ):
        if word in name:
            return rtype
    return "ACS::RAM::User"


def seed_events(
    db_path: Path, account_id: str, root_key_id: str, count: int, *, days: int = 30, batch: int = 50_000, seed: int = 1
) -> float:
    """Insert `count` events for `account_id`; returns seconds taken. The secondary indexes of `events`
    are dropped during the load and rebuilt from their stored SQL, which is much faster than updating
    ten B-trees row by row; the resulting schema is identical."""
    rng = random.Random(seed)
    names, weights = _event_names()
    cum = [sum(weights[: i + 1]) for i in range(len(weights))]
    db = sqlite3.connect(db_path, isolation_level=None)
    alias = db.execute("SELECT alias FROM accounts WHERE id = ?", (account_id,)).fetchone()
    domain = f"{alias[0] if alias else 'bench'}.onaliyun.com"
    # 200 RAM users with their own keys, plus root (a third of calls, as in a small team's account).
    callers = [("root", root_key_id, "root-account", account_id)] + [
        (
            f"dev{i}@{domain}",
            "LTAI" + uuid.UUID(int=rng.getrandbits(128)).hex[:20],
            "ram-user",
            str(10**17 + rng.getrandbits(48)),
        )
        for i in range(200)
    ]
    caller_weights = [100] + [1] * 200
    targets = [f"user{i}@{domain}" for i in range(2000)]

    start = time.perf_counter()
    db.execute("PRAGMA journal_mode=OFF")  # a failed seed means a thrown-away data dir anyway
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-512000")  # 512 MB: the event_id unique index takes random inserts
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name IN ('events', 'event_resources') "
        "AND sql IS NOT NULL"
    ).fetchall()
    # Explicit sequence numbers, so the resource index rows can name their event.
    first_seq = (db.execute("SELECT max(seq) FROM events").fetchone()[0] or 0) + 1
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    try:
        now_ms = int(time.time() * 1000) - 60_000  # end a minute ago: nothing in the future
        span = days * 86_400_000
        sql = (
            "INSERT INTO events (seq, event_id, account_id, event_ms, event_name, event_rw, service_name, user_name,"
            " access_key_id, resource_type, resource_name, error_code, source_ip, mfa_used, principal_id,"
            " event_type, sensitive, body) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        )
        resources_sql = (
            "INSERT INTO event_resources (event_seq, resource_type, resource_name, account_id, event_ms)"
            " VALUES (?,?,?,?,?)"
        )

        def produce() -> None:
            for lo in range(0, count, batch):
                rows, resources = [], []
                chosen = rng.choices(names, cum_weights=cum, k=min(batch, count - lo))
                who = rng.choices(callers, weights=caller_weights, k=len(chosen))
                for j, (name, caller) in enumerate(zip(chosen, who)):
                    # Increasing times with jitter: seq order follows time order, as when the server writes.
                    ms = now_ms - span + int((lo + j + rng.random()) * span / count)
                    row, named = _row(rng, first_seq + lo + j, account_id, ms, name, caller, rng.choice(targets))
                    rows.append(row)
                    resources += named
                batches.put((rows, resources))
            batches.put(None)

        # Build rows in a thread while SQLite inserts the previous batch (sqlite3 releases the GIL in C).
        batches: queue.Queue[tuple[list[tuple], list[tuple]] | None] = queue.Queue(maxsize=2)
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        while (loaded := batches.get()) is not None:
            db.execute("BEGIN")
            db.executemany(sql, loaded[0])
            db.executemany(resources_sql, loaded[1])
            db.execute("COMMIT")
        producer.join()
    finally:
        for _, ddl in indexes:
            db.execute(ddl)
        db.execute("PRAGMA journal_mode=WAL")  # what the server sets; leave the file as it found it
        db.close()
    return time.perf_counter() - start


# As the declarations mark them (a sample of the sensitive ones the mix contains).
SENSITIVE = {"CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey", "ChangePassword", "BindMFADevice"}


def _row(
    rng: random.Random,
    seq: int,
    account_id: str,
    ms: int,
    name: str,
    caller: tuple[str, str, str, str],
    target: str,
) -> tuple[tuple, list[tuple]]:
    """The events row and its event_resources rows."""
    user_name, key_id, kind, principal_id = caller
    console = rng.random() < 0.03
    if console:
        key_id = ""
    rw = "Read" if name.startswith(READ_PREFIXES) else "Write"
    service = "Actiontrail" if name in ("LookupEvents", "DescribeTrails") else "Ims"
    rtype = _resource_type(name)
    event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
    ip = rng.choice(IPS)
    error = ("EntityNotExist.User", "The user does not exist.") if rng.random() < 0.02 else None
    params = {"UserPrincipalName": target} if rtype == "ACS::RAM::User" else {"Name": target.split("@")[0]}
    referenced = {rtype: [target]}
    if rtype == "ACS::RAM::Group" and "User" in name:
        # Membership events name the group and the user, as the declarations of AddUserToGroup & co. say.
        group = f"group{rng.randrange(50)}"
        referenced = {rtype: [group], "ACS::RAM::User": [target]}
    event = {
        "eventId": event_id,
        "eventVersion": 1,
        "eventName": name,
        "eventSource": "actiontrail.cn-hangzhou.aliyuncs.com" if service == "Actiontrail" else "ims.aliyuncs.com",
        "eventType": "ConsoleOperation" if console else "ApiCall",
        "eventCategory": "Management",
        "eventRW": rw,
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000)),
        "acsRegion": "cn-hangzhou",
        "isGlobal": True,
        "apiVersion": "2020-07-06" if service == "Actiontrail" else "2019-08-15",
        "requestId": event_id[::-1],
        "serviceName": service,
        "sourceIpAddress": ip,
        "userAgent": USER_AGENT,
        "userIdentity": {
            "type": kind,
            "principalId": principal_id,
            "accountId": account_id,
            "accessKeyId": key_id,
            "userName": user_name,
        },
        "requestParameters": params,
        "requestParameterJson": json.dumps(params, sort_keys=True),
        "resourceType": ";".join(referenced),
        "resourceName": ";".join(",".join(v) for v in referenced.values()),
        "referencedResources": referenced,
        "recipientAccountId": account_id,
        "additionalEventData": {"scheme": "http"},
    }
    if console:
        event["userIdentity"]["sessionContext"] = {"attributes": {"mfaAuthenticated": "true"}}
    if rw == "Write":
        event["responseElements"] = {
            "RequestId": event["requestId"],
            "User": {"UserPrincipalName": target, "DisplayName": target.split("@")[0], "UserId": principal_id},
        }
    if error:
        event["errorCode"], event["errorMessage"] = error
    row = (
        seq,
        event_id,
        account_id,
        ms,
        name,
        rw,
        service,
        user_name,
        key_id,
        event["resourceType"][:64],
        event["resourceName"][:255],
        error[0] if error else None,
        ip,
        int(console),
        principal_id,
        event["eventType"],
        int(name in SENSITIVE),
        json.dumps(event, separators=(",", ":")),
    )
    return row, [(seq, t, n, account_id, ms) for t, names in referenced.items() for n in names]

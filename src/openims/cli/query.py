"""`openims events query`: SQL over an account's events as the operator (docs/query.md). Each query is an audited
GetAdvancedQueryResult call of the account's root identity, made by the CLI."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from openims.cli.tables import print_grid
from openims.config import ConfigError, Settings
from openims.errors import ApiError
from openims.runtime import open_runtime


def add_event_commands(events: Any) -> None:
    """`events query` under the `events` command group."""
    query = events.add_parser(
        "query",
        help="run a read-only SQL query over an account's events, as the table `events` (docs/query.md)",
    )
    query.add_argument("sql", help='e.g. "SELECT eventName, count(*) FROM events GROUP BY eventName"')
    query.add_argument("--account", help="account ID (default: the first account created)")
    shape = query.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="one JSON object per row")
    shape.add_argument("--csv", action="store_true", help="CSV with a header line")
    query.add_argument("--max", type=int, default=1000, help="rows to return, 1-10000 (default 1000)")
    query.set_defaults(func=cmd_events_query)


def cmd_events_query(settings: Settings, args: argparse.Namespace) -> int:
    from openims.cli import operator  # the action table: loaded only by the commands that run actions

    rt = open_runtime(settings)
    try:
        account = operator.account_id(rt, args.account)
        params = {"QuerySql": args.sql, "MaxResults": str(args.max)}
        out = operator.call(rt, account, "GetAdvancedQueryResult", params)
    except ApiError as exc:
        raise ConfigError(f"{exc.code}: {exc.message}") from None
    finally:
        rt.close()
    columns: list[str] = out["Columns"]
    rows: list[list[Any]] = out["Rows"]
    if args.json:
        for row in rows:
            print(json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False))
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        print_grid(columns, rows)
    if out["Truncated"]:
        print(f"(only the first {len(rows)} rows; raise --max for more)", file=sys.stderr)
    return 0

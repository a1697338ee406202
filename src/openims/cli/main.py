"""The `openims` command: init, serve, account create|list|set-password|set-mfa|unset-mfa, events lookup.
Thin: it parses arguments
and calls the same functions the server uses."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from openims import accounts, config, logs
from openims.cli import alerts, backup, integrity, lifecycle, query, trails
from openims.cli.tables import print_table
from openims.config import ConfigError, Settings
from openims.runtime import Runtime, has_schema, open_runtime
from openims.store.schema import accounts as accounts_table

DEFAULT_ALIAS = "openims"
# LookupEvents answers at most this many events a call.
MAX_PAGE = 50


DATA_DIR_HELP = f"data directory (default {config.DEFAULT_DATA_DIR}, or $OPENIMS_DATA_DIR)"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(getattr(args, "log_format", None) or "plain")
    try:
        settings = config.load(args.data_dir)
        if getattr(args, "log_format", None) is None and settings.log_format != "plain":
            logs.configure(settings.log_format)
        return int(args.func(settings, args) or 0)
    except ConfigError as exc:
        print(f"openims: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`openims events lookup | head`): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openims", description="Self-hosted IMS and ActionTrail API server.")
    parser.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="create the data dir, the first account and its root AccessKey")
    init.add_argument("--alias", default=DEFAULT_ALIAS, help="account alias; users are <name>@<alias>.onaliyun.com")
    init.add_argument("--json", action="store_true", help="print {AccountId, AccessKeyId, AccessKeySecret}")
    init.add_argument(
        "--set-password",
        action="store_true",
        help="also set the root console password (read from a prompt or stdin, as account set-password)",
    )
    init.set_defaults(func=cmd_init)

    serve = sub.add_parser("serve", help="serve the IMS and ActionTrail APIs on / and the console on /console")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8470)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="processes answering on the port (default: OPENIMS_WORKERS, else the number of cores)",
    )
    serve.add_argument(
        "--log-format", choices=("plain", "json"), default=None, help="plain lines (default) or one JSON object a line"
    )
    serve.set_defaults(func=cmd_serve)

    account = sub.add_parser("account", help="manage accounts").add_subparsers(dest="account_command", required=True)
    create = account.add_parser("create", help="create another, isolated account")
    create.add_argument("--alias", required=True)
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=cmd_account_create)
    listing = account.add_parser("list", help="list accounts")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_account_list)
    set_password = account.add_parser(
        "set-password", help="set the root console password (read from a prompt or stdin)"
    )
    set_password.add_argument("--account", help="account ID or alias (default: the first account created)")
    set_password.set_defaults(func=cmd_account_set_password)
    set_mfa = account.add_parser(
        "set-mfa",
        help="give the root identity a virtual MFA device: shows its key once, "
        "then binds it with two consecutive codes (prompt or two stdin lines)",
    )
    set_mfa.add_argument("--account", help="account ID or alias (default: the first account created)")
    set_mfa.set_defaults(func=cmd_account_set_mfa)
    unset_mfa = account.add_parser("unset-mfa", help="remove the root identity's MFA device")
    unset_mfa.add_argument("--account", help="account ID or alias (default: the first account created)")
    unset_mfa.set_defaults(func=cmd_account_unset_mfa)

    ev = sub.add_parser("events", help="query the audit trail").add_subparsers(dest="events_command", required=True)
    look = ev.add_parser("lookup", help="events of an account, newest first (filters as in LookupEvents)")
    look.add_argument("--account", help="account ID (default: the only account, or the first one created)")
    look.add_argument("--start", help="UTC start, YYYY-MM-DDThh:mm:ssZ (default 7 days ago)")
    look.add_argument("--end", help="UTC end (default now)")
    look.add_argument(
        "--attr",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="LookupAttribute, repeatable and ANDed: EventName=Delete*, User=..., ErrorCode=*, ...",
    )
    look.add_argument("--max", type=_positive, default=50, help="events to show (default 50)")
    look.add_argument("--forward", action="store_true", help="oldest first")
    look.add_argument("--json", action="store_true", help="one JSON event per line")
    look.set_defaults(func=cmd_events_lookup)
    integrity.add_event_commands(ev)
    query.add_event_commands(ev)
    lifecycle.add_event_commands(ev)

    trails.add_commands(sub)
    backup.add_commands(sub)
    integrity.add_commands(sub)
    alerts.add_commands(sub)
    _data_dir_anywhere(parser)
    return parser


def _data_dir_anywhere(parser: argparse.ArgumentParser) -> None:
    """Let every command take --data-dir after its name too (`openims serve --data-dir X`), not only before."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.add_argument("--data-dir", default=argparse.SUPPRESS, help=DATA_DIR_HELP)
                _data_dir_anywhere(command)


def _write_credentials(settings: Settings, new: accounts.NewAccount) -> Path:
    path = settings.credentials_path
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(
            {
                "AccountId": new.account_id,
                "AccountAlias": new.alias,
                "AccessKeyId": new.access_key_id,
                "AccessKeySecret": new.access_key_secret,
            },
            fh,
            indent=2,
        )
        fh.write("\n")
    os.chmod(path, 0o600)
    return path


def initialize(settings: Settings, alias: str) -> tuple[Runtime, accounts.NewAccount, Path]:
    if settings.credentials_path.exists():
        # Never replace the only copy of a root secret (for example a PostgreSQL deployment's, when
        # OPENIMS_DATABASE_URL was forgotten and the SQLite default looks empty).
        raise ConfigError(
            f"{settings.data_dir} is already initialized: its root credentials are in {settings.credentials_path} "
            "(if it belongs to a PostgreSQL deployment, set OPENIMS_DATABASE_URL)"
        )
    rt = open_runtime(settings, create=True)
    if accounts.list_accounts(rt):
        rt.close()
        raise ConfigError(
            f"{settings.data_dir} is already initialized; root credentials are in {settings.credentials_path}"
        )
    new = accounts.create_account(rt, alias)
    return rt, new, _write_credentials(settings, new)


def cmd_init(settings: Settings, args: argparse.Namespace) -> int:
    from openims.signin.root_account import check_root_password, set_root_password

    password = _new_password() if args.set_password else None
    if password is not None:
        check_root_password(password)  # before anything is created
    rt, new, path = initialize(settings, args.alias)
    try:
        if password is not None:
            set_root_password(rt, new.account_id, password)
    finally:
        rt.close()
    if args.json:
        print(
            json.dumps(
                {
                    "AccountId": new.account_id,
                    "AccessKeyId": new.access_key_id,
                    "AccessKeySecret": new.access_key_secret,
                }
            )
        )
    else:
        print(
            f"Initialized {settings.data_dir}\n  account {new.account_id} (alias {new.alias}, domain "
            f"{accounts.default_domain(new.alias)})\n"
            f"  root AccessKey {new.access_key_id}; its secret is in {path} (mode 0600)"
            + ("\n  root console password set" if password is not None else "")
        )
    return 0


def _is_empty(settings: Settings) -> bool:
    if not settings.is_sqlite:
        return not has_schema(settings)
    return not (settings.data_dir / "openims.db").exists() and not settings.credentials_path.exists()


def _invocation() -> str:
    """This command as it was typed (`.venv/bin/openims`), so that a printed command line works as shown."""
    return "python -m openims" if sys.argv[0].endswith("__main__.py") else sys.argv[0]


def _root_without_console_password(rt: Runtime) -> bool:
    with rt.db.read() as conn:
        return (
            conn.execute(select(accounts_table.c.id).where(accounts_table.c.password_hash.is_(None)).limit(1)).first()
            is not None
        )


def _refuse_unwritable(data_dir: Path) -> None:
    """`serve` writes its database (SQLite), delivered trail files and housekeeping there: refuse to start,
    saying why, rather than fail on the first call."""
    if not data_dir.exists():
        return
    probe = data_dir / f".openims-write-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"probe")
        probe.unlink()
    except OSError as exc:
        why = exc.strerror or exc.__class__.__name__
        raise ConfigError(f"cannot write to the data dir {data_dir} ({why}): serve needs to write there") from None


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from openims.server import serve

    if not settings.public_url:
        settings = replace(settings, public_url=f"http://{args.host}:{args.port}")
    _refuse_unwritable(settings.data_dir)
    if _is_empty(settings):
        rt, new, path = initialize(settings, DEFAULT_ALIAS)
        logs.announce(
            f"Initialized a new data dir {settings.data_dir}: account {new.account_id}, root AccessKey "
            f"{new.access_key_id}.\n"
            f"The root credentials are in {path} (mode 0600)."
        )
    else:
        rt = open_runtime(settings)
    logs.announce(
        f"OpenIMS serving on http://{args.host}:{args.port}/ (console: http://{args.host}:{args.port}/console)"
    )
    if _root_without_console_password(rt):
        logs.announce(
            "The root console password is not set yet: set it with "
            f"`{_invocation()} --data-dir {settings.data_dir} account set-password`."
        )
    rt.close()  # each worker opens its own (a forked process must not share connections)
    serve(settings, args.host, args.port, args.workers or settings.workers)
    return 0


def cmd_account_create(settings: Settings, args: argparse.Namespace) -> int:
    with _runtime(settings) as rt:
        new = accounts.create_account(rt, args.alias)
    out = {"AccountId": new.account_id, "AccessKeyId": new.access_key_id, "AccessKeySecret": new.access_key_secret}
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"Created account {new.account_id} (alias {new.alias})\n  root AccessKey {new.access_key_id}\n"
            f"  secret {new.access_key_secret}  (shown once: store it now)"
        )
    return 0


def cmd_account_list(settings: Settings, args: argparse.Namespace) -> int:
    with _runtime(settings) as rt:
        rows = accounts.list_accounts(rt)
    if args.json:
        print(json.dumps(rows))
    else:
        print_table(rows, ["AccountId", "Alias", "DefaultDomain", "CreateDate"])
    return 0


def _new_password() -> str:
    """The root console password, typed twice at a prompt, or one line of stdin."""
    from getpass import getpass

    if sys.stdin.isatty():
        password = getpass("New root console password: ")
        if getpass("Repeat it: ") != password:
            raise ConfigError("the two passwords differ")
        return password
    return sys.stdin.readline().rstrip("\r\n")


def cmd_account_set_password(settings: Settings, args: argparse.Namespace) -> int:
    from openims.signin.root_account import set_root_password

    password = _new_password()
    with _runtime(settings) as rt:
        account_id = set_root_password(rt, args.account, password)
    print(f"Set the root console password of account {account_id}.")
    return 0


def _write_private(path: Path, data: bytes) -> None:
    """Write a new 0600 file (replacing a leftover one; never through a symlink)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _read_codes() -> tuple[str, str]:
    if sys.stdin.isatty():
        first = input("First code: ")
        second = input("Next code (after the first one changes): ")
    else:
        first, second = sys.stdin.readline(), sys.stdin.readline()
    return "".join(first.split()), "".join(second.split())


def cmd_account_set_mfa(settings: Settings, args: argparse.Namespace) -> int:
    from openims.signin import root_mfa

    qr = None
    with _runtime(settings) as rt:
        try:
            enrollment = root_mfa.start(rt, args.account)
            qr = settings.data_dir / f"root-mfa-{enrollment.account_id}.png"
            _write_private(qr, enrollment.qr_png())
            # The key is shown here once: it is stored only sealed, and never printed or logged again.
            print(
                f"Root MFA for account {enrollment.account_id} (alias {enrollment.alias}). Add this key to an "
                f"authenticator app:\n  otpauth URI: {enrollment.uri}\n  Base32 seed: {enrollment.seed}\n"
                f"  QR code:     {qr} (mode 0600, deleted when this command ends)\n"
                "Then enter two consecutive codes it shows.",
                flush=True,
            )
            code1, code2 = _read_codes()
            root_mfa.bind(rt, enrollment, code1, code2)
        finally:
            if qr is not None:
                qr.unlink(missing_ok=True)
    print(f"Root MFA is set for account {enrollment.account_id}: console sign-in as root now asks for a code.")
    return 0


def cmd_account_unset_mfa(settings: Settings, args: argparse.Namespace) -> int:
    from openims.signin import root_mfa

    with _runtime(settings) as rt:
        account_id = root_mfa.unbind(rt, args.account)
    print(f"Removed the root MFA of account {account_id}.")
    return 0


def cmd_events_lookup(settings: Settings, args: argparse.Namespace) -> int:
    """LookupEvents as the operator: each page it reads is itself an audited LookupEvents call."""
    from openims.cli import operator  # the action table: loaded only by the commands that run actions

    params: dict[str, str] = {"Direction": "FORWARD" if args.forward else "BACKWARD"}
    for name, value in (("StartTime", args.start), ("EndTime", args.end)):
        if value:
            params[name] = value
    for n, item in enumerate(args.attr, 1):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--attr takes KEY=VALUE, got {item!r}")
        params[f"LookupAttribute.{n}.Key"], params[f"LookupAttribute.{n}.Value"] = key, value
    found: list[dict[str, Any]] = []
    with _runtime(settings) as rt:
        account = operator.account_id(rt, args.account)
        while len(found) < args.max:
            params["MaxResults"] = str(min(MAX_PAGE, args.max - len(found)))
            page = operator.call(rt, account, "LookupEvents", params)
            found += page["Events"]
            if not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]
    if args.json:
        for event in found:
            print(json.dumps(event, ensure_ascii=False))
        return 0
    rows = [
        {
            "Time": e["eventTime"],
            "Event": e["eventName"],
            "RW": e["eventRW"],
            "User": e["userIdentity"].get("userName", ""),
            "Resource": e.get("resourceName", ""),
            "SourceIp": e.get("sourceIpAddress", ""),
            "Error": e.get("errorCode", ""),
        }
        for e in found
    ]
    print_table(rows, ["Time", "Event", "RW", "User", "Resource", "SourceIp", "Error"])
    return 0


@contextmanager
def _runtime(settings: Settings) -> Iterator[Runtime]:
    """The data dir's runtime for one command; a refusal from the code it runs (ApiError) becomes the command's
    one-line error."""
    from openims.errors import ApiError

    rt = open_runtime(settings)
    try:
        yield rt
    except ApiError as exc:
        raise ConfigError(f"{exc.code}: {exc.message}") from None
    finally:
        rt.close()


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}")
    return value

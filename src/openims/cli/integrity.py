"""`openims events verify|prove|verify-proof` and `openims integrity public-key|rotate-key`: the tamper-evident
log from the shell (docs/integrity.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from openims import accounts, clock
from openims.audit import outside_api
from openims.config import ConfigError, Settings
from openims.runtime import open_runtime

PROVE_EVENT = "ProveEvent"
ROTATE_EVENT = "RotateLogSigningKey"


def add_event_commands(events: Any) -> None:
    """Add verify, prove and verify-proof to the `events` subparsers."""
    check = events.add_parser("verify", help="check every stored event against the signed log; exit 1 on tampering")
    check.add_argument("--account", help="one account (default: every account)")
    check.add_argument("--since", help="start at the newest checkpoint signed before this UTC time")
    check.add_argument(
        "--public-key", action="append", default=[], metavar="PEM", help="trust only these keys (repeatable)"
    )
    check.set_defaults(func=cmd_verify)
    prove = events.add_parser("prove", help="an inclusion proof of one event (or, --from-size, a consistency proof)")
    prove.add_argument("event_id", nargs="?", help="the eventId")
    prove.add_argument("--from-size", type=int, help="consistency proof from the checkpoint of this tree size")
    prove.add_argument("--account", help="with --from-size: the account")
    prove.set_defaults(func=cmd_prove)
    offline = events.add_parser("verify-proof", help="check a proof file offline, with the public key only")
    offline.add_argument("proof", help="a file written by `openims events prove`")
    offline.add_argument("--public-key", action="append", required=True, metavar="PEM")
    offline.set_defaults(func=cmd_verify_proof)


def add_commands(sub: Any) -> None:
    """Add `integrity public-key|rotate-key` to the `openims` subparsers."""
    group = sub.add_parser("integrity", help="the log's signing keys").add_subparsers(
        dest="integrity_command", required=True
    )
    group.add_parser("public-key", help="the current and earlier signing keys, PEM, with their validity").set_defaults(
        func=cmd_public_key
    )
    group.add_parser("rotate-key", help="retire the signing key and create the next").set_defaults(func=cmd_rotate)


def cmd_verify(settings: Settings, args: argparse.Namespace) -> int:
    from openims.integrity import verifier

    trusted = [key for path in args.public_key for key in public_keys(path)]
    since = _time(args.since) if args.since else None
    rt = open_runtime(settings)
    try:
        reports = verifier.verify(rt, args.account, since, trusted)
        # Reading the trail from the shell is on the record, as the console's verification is.
        with rt.db.transaction() as conn:
            for report in reports:
                response, tampered = verifier.outcome(report)
                params = {"Since": args.since} if args.since else {}
                outside_api.operator_event(
                    rt, conn, report.account_id, verifier.EVENT, tampered, params=params, response=response
                )
    finally:
        rt.close()
    failed = False
    for report in reports:
        verdict = "TAMPERED" if report.problems else "intact"
        print(f"account {report.account_id}: {report.events:,} events, {report.checkpoints:,} checkpoints: {verdict}")
        for line in report.problems:
            print(f"  {line}")
        for line in report.notes:
            print(f"  note: {line}")
        failed = failed or bool(report.problems)
    if not trusted:
        print("(signing keys read from the database: pass --public-key to pin the ones you trust)")
    return 1 if failed else 0


def cmd_prove(settings: Settings, args: argparse.Namespace) -> int:
    from openims.integrity import prover

    rt = open_runtime(settings)
    try:
        if args.from_size is not None:
            if not args.account:
                raise ConfigError("--from-size needs --account")
            doc = prover.consistency(rt, args.account, args.from_size)
            account, params = args.account, {"FromSize": str(args.from_size)}
        elif args.event_id:
            doc = prover.inclusion(rt, args.event_id)
            account, params = doc["checkpoint"]["accountId"], {"EventId": args.event_id}
        else:
            raise ConfigError("name an eventId, or --from-size N --account ID")
        # A proof carries events out of the trail: the operator's read is on the record.
        with rt.db.transaction() as conn:
            outside_api.operator_event(rt, conn, account, PROVE_EVENT, params=params)
    finally:
        rt.close()
    print(json.dumps(doc, ensure_ascii=False, indent=2))
    return 0


def cmd_verify_proof(settings: Settings, args: argparse.Namespace) -> int:
    from openims.integrity import proofs

    try:
        doc = json.loads(Path(args.proof).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the proof {args.proof}: {exc}") from None
    ok, why = proofs.verify_document(doc, [key for path in args.public_key for key in public_keys(path)])
    print(("valid: " if ok else "INVALID: ") + why)
    return 0 if ok else 1


def cmd_public_key(settings: Settings, args: argparse.Namespace) -> int:
    from openims.integrity import signing_keys

    rt = open_runtime(settings)
    try:
        with rt.db.read() as conn:
            keys = signing_keys.listed(conn)
    finally:
        rt.close()
    if not keys:
        print("(no signing key yet: the first checkpoint creates one)", file=sys.stderr)
    for key in keys:
        until = f"until {clock.iso(key.retired_ms)}" if key.retired_ms else "current"
        print(f"# key {key.key_id}: from {clock.iso(key.created_ms)}, {until}")
        print(key.pem.strip())
    return 0


def cmd_rotate(settings: Settings, args: argparse.Namespace) -> int:
    from openims.integrity import signing_keys

    rt = open_runtime(settings)
    try:
        key_id = signing_keys.rotate(rt)
        # Keys sign every account's log: each account's history shows the change.
        with rt.db.transaction() as conn:
            for account in accounts.list_accounts(rt):
                outside_api.operator_event(
                    rt, conn, account["AccountId"], ROTATE_EVENT, params={}, response={"KeyId": key_id}
                )
    finally:
        rt.close()
    print(f"New signing key {key_id}; earlier keys stay listed by `openims integrity public-key`.")
    return 0


def public_keys(path: str) -> list[Any]:
    """The Ed25519 public keys of a PEM file (as `openims integrity public-key` prints them)."""
    from openims.integrity import checkpoint

    try:
        return checkpoint.load_public_pems(Path(path).read_text())
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read the public key {path}: {exc}") from None


def _time(text: str) -> int:
    try:
        return clock.parse_iso(text)
    except ValueError:
        raise ConfigError(f"--since takes a UTC time such as 2026-12-01T00:00:00Z, got {text!r}") from None

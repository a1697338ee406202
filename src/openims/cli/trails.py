"""`openims trail create|update|list|status|start|stop|delete|verify` and `openims deliver`.

Trail commands run the same actions as the API, as the account's root identity, so each change is audited
like an API call (userAgent `openims-cli`). `openims deliver` runs trail deliverers on their own, for
deployments that scale delivery apart from `openims serve` (set `OPENIMS_SERVE_DELIVERY=false` there).
Wire into the main parser with `add_commands(subparsers)`.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from openims import config
from openims.cli.tables import print_table
from openims.config import ConfigError, Settings
from openims.errors import ApiError
from openims.runtime import open_runtime


def add_commands(sub: Any) -> None:
    """Add `trail ...` and `deliver` to the `openims` subparsers."""
    trail = sub.add_parser(
        "trail", help="manage ActionTrail trails (delivery of events to buckets, SLS, syslog, webhooks)"
    )
    tsub = trail.add_subparsers(dest="trail_command", required=True)

    create = tsub.add_parser("create", help="create a trail (it delivers once started: add --start)")
    _config_args(create, creating=True)
    create.add_argument("--start", action="store_true", help="start logging right away")
    create.set_defaults(func=cmd_trail_create)

    upd = tsub.add_parser("update", help="change a trail's filter or destinations")
    _config_args(upd, creating=False)
    upd.add_argument(
        "--remove",
        action="append",
        default=[],
        choices=("oss", "sls", "syslog", "webhook"),
        help="remove a destination (repeatable)",
    )
    upd.set_defaults(func=cmd_trail_update)

    listing = tsub.add_parser("list", help="list the account's trails")
    _account_args(listing)
    listing.set_defaults(func=cmd_trail_list)

    for name, helptext, func in (
        ("status", "show a trail's logging and delivery status", cmd_trail_status),
        ("start", "start logging: deliver events from now on", cmd_trail_start),
        ("stop", "stop logging", cmd_trail_stop),
        ("delete", "delete a trail", cmd_trail_delete),
    ):
        p = tsub.add_parser(name, help=helptext)
        p.add_argument("name")
        _account_args(p)
        p.set_defaults(func=func)

    check = tsub.add_parser(
        "verify",
        help="check delivered event files against the trail's signed digests, offline; exit 1 on any change",
    )
    where = check.add_mutually_exclusive_group(required=True)
    where.add_argument("--dir", type=Path, help="a bucket directory, e.g. <data dir>/buckets/<account>/<bucket>")
    where.add_argument("--bucket", help="an S3/OSS bucket")
    check.add_argument("--prefix", default="", help="only objects under this key prefix")
    check.add_argument(
        "--public-key", action="append", required=True, metavar="PEM", help="the log's public keys (repeatable)"
    )
    check.add_argument(
        "--endpoint-url", help="the S3 endpoint (default: the bucket's entry in the data dir's oss-buckets.json)"
    )
    check.add_argument("--region", help="the S3 signing region (default: the bucket's entry, else us-east-1)")
    check.set_defaults(func=cmd_trail_verify)

    deliver = sub.add_parser("deliver", help="run trail and alert deliverers without the API server")
    deliver.add_argument(
        "--workers", type=int, default=None, help="batches delivered at once (default 4, or $OPENIMS_DELIVERY_WORKERS)"
    )
    deliver.add_argument(
        "--once",
        action="store_true",
        help="deliver what is queued now, each batch tried once, then exit (exit status 1 if anything is left)",
    )
    deliver.set_defaults(func=cmd_deliver)


def _account_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--account", help="account ID (default: the first account created)")
    p.add_argument("--json", action="store_true", help="print the API response as JSON")


def _config_args(p: argparse.ArgumentParser, creating: bool) -> None:
    p.add_argument("name", help="trail name: 6 to 36 lowercase letters, digits, - and _, starting with a letter")
    _account_args(p)
    p.add_argument(
        "--event-rw",
        choices=("Read", "Write", "All"),
        help="events to deliver" + (" (default Write)" if creating else ""),
    )
    p.add_argument("--bucket", help="OSS/S3 bucket (OssBucketName)")
    p.add_argument("--prefix", help="object key prefix in the bucket (OssKeyPrefix)")
    p.add_argument("--sls-project-arn", help="acs:log:<region>:<account>:project/<name>; logstore actiontrail_<trail>")
    p.add_argument("--syslog", metavar="HOST:PORT", help="RFC 5424 syslog over TCP (OpenIMS extension)")
    p.add_argument("--syslog-tls", action="store_true", default=None, help="syslog over TLS (RFC 5425)")
    p.add_argument("--webhook", metavar="URL", help="HTTPS URL receiving signed JSON lines (OpenIMS extension)")
    p.add_argument(
        "--webhook-secret-file",
        type=Path,
        metavar="FILE",
        help="file holding the webhook's HMAC secret (16 to 256 characters)",
    )


def _config_params(args: argparse.Namespace) -> dict[str, str]:
    params = {
        "Name": args.name,
        "EventRW": args.event_rw,
        "OssBucketName": args.bucket,
        "OssKeyPrefix": args.prefix,
        "SlsProjectArn": args.sls_project_arn,
        "SyslogAddress": args.syslog,
        "WebhookUrl": args.webhook,
    }
    if args.syslog_tls:
        params["SyslogTls"] = "true"
    if args.webhook_secret_file:
        try:
            params["WebhookSecret"] = args.webhook_secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the webhook secret file: {exc.strerror}") from None
    return {k: v for k, v in params.items() if v is not None}


def _run(settings: Settings, args: argparse.Namespace, action_name: str, params: dict[str, str]) -> dict[str, Any]:
    from openims.cli import operator  # the action table: loaded only by the commands that run actions

    rt = open_runtime(settings)
    try:
        try:
            return operator.call(rt, operator.account_id(rt, args.account), action_name, params)
        except ApiError as exc:
            raise ConfigError(f"{exc.code}: {exc.message}") from None
    finally:
        rt.close()


def _print(args: argparse.Namespace, body: dict[str, Any], text: str) -> None:
    print(json.dumps(body, ensure_ascii=False, indent=2) if args.json else text)


def cmd_trail_create(settings: Settings, args: argparse.Namespace) -> int:
    body = _run(settings, args, "CreateTrail", _config_params(args))
    if args.start:
        _run(settings, args, "StartLogging", {"Name": args.name})
    _print(
        args,
        body,
        f"Created trail {body['Name']}"
        + (" (logging)" if args.start else f"; start it with `openims trail start {body['Name']}`"),
    )
    return 0


def cmd_trail_update(settings: Settings, args: argparse.Namespace) -> int:
    params = _config_params(args)
    if args.remove:
        params["RemoveTargets"] = ",".join(r.capitalize() for r in args.remove)
    body = _run(settings, args, "UpdateTrail", params)
    _print(args, body, f"Updated trail {body['Name']}")
    return 0


def cmd_trail_list(settings: Settings, args: argparse.Namespace) -> int:
    body = _run(settings, args, "DescribeTrails", {})
    if args.json:
        _print(args, body, "")
        return 0
    rows = []
    for t in body["TrailList"]:
        where = [
            f"oss://{t['OssBucketName']}/{t['OssKeyPrefix']}" if t["OssBucketName"] else "",
            t["SlsProjectArn"],
            ("syslog+tls://" if t.get("SyslogTls") else "syslog://") + t["SyslogAddress"]
            if t.get("SyslogAddress")
            else "",
            t.get("WebhookUrl", ""),
        ]
        rows.append(
            {
                "Name": t["Name"],
                "Status": t["Status"],
                "EventRW": t["EventRW"],
                "Destinations": " ".join(w for w in where if w),
                "Created": t["CreateTime"],
            }
        )
    print_table(rows, ["Name", "Status", "EventRW", "Destinations", "Created"])
    return 0


def cmd_trail_status(settings: Settings, args: argparse.Namespace) -> int:
    body = _run(settings, args, "GetTrailStatus", {"Name": args.name})
    lines = [
        (
            f"Trail {args.name}: {'logging' if body['IsLogging'] else 'not logging'}"
            f" (started {body['StartLoggingTime'] or '-'}, stopped {body['StopLoggingTime'] or '-'});"
            f" {body['PendingEvents']} events waiting"
        )
    ]
    for t in body["Targets"]:
        lines.append(
            f"  {t['Target']:8} {t['Status']:8} last delivery {t['LatestDeliveryTime'] or '-'}"
            + (
                f"; last error {t['LatestDeliveryErrorTime']}: {t['LatestDeliveryError']}"
                if t["LatestDeliveryError"]
                else ""
            )
        )
    _print(args, body, "\n".join(lines))
    return 0


def cmd_trail_start(settings: Settings, args: argparse.Namespace) -> int:
    body = _run(settings, args, "StartLogging", {"Name": args.name})
    _print(args, body, f"Trail {args.name} is logging")
    return 0


def cmd_trail_stop(settings: Settings, args: argparse.Namespace) -> int:
    body = _run(settings, args, "StopLogging", {"Name": args.name})
    _print(args, body, f"Trail {args.name} stopped logging")
    return 0


def cmd_trail_delete(settings: Settings, args: argparse.Namespace) -> int:
    body = _run(settings, args, "DeleteTrail", {"Name": args.name})
    _print(args, body, f"Deleted trail {args.name}")
    return 0


def cmd_trail_verify(settings: Settings, args: argparse.Namespace) -> int:
    from openims.cli.integrity import public_keys
    from openims.integrity import trail_verify

    keys = [key for path in args.public_key for key in public_keys(path)]
    objects: trail_verify.Objects
    if args.dir is not None:
        try:
            objects = trail_verify.DirectoryObjects(args.dir, args.prefix)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    else:
        objects = trail_verify.S3Objects(_s3_client(settings, args), args.bucket, args.prefix)
    try:
        report = trail_verify.verify(objects, keys)
    except Exception as exc:  # noqa: BLE001  (botocore's errors: the bucket cannot be listed or read)
        raise ConfigError(f"cannot read the delivered objects: {type(exc).__name__}: {exc}") from None
    if not (report.digests or report.files or report.problems):
        where = args.dir if args.dir is not None else f"bucket {args.bucket}"
        raise ConfigError(f"no event files or digests under {where} (prefix {args.prefix!r}): nothing to verify")
    verdict = "TAMPERED" if report.problems else "intact"
    print(
        f"{report.digests:,} digests, {report.files:,} event files, {report.events:,} events "
        f"({report.proven:,} proven in the signed log): {verdict}"
    )
    for line in report.chains:
        print(f"  {line}")
    for line in report.problems[:50]:
        print(f"  {line}")
    if len(report.problems) > 50:
        print(f"  ... and {len(report.problems) - 50} more")
    for line in report.notes:
        print(f"  note: {line}")
    return 1 if report.problems else 0


def _s3_client(settings: Settings, args: argparse.Namespace) -> Any:
    """A client for the bucket as the deliverer reaches it (its oss-buckets.json entry), with the options given
    overriding; without an entry, boto3's own credential chain (AWS_ACCESS_KEY_ID, ...) applies."""
    import boto3
    from botocore.config import Config

    from openims.delivery.destinations import destinations

    entries, _, _ = destinations(settings).buckets.get()
    entry = entries.get(args.bucket) or entries.get("*") or {}
    endpoint = args.endpoint_url or entry.get("endpoint_url")
    if not endpoint:
        raise ConfigError(f"no endpoint for bucket {args.bucket!r}: pass --endpoint-url, or verify its --dir")
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=entry.get("access_key_id"),
        aws_secret_access_key=entry.get("secret_access_key"),
        region_name=args.region or entry.get("region") or "us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )


def cmd_deliver(settings: Settings, args: argparse.Namespace) -> int:
    from openims.alerts.deliverer import AlertDeliverer
    from openims.delivery.deliverer import Deliverer

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    rt = open_runtime(settings)
    try:
        deliverer = Deliverer(rt, workers=args.workers)
        alerts = AlertDeliverer(rt)  # alerts go with trails: `serve` delivers both unless OPENIMS_SERVE_DELIVERY=false
        if args.once:
            alerts.drain()
            return 0 if deliverer.drain() else 1
        alert_thread = threading.Thread(target=alerts.run, args=(stop,), name="openims-alert-deliverer", daemon=True)
        alert_thread.start()
        deliverer.run(stop)
        alert_thread.join()
    finally:
        rt.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """These commands alone (`python -m openims.cli.trails --data-dir D trail list`), until the main CLI adds them."""
    parser = argparse.ArgumentParser(prog="openims")
    parser.add_argument("--data-dir", default=None)
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(config.load(args.data_dir), args) or 0)
    except ConfigError as exc:
        print(f"openims: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

"""Alert rules end to end: each preset fires exactly once for the call that triggers it, at a signed HTTPS webhook
and at a syslog receiver; an outage and a server restart delay an alert without losing it or changing its ID;
email reaches a local SMTP server (aiosmtpd); rules are managed through the API and the CLI, audited, and
counted per day by DescribeUserAlertCount."""

from __future__ import annotations

import email
import hashlib
import hmac
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from aiosmtpd.controller import Controller
from alibabacloud_actiontrail20200706 import models as at
from alibabacloud_ims20190815 import models as im
from alibabacloud_ram20150501 import models as rm
from Tea.exceptions import TeaException

from openims import clock
from openims.actions.registry import ACTIONTRAIL
from openims.audit import event as audit
from openims.principal import Principal
from tests.console.conftest import ROOT_PASSWORD, http_session, set_root_password
from tests.sink_support import SYSLOG_HEADER, Pki, make_pki, parse_octet_counted
from tests.support import Account, Server, free_port, start_server

VERSION = "2020-07-06"
SECRET = "alert-hook-secret-0123456789abcdef"
PASSWORD = "Alert-user-pass-2468"
DEADLINE_S = 60


# --- receivers ------------------------------------------------------------------------------------------------------


@dataclass
class Receivers:
    webhook_url: str = ""
    syslog_address: str = ""
    smtp_port: int = 0
    failing: bool = False
    hooks: list[dict[str, Any]] = field(default_factory=list)
    hook_ids: list[str] = field(default_factory=list)
    rejected: int = 0
    syslog: list[bytes] = field(default_factory=list)
    mails: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alerts_at_webhook(self, account_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [h for h in self.hooks if h["accountId"] == account_id]

    def alerts_at_syslog(self, account_id: str) -> list[dict[str, Any]]:
        found = []
        with self.lock:
            frames = list(self.syslog)
        for frame in frames:
            match = SYSLOG_HEADER.match(frame)
            assert match, frame[:80]
            assert match["msgid"] == b"OpenIMSAlert" and match["app"] == b"openims"
            if match["msg"].startswith(b"CEF:0|"):
                continue  # a CEF rule's (test_custom_rules... reads those)
            body = json.loads(match["msg"])
            if body["accountId"] == account_id:
                found.append(body)
        return found


def _webhook(pki: Pki, state: Receivers) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state.failing:
                self.send_response(503)
                self.end_headers()
                return
            ts, alert_id = self.headers["X-OpenIMS-Timestamp"], self.headers["X-OpenIMS-Alert-Id"]
            # What docs/alerts.md tells receivers to check.
            expected = (
                "sha256=" + hmac.new(SECRET.encode(), f"{ts}.{alert_id}.".encode() + body, hashlib.sha256).hexdigest()
            )
            if (
                not hmac.compare_digest(expected, self.headers["X-OpenIMS-Signature"])
                or abs(time.time() - int(ts)) > 300
                or self.headers["Content-Type"] != "application/json"
            ):
                state.rejected += 1
                self.send_response(401)
                self.end_headers()
                return
            alert = json.loads(body)
            assert alert["alertId"] == alert_id
            with state.lock:
                state.hooks.append(alert)
                state.hook_ids.append(alert_id)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = pki.server_context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state.webhook_url = f"https://127.0.0.1:{httpd.server_address[1]}/alerts"
    return httpd


def _syslog(state: Receivers) -> socket.socket:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_one(conn: socket.socket) -> None:
        data = b""
        with conn:
            while chunk := conn.recv(65536):
                data += chunk
        with state.lock:
            state.syslog.extend(parse_octet_counted(data))

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    state.syslog_address = f"127.0.0.1:{listener.getsockname()[1]}"
    return listener


class _Mailbox:
    def __init__(self, state: Receivers) -> None:
        self.state = state

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content)
        message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        with self.state.lock:
            self.state.mails.append(message)
        return "250 OK"


@pytest.fixture(scope="module")
def receivers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Receivers, Pki]]:
    pki = make_pki(tmp_path_factory.mktemp("alerts-pki"))
    state = Receivers()
    httpd = _webhook(pki, state)
    listener = _syslog(state)
    state.smtp_port = free_port()
    smtp = Controller(_Mailbox(state), hostname="127.0.0.1", port=state.smtp_port)
    smtp.start()
    try:
        yield state, pki
    finally:
        smtp.stop()
        listener.close()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def aserver(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, receivers: tuple[Receivers, Pki]
) -> Iterator[Server]:
    import os

    if request.param == "postgresql" and not os.environ.get("OPENIMS_TEST_DATABASE_URL"):
        pytest.skip("set OPENIMS_TEST_DATABASE_URL to run the PostgreSQL variant")
    state, pki = receivers
    env = {
        "OPENIMS_DELIVERY_CA_FILE": str(pki.ca_file),
        "OPENIMS_DELIVERY_MAX_BACKOFF_SECONDS": "2",
        # The receivers listen on loopback, which a rule may reach only when the operator allows it.
        "OPENIMS_EGRESS_ALLOW": "127.0.0.1",
        "OPENIMS_SMTP_URL": f"smtp://127.0.0.1:{state.smtp_port}",
        "OPENIMS_SMTP_FROM": "alerts@openims.test",
    }
    srv, cleanup = start_server(tmp_path_factory.mktemp(f"alerts-{request.param}"), request.param, env)
    try:
        yield srv
    finally:
        cleanup()


@pytest.fixture
def aacct(aserver: Server) -> Account:
    return aserver.new_account()


@pytest.fixture
def rx(receivers: tuple[Receivers, Pki]) -> Iterator[Receivers]:
    state = receivers[0]
    state.failing = False
    yield state
    state.failing = False


# --- helpers --------------------------------------------------------------------------------------------------------


def wait_for(what: str, check: Callable[[], bool], timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def create_rule(acct: Account, rx: Receivers, name: str, **params: str) -> dict[str, Any]:
    body = acct.call(
        "CreateAlertRule",
        {
            "RuleName": name,
            "WebhookUrl": rx.webhook_url,
            "WebhookSecret": SECRET,
            "SyslogAddress": rx.syslog_address,
            **params,
        },
        version=VERSION,
    )
    rule: dict[str, Any] = body["AlertRule"]
    return rule


def alerts_of(acct: Account, rule: str | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = acct.call("ListAlerts", {"RuleName": rule, "MaxResults": "100"}, version=VERSION)[
        "Alerts"
    ]
    return found


def delivered(acct: Account, rule: str, count: int = 1) -> list[dict[str, Any]]:
    """The rule's alerts once `count` of them exist and all are delivered."""
    found: list[dict[str, Any]] = []

    def check() -> bool:
        found[:] = alerts_of(acct, rule)
        return len(found) >= count and all(a["Status"] == "Delivered" for a in found)

    wait_for(f"{count} delivered alert(s) of {rule}", check)
    return found


def error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(TeaException) as info:
        call()
    return str(info.value.code)


def new_user(acct: Account, name: str, password: str | None = None) -> str:
    upn = acct.upn(name)
    ims = acct.ims()
    ims.create_user(im.CreateUserRequest(user_principal_name=upn, display_name=name))
    if password:
        ims.create_login_profile(im.CreateLoginProfileRequest(user_principal_name=upn, password=password))
    return upn


def console_signin(acct: Account, login: str, password: str) -> int:
    client = httpx.Client(base_url=acct.server.url, follow_redirects=False, timeout=30)
    form = client.get("/console/signin")
    token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post("/console/signin", data={"login": login, "password": password, "csrf_token": token}).status_code


# --- what triggers each preset (after calls that must not) ------------------------------------------------------------


def _root_signin(acct: Account) -> None:
    set_root_password(acct)
    assert console_signin(acct, acct.alias, "not-the-root-password") == 401
    http_session(acct, acct.alias, ROOT_PASSWORD)


def _signin_without_mfa(acct: Account) -> None:
    upn = new_user(acct, "walker", PASSWORD)
    assert console_signin(acct, upn, "wrong-Password-1") == 401
    http_session(acct, upn, PASSWORD)


def _trail_changed(acct: Account) -> None:
    t = acct.trail()
    t.create_trail(at.CreateTrailRequest(name="watched-trail", event_rw="All", oss_bucket_name="watched-bucket"))
    t.describe_trails(at.DescribeTrailsRequest())
    t.update_trail(at.UpdateTrailRequest(name="watched-trail", event_rw="Write"))


def _admin_attached(acct: Account) -> None:
    upn = new_user(acct, "admin")
    name = upn.split("@")[0]
    ram = acct.ram()
    ram.attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_type="System", policy_name="AliyunRAMReadOnlyAccess", user_name=name)
    )
    ram.attach_policy_to_user(
        rm.AttachPolicyToUserRequest(policy_type="System", policy_name="AdministratorAccess", user_name=name)
    )


def _root_key(acct: Account) -> None:
    upn = new_user(acct, "keyed")
    ims = acct.ims()
    ims.create_access_key(im.CreateAccessKeyRequest(user_principal_name=upn))  # a RAM user's: no alert
    ims.create_access_key(im.CreateAccessKeyRequest())


def _weakened(acct: Account) -> None:
    ims = acct.ims()
    ims.set_password_policy(im.SetPasswordPolicyRequest(minimum_password_length=12))  # stronger: no alert
    ims.set_password_policy(im.SetPasswordPolicyRequest(require_numbers=True))  # stronger again
    ims.set_password_policy(im.SetPasswordPolicyRequest(minimum_password_length=10))


def _mfa_unbound(acct: Account) -> None:
    upn = new_user(acct, "phone")
    ims = acct.ims()
    device = ims.create_virtual_mfadevice(im.CreateVirtualMFADeviceRequest(virtual_mfadevice_name="phone")).body
    serial, seed = device.virtual_mfadevice.serial_number, device.virtual_mfadevice.base_32string_seed
    otp, now = pyotp.TOTP(seed), time.time()
    ims.bind_mfadevice(
        im.BindMFADeviceRequest(
            user_principal_name=upn,
            serial_number=serial,
            authentication_code_1=otp.at(now - 30),
            authentication_code_2=otp.at(now),
        )
    )
    ims.unbind_mfadevice(im.UnbindMFADeviceRequest(user_principal_name=upn))


def _no_permission_burst(acct: Account) -> None:
    upn = new_user(acct, "intruder")
    key = acct.ims().create_access_key(im.CreateAccessKeyRequest(user_principal_name=upn)).body.access_key
    ims = acct.ims(key.access_key_id, key.access_key_secret)
    for _ in range(12):  # the 10th fires; the 11th and 12th fall in the same window
        assert error_code(lambda: ims.list_users(im.ListUsersRequest())) == "NoPermission"


def _signin_failure_burst(acct: Account) -> None:
    upn = new_user(acct, "guessed", PASSWORD)
    for _ in range(7):  # the 5th fires; the rest fall in the same window
        assert console_signin(acct, upn, "Guess-password-1") == 401


TRIGGERS: dict[str, Callable[[Account], None]] = {
    "RootSignin": _root_signin,
    "SigninWithoutMFA": _signin_without_mfa,
    "TrailChanged": _trail_changed,
    "AdministratorAccessAttached": _admin_attached,
    "RootAccessKeyCreated": _root_key,
    "SecuritySettingsWeakened": _weakened,
    "MFAUnbound": _mfa_unbound,
    "NoPermissionBurst": _no_permission_burst,
    "SigninFailureBurst": _signin_failure_burst,
}
TRIGGERING_EVENT = {
    "RootSignin": "ConsoleSignin",
    "SigninWithoutMFA": "ConsoleSignin",
    "TrailChanged": "UpdateTrail",
    "AdministratorAccessAttached": "AttachPolicyToUser",
    "RootAccessKeyCreated": "CreateAccessKey",
    "SecuritySettingsWeakened": "SetPasswordPolicy",
    "MFAUnbound": "UnbindMFADevice",
    "NoPermissionBurst": "ListUsers",
    "SigninFailureBurst": "ConsoleSignin",
}


def test_the_triggers_cover_every_preset(aacct: Account) -> None:
    listed = aacct.call("ListAlertPresets", version=VERSION)["Presets"]
    assert {p["Preset"] for p in listed} == set(TRIGGERS)


@pytest.mark.parametrize("preset", sorted(TRIGGERS))
def test_each_preset_fires_exactly_once_to_webhook_and_syslog(aacct: Account, rx: Receivers, preset: str) -> None:
    create_rule(aacct, rx, f"on-{preset}", Preset=preset)
    TRIGGERS[preset](aacct)
    [alert] = delivered(aacct, f"on-{preset}")
    assert alert["DeliveredTo"] == ["Webhook", "Syslog"] and alert["Attempts"] == 1 and alert["LastError"] == ""
    [hooked] = rx.alerts_at_webhook(aacct.account_id)
    [logged] = rx.alerts_at_syslog(aacct.account_id)
    assert hooked == logged and hooked["alertId"] == alert["AlertId"]
    assert hooked["preset"] == preset and hooked["ruleName"] == f"on-{preset}" and hooked["test"] is False
    event = hooked["event"]
    assert event["eventName"] == TRIGGERING_EVENT[preset] and event["eventId"] == alert["EventId"]
    # The event in the alert is the stored event, as LookupEvents returns it.
    assert event in aacct.events(EventId=event["eventId"])
    if preset.endswith("Burst"):
        assert hooked["threshold"]["count"] == hooked["threshold"]["threshold"]
    # Nothing else arrives later (the deliverer is idle once the alert is finished).
    time.sleep(1.0)
    assert len(rx.alerts_at_webhook(aacct.account_id)) == 1 and len(rx.alerts_at_syslog(aacct.account_id)) == 1
    assert len(alerts_of(aacct)) == 1
    assert rx.rejected == 0


def test_an_outage_and_a_restart_delay_an_alert_without_losing_it(aacct: Account, rx: Receivers) -> None:
    server = aacct.server
    create_rule(aacct, rx, "root-keys", Preset="RootAccessKeyCreated")
    rx.failing = True
    aacct.ims().create_access_key(im.CreateAccessKeyRequest())

    def retrying() -> bool:
        found = alerts_of(aacct, "root-keys")
        return bool(found) and found[0]["Status"] == "Retrying" and found[0]["Attempts"] >= 2

    wait_for("the alert to be retried", retrying)
    [pending] = alerts_of(aacct, "root-keys")
    assert pending["DeliveredTo"] == ["Syslog"] and "webhook" in pending["LastError"] and "503" in pending["LastError"]
    listed = aacct.call("ListAlertRules", version=VERSION)["AlertRules"][0]
    assert listed["LastAlert"]["AlertId"] == pending["AlertId"] and listed["LastAlert"]["Status"] == "Retrying"
    server.stop()
    server.start()
    rx.failing = False
    [done] = delivered(aacct, "root-keys")
    assert done["AlertId"] == pending["AlertId"] and done["Attempts"] > pending["Attempts"]
    [hooked] = rx.alerts_at_webhook(aacct.account_id)
    assert hooked["alertId"] == pending["AlertId"]
    # Syslog had it at the first attempt and is not sent it again.
    assert [a["alertId"] for a in rx.alerts_at_syslog(aacct.account_id)] == [pending["AlertId"]]


def test_email_reaches_the_operators_smtp_server(aacct: Account, rx: Receivers) -> None:
    body = aacct.call(
        "CreateAlertRule",
        {"RuleName": "mail-me", "Preset": "TrailChanged", "EmailTo": "secops@example.com,oncall@example.com"},
        version=VERSION,
    )
    assert body["AlertRule"]["Destinations"] == ["Email"]
    _trail_changed(aacct)
    [alert] = delivered(aacct, "mail-me")
    [mail] = [m for m in rx.mails if m["X-OpenIMS-Alert-Id"] == alert["AlertId"]]
    assert mail["From"] == "alerts@openims.test" and mail["Message-ID"] == f"<{alert['AlertId']}@openims>"
    assert mail["X-Envelope-To"] == "secops@example.com,oncall@example.com"
    assert "A trail was stopped, deleted or changed" in mail["Subject"] and "UpdateTrail" in mail["Subject"]
    text = mail.get_payload(decode=True).decode()
    sent = json.loads(text[text.index("{") :])
    assert sent["alertId"] == alert["AlertId"] and sent["event"]["eventName"] == "UpdateTrail"


def test_custom_rules_thresholds_cef_and_insights(aacct: Account, rx: Receivers) -> None:
    # Keys are ANDed, a repeated key's values are alternatives, `*` is a prefix, as in LookupEvents.
    create_rule(
        aacct,
        rx,
        "user-deletes",
        **{
            "LookupAttribute.1.Key": "EventName",
            "LookupAttribute.1.Value": "DeleteUser",
            "LookupAttribute.2.Key": "EventName",
            "LookupAttribute.2.Value": "DeleteGroup*",
            "LookupAttribute.3.Key": "Result",
            "LookupAttribute.3.Value": "Success",
            "SyslogFormat": "cef",
            "Severity": "low",
        },
    )
    ims = acct_ims = aacct.ims()
    upn = new_user(aacct, "leaver")
    assert error_code(lambda: ims.delete_user(im.DeleteUserRequest(user_principal_name=aacct.upn("nobody")))) != ""
    acct_ims.delete_user(im.DeleteUserRequest(user_principal_name=upn))
    [alert] = delivered(aacct, "user-deletes")
    with rx.lock:
        cef = [f for f in rx.syslog if alert["AlertId"].encode() in f]
    assert len(cef) == 1
    match = SYSLOG_HEADER.match(cef[0])
    assert match and match["pri"] == b"85" and match["msg"].startswith(b"CEF:0|OpenIMS|OpenIMS|1|user-deletes|")
    assert b"act=DeleteUser" in match["msg"] and f"externalId={alert['AlertId']}".encode() in match["msg"]

    # An insight rule: insight events are recorded events of eventType ActionTrailInsight.
    create_rule(aacct, rx, "new-ips", InsightType="IpInsight")
    for state in ("Start", "End"):
        event = audit.build(
            name="IpInsight",
            service=ACTIONTRAIL,
            rw="Read",
            principal=Principal(
                account_id=aacct.account_id, kind="root", principal_id=aacct.account_id, user_name="root"
            ),
            origin=audit.Origin("203.0.113.9", "openims-insights"),
            request_id="insight",
            region="cn-hangzhou",
        )
        event.update(eventType="ActionTrailInsight", insightDetails={"state": state, "insightType": "IpInsight"})
        with aacct.server.runtime.db.transaction() as conn:
            audit.record(conn, event)
    [insight] = delivered(aacct, "new-ips")
    [hooked] = [h for h in rx.alerts_at_webhook(aacct.account_id) if h["alertId"] == insight["AlertId"]]
    assert hooked["event"]["insightDetails"]["state"] == "Start"


def test_rules_are_validated_audited_and_counted(aacct: Account, rx: Receivers) -> None:
    def refused(**params: str) -> str:
        return error_code(lambda: aacct.call("CreateAlertRule", {"RuleName": "bad", **params}, version=VERSION))

    hook = {"WebhookUrl": rx.webhook_url, "WebhookSecret": SECRET}
    assert refused(Preset="RootSignin") == "InvalidParameterCombination"  # no destination
    assert refused(**hook) == "InvalidParameterCombination"  # no condition
    assert refused(Preset="Nope", **hook) == "InvalidParameter.Preset"
    both = {"Preset": "RootSignin", "LookupAttribute.1.Key": "EventName", "LookupAttribute.1.Value": "X"}
    assert refused(**both, **hook) == "InvalidParameterCombination"
    odd = {"LookupAttribute.1.Key": "Colour", "LookupAttribute.1.Value": "red"}
    assert refused(**odd, **hook) == "InvalidParameter.LookupAttribute.Key"
    unbounded = {"LookupAttribute.1.Key": "ErrorCode", "LookupAttribute.1.Value": "*", "Threshold": "5"}
    assert refused(**unbounded, **hook) == "InvalidParameterCombination"
    assert refused(Preset="RootSignin", WebhookUrl="http://127.0.0.1/x", WebhookSecret=SECRET) == (
        "InvalidParameter.WebhookUrl.Format"
    )
    assert refused(Preset="RootSignin", WebhookUrl=rx.webhook_url) == "MissingWebhookSecret"
    assert not aacct.call("ListAlertRules", version=VERSION)["AlertRules"]

    create_rule(aacct, rx, "weak", Preset="SecuritySettingsWeakened")
    assert error_code(lambda: create_rule(aacct, rx, "weak", Preset="MFAUnbound")) == "EntityAlreadyExists.AlertRule"
    updated = aacct.call(
        "UpdateAlertRule", {"RuleName": "weak", "Enabled": "false", "RemoveDestinations": "Syslog"}, version=VERSION
    )["AlertRule"]
    assert updated["Enabled"] is False and updated["Destinations"] == ["Webhook"]
    _weakened(aacct)  # a disabled rule does not fire
    aacct.call("UpdateAlertRule", {"RuleName": "weak", "Enabled": "true"}, version=VERSION)
    aacct.ims().set_password_policy(im.SetPasswordPolicyRequest(minimum_password_length=8))
    [alert] = delivered(aacct, "weak")
    test_id = aacct.call("TestAlertRule", {"RuleName": "weak"}, version=VERSION)["AlertId"]
    wait_for("the test alert", lambda: any(h["alertId"] == test_id for h in rx.alerts_at_webhook(aacct.account_id)))
    [tested] = [h for h in rx.alerts_at_webhook(aacct.account_id) if h["alertId"] == test_id]
    assert tested["test"] is True and tested["event"] is None
    aacct.call("DeleteAlertRule", {"RuleName": "weak"}, version=VERSION)
    assert error_code(lambda: aacct.call("DeleteAlertRule", {"RuleName": "weak"}, version=VERSION)) == (
        "EntityNotExist.AlertRule"
    )
    # Past alerts stay listed after their rule is gone.
    assert {a["AlertId"] for a in alerts_of(aacct)} == {alert["AlertId"], test_id}

    for name in ("CreateAlertRule", "UpdateAlertRule", "TestAlertRule", "DeleteAlertRule"):
        found = aacct.events(EventName=name)
        assert found and all(e["resourceName"] in ("weak", "bad", "") for e in found), name
    created = aacct.events(EventName="CreateAlertRule", ResourceName="weak")
    assert SECRET not in json.dumps(aacct.events(EventName="CreateAlertRule"))
    assert created[-1]["requestParameters"]["WebhookSecret"] == "******"

    counts = aacct.trail().describe_user_alert_count(at.DescribeUserAlertCountRequest()).body.data
    today = clock.iso(clock.now_ms())[:10]
    assert len(counts.dates) == 7 and counts.dates[-1] == today
    assert counts.counts[-1] == 1 and sum(counts.counts) == 1  # the test alert is not counted
    one_day = (
        aacct.trail()
        .describe_user_alert_count(at.DescribeUserAlertCountRequest(start_date=today, end_date=today))
        .body.data
    )
    assert one_day.dates == [today] and one_day.counts == [1]
    bad = at.DescribeUserAlertCountRequest(start_date=today, end_date="2020-01-01")
    assert error_code(lambda: aacct.trail().describe_user_alert_count(bad)) == "InvalidParameterCombination"


def test_the_cli_manages_rules_as_the_api_does(aacct: Account, rx: Receivers, tmp_path: Path) -> None:
    server = aacct.server
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")

    def openims(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "openims", "--data-dir", str(server.data_dir), "alerts", *args]
        return subprocess.run(
            [*command, "--account", aacct.account_id],
            check=False,
            capture_output=True,
            text=True,
            env=server.env,
            timeout=120,
        )

    made = openims(
        "create", "root-in", "--preset", "RootSignin", "--webhook", rx.webhook_url, "--webhook-secret-file",
        str(secret_file), "--syslog", rx.syslog_address, "--syslog-format", "cef",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "Created alert rule root-in (preset RootSignin) -> Webhook, Syslog" in made.stdout
    listed = openims("list")
    assert "root-in" in listed.stdout and "preset RootSignin" in listed.stdout
    tested = openims("test", "root-in")
    assert tested.returncode == 0 and "delivered to Webhook, Syslog" in tested.stdout, tested.stdout + tested.stderr
    bad = openims(
        "create", "oops", "--attr", "Colour=red", "--webhook", rx.webhook_url, "--webhook-secret-file", str(secret_file)
    )
    assert bad.returncode != 0 and "InvalidParameter.LookupAttribute.Key" in bad.stderr
    assert openims("delete", "root-in").returncode == 0
    made_event = aacct.events(EventName="CreateAlertRule")
    assert {e["userAgent"] for e in made_event} == {"openims-cli"}
    assert {e.get("errorCode") for e in made_event} == {None, "InvalidParameter.LookupAttribute.Key"}
    assert aacct.events(EventName="DeleteAlertRule")[0]["userAgent"] == "openims-cli"

"""The notification transports (docs/notifications.md) against real servers on loopback: aiosmtpd for email,
a local HTTP receiver for Slack and webhooks. No mocks: what arrives is what a real receiver would get."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from alerts.notifications.messages import DeliveryError, NotificationMessage
from alerts.notifications.transports import (
    TRANSPORTS,
    EmailTransport,
    SlackTransport,
    WebhookTransport,
    parse_retry_after,
    transport_for,
)
from tests.receivers import Reply, start_http_receiver, start_smtp_receiver
from tests.servers import free_port

INCIDENT_URL = "https://analytics.example.com/admin/alerts/alertincident/7/change/"
TRIGGERED = datetime(2025, 3, 4, 10, 15, tzinfo=UTC)
RESOLVED = datetime(2025, 3, 4, 10, 42, tzinfo=UTC)
SECRET = "whsec-0123456789abcdef"
SLACK_PATH = "/services/T000/B000/XXXXsecretTOKENxxxx"


def firing(**changes) -> NotificationMessage:
    fields = dict(kind="firing", rule_name="API latency p95 high", severity="critical", status="open",
                  condition="p95 latency > 500", threshold=500.0, value=812.5, group={"host": "h1", "region": "eu"},
                  incident_id=7, incident_url=INCIDENT_URL, org="acme", triggered_at=TRIGGERED,
                  notification_id=42)
    fields.update(changes)
    return NotificationMessage(**fields)


def resolved(**changes) -> NotificationMessage:
    return firing(kind="resolved", status="resolved", value=120.0, resolved_at=RESOLVED, **changes)


@pytest.fixture
def http_receiver():
    started = []

    def start(statuses=(), default=200):
        server = start_http_receiver(statuses=list(statuses), default=default)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def smtp(settings):
    started = []

    def start(**refusals):
        server = start_smtp_receiver(**refusals)
        started.append(server)
        use_smtp(settings, server.port)
        return server

    yield start
    for server in started:
        server.stop()


def use_smtp(settings, port):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "ToolWeaver Analytics <alerts@example.test>"


def delivery_error(send) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        send()
    return caught.value


# --- Registry ----------------------------------------------------------------------------------------


def test_one_transport_per_channel_kind():
    assert set(TRANSPORTS) == {"email", "slack", "webhook"}
    assert isinstance(transport_for("email"), EmailTransport)
    assert isinstance(transport_for("slack"), SlackTransport)
    assert isinstance(transport_for("webhook"), WebhookTransport)
    error = delivery_error(lambda: transport_for("pager"))
    assert error.permanent and "pager" in str(error)


# --- Email -------------------------------------------------------------------------------------------


def test_firing_and_resolved_emails_arrive_with_subject_recipients_and_content(smtp):
    server = smtp()
    to = {"to": ["ops@example.com", "oncall@example.com"]}
    EmailTransport().send(to, "", firing(), timeout=5)
    EmailTransport().send(to, "", resolved(), timeout=5)

    assert len(server.messages) == 2
    fired, done = server.messages
    assert fired.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    assert fired.mail_from == "alerts@example.test"
    assert fired.subject == "[FIRING] critical: API latency p95 high (host=h1, region=eu)"
    assert str(fired.message["To"]) == "ops@example.com, oncall@example.com"
    assert fired.message["Auto-Submitted"] == "auto-generated"
    text = fired.text()
    assert "p95 latency > 500: value 812.5, threshold 500 at 2025-03-04T10:15:00+00:00" in text
    assert "Group: host=h1, region=eu" in text
    assert "Org: acme" in text
    assert f"Incident: {INCIDENT_URL}" in text
    assert "Resolved at" not in text
    html = fired.html()
    assert "<h2" in html and "[FIRING] critical: API latency p95 high" in html
    assert f'href="{INCIDENT_URL}"' in html

    assert done.subject == "[RESOLVED] critical: API latency p95 high (host=h1, region=eu)"
    assert "Resolved at: 2025-03-04T10:42:00+00:00" in done.text()
    assert "value 120, threshold 500 at 2025-03-04T10:42:00+00:00" in done.text()


def test_email_html_escapes_what_the_rule_says(smtp):
    server = smtp()
    EmailTransport().send({"to": ["ops@example.com"]}, "", firing(rule_name="<b>x</b> & y"), timeout=5)
    html = server.messages[0].html()
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in html and "<b>x</b>" not in html


def test_recipients_refused_with_550_is_permanent(smtp):
    smtp(refuse_rcpt="550 5.1.1 No such user here")
    error = delivery_error(lambda: EmailTransport().send({"to": ["nobody@example.com"]}, "", firing(), timeout=5))
    assert error.permanent
    assert "550" in str(error) and "nobody@example.com" in str(error)


def test_recipients_refused_with_450_is_temporary(smtp):
    smtp(refuse_rcpt="450 4.2.1 Mailbox busy, try later")
    error = delivery_error(lambda: EmailTransport().send({"to": ["ops@example.com"]}, "", firing(), timeout=5))
    assert not error.permanent and "450" in str(error)


def test_message_refused_with_554_is_permanent(smtp):
    smtp(refuse_data="554 5.6.0 Message rejected")
    error = delivery_error(lambda: EmailTransport().send({"to": ["ops@example.com"]}, "", firing(), timeout=5))
    assert error.permanent and "554" in str(error)


def test_a_closed_smtp_port_is_temporary(settings):
    use_smtp(settings, free_port())  # nothing listens there
    error = delivery_error(lambda: EmailTransport().send({"to": ["ops@example.com"]}, "", firing(), timeout=2))
    assert not error.permanent
    assert "could not reach the mail server" in str(error)


@pytest.mark.parametrize("config", [{}, {"to": []}, {"to": [""]}, {"to": [3]}, {"url": "x"}])
def test_an_email_channel_without_recipients_is_permanent(config, settings):
    use_smtp(settings, free_port())
    assert delivery_error(lambda: EmailTransport().send(config, "", firing(), timeout=1)).permanent


# --- Webhook -----------------------------------------------------------------------------------------


def expected_signature(secret: str, request) -> str:
    signed = request.headers["x-toolweaver-timestamp"].encode() + b"." + request.body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def test_the_webhook_body_has_the_documented_shape(http_receiver):
    server = http_receiver()
    before = int(time.time())
    WebhookTransport().send({"url": server.url}, SECRET, firing(), timeout=5)

    (request,) = server.requests
    assert request.method == "POST" and request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "ToolWeaver-Analytics"
    timestamp = int(request.headers["x-toolweaver-timestamp"])
    assert before <= timestamp <= int(time.time())
    body = request.json()
    assert body == {
        "version": 1,
        "kind": "firing",
        "title": "[FIRING] critical: API latency p95 high (host=h1, region=eu)",
        "summary": "p95 latency > 500: value 812.5, threshold 500 at 2025-03-04T10:15:00+00:00",
        "rule": "API latency p95 high",
        "severity": "critical",
        "status": "open",
        "condition": "p95 latency > 500",
        "threshold": 500.0,
        "value": 812.5,
        "group": {"host": "h1", "region": "eu"},
        "incident": {"id": 7, "url": INCIDENT_URL, "triggered_at": "2025-03-04T10:15:00+00:00",
                     "resolved_at": None},
        "org": "acme",
        "notification_id": 42,
        "grouped": [],
        "sent_at": datetime.fromtimestamp(timestamp, UTC).isoformat(),
    }


def test_the_signature_verifies_with_the_channels_secret_and_not_with_another(http_receiver):
    server = http_receiver()
    WebhookTransport().send({"url": server.url}, SECRET, resolved(), timeout=5)
    (request,) = server.requests
    signature = request.headers["x-toolweaver-signature"]
    assert signature.startswith("sha256=")
    assert hmac.compare_digest(signature, expected_signature(SECRET, request))
    assert not hmac.compare_digest(signature, expected_signature("another-secret", request))
    # The signature covers the body: a changed body does not verify.
    tampered = type(request)(request.method, request.path, request.headers,
                             request.body.replace(b'"resolved"', b'"firing"'), request.status)
    assert not hmac.compare_digest(signature, expected_signature(SECRET, tampered))
    body = request.json()
    assert body["kind"] == "resolved" and body["incident"]["resolved_at"] == "2025-03-04T10:42:00+00:00"


def test_without_a_secret_there_is_no_signature_header(http_receiver):
    server = http_receiver()
    WebhookTransport().send({"url": server.url}, "", firing(), timeout=5)
    (request,) = server.requests
    assert "x-toolweaver-signature" not in request.headers
    assert "x-toolweaver-timestamp" in request.headers


def test_a_test_message_and_non_finite_numbers_are_valid_json(http_receiver):
    server = http_receiver()
    message = NotificationMessage(kind="test", rule_name="test notification", severity="info", status="test",
                                  condition="this channel works", threshold=float("nan"), value=None)
    WebhookTransport().send({"url": server.url}, SECRET, message, timeout=5)
    body = json.loads(server.requests[0].body)  # strict JSON: no NaN
    assert body["kind"] == "test" and body["threshold"] is None and body["value"] is None
    assert body["incident"] == {"id": None, "url": None, "triggered_at": None, "resolved_at": None}
    assert body["org"] is None and body["notification_id"] is None


def test_a_500_is_temporary(http_receiver):
    server = http_receiver([500])
    error = delivery_error(lambda: WebhookTransport().send({"url": server.url}, SECRET, firing(), timeout=5))
    assert not error.permanent and error.retry_after is None
    assert "HTTP 500" in str(error)


def test_a_429_with_retry_after_is_temporary_and_keeps_the_delay(http_receiver):
    server = http_receiver([Reply(429, headers={"Retry-After": "120"})])
    error = delivery_error(lambda: WebhookTransport().send({"url": server.url}, SECRET, firing(), timeout=5))
    assert not error.permanent and error.retry_after == 120.0


def test_a_503_with_an_http_date_retry_after(http_receiver):
    later = format_datetime(datetime.fromtimestamp(time.time() + 300, UTC), usegmt=True)
    server = http_receiver([Reply(503, headers={"Retry-After": later})])
    error = delivery_error(lambda: WebhookTransport().send({"url": server.url}, SECRET, firing(), timeout=5))
    assert not error.permanent and 290 <= error.retry_after <= 300


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_other_4xx_are_permanent(http_receiver, status):
    server = http_receiver([status])
    error = delivery_error(lambda: WebhookTransport().send({"url": server.url}, SECRET, firing(), timeout=5))
    assert error.permanent and f"HTTP {status}" in str(error)


def test_a_redirect_is_not_followed_and_is_permanent(http_receiver):
    target = http_receiver()
    server = http_receiver([Reply(302, headers={"Location": target.url})])
    error = delivery_error(lambda: WebhookTransport().send({"url": server.url}, SECRET, firing(), timeout=5))
    assert error.permanent and "redirect" in str(error)
    assert not target.requests


def test_a_receiver_slower_than_the_timeout_is_temporary(http_receiver):
    server = http_receiver([Reply(200, delay=5)])
    started = time.monotonic()
    error = delivery_error(lambda: WebhookTransport().send({"url": server.url}, SECRET, firing(), timeout=0.5))
    assert time.monotonic() - started < 3
    assert not error.permanent and "no answer within 0.5 s" in str(error)
    assert len(server.requests) == 1


def test_a_closed_port_is_temporary():
    url = f"http://127.0.0.1:{free_port()}/hook"
    error = delivery_error(lambda: WebhookTransport().send({"url": url}, SECRET, firing(), timeout=2))
    assert not error.permanent and "connection failed" in str(error)


@pytest.mark.parametrize("config", [{}, {"url": ""}, {"url": "ftp://example.com/x"}, {"url": "not a url"}])
def test_a_webhook_without_a_usable_url_is_permanent(config):
    assert delivery_error(lambda: WebhookTransport().send(config, SECRET, firing(), timeout=1)).permanent


def test_a_receiver_failing_three_times_then_accepting_gets_one_success(http_receiver):
    server = http_receiver([500, 500, 500, 200])
    outcomes = []
    for _ in range(4):
        try:
            WebhookTransport().send({"url": server.url}, SECRET, firing(), timeout=5)
            outcomes.append("sent")
        except DeliveryError as error:
            outcomes.append("permanent" if error.permanent else "temporary")
    assert outcomes == ["temporary", "temporary", "temporary", "sent"]
    assert [request.status for request in server.requests] == [500, 500, 500, 200]


def test_webhook_errors_show_only_scheme_and_host_never_the_path_query_or_secret(http_receiver):
    path = "/hooks/private-token-123?key=query-secret-456"
    # A receiver that echoes what it was sent, secrets included, in its error page.
    echo = f"bad request to {path} signed with {SECRET}".encode()
    server = http_receiver([Reply(400, body=echo), 500, Reply(200, delay=3)])
    url = server.base_url + path
    errors = [delivery_error(lambda: WebhookTransport().send({"url": url}, SECRET, firing(), timeout=0.5))
              for _ in range(3)]
    closed = f"http://127.0.0.1:{free_port()}{path}"
    errors.append(delivery_error(lambda: WebhookTransport().send({"url": closed}, SECRET, firing(), timeout=1)))
    for error in errors:
        text = str(error)
        assert "private-token-123" not in text and "query-secret-456" not in text and SECRET not in text
        assert text.startswith("webhook http://127.0.0.1:")
    assert [e.permanent for e in errors] == [True, False, False, False]


# --- Slack -------------------------------------------------------------------------------------------


def fields_of(payload) -> dict[str, str]:
    found = {}
    for block in payload["blocks"]:
        for item in block.get("fields", []):
            name, value = item["text"].split("\n", 1)
            found[name.strip("*")] = value
    return found


def test_slack_gets_text_and_blocks_with_severity_value_threshold_and_the_link(http_receiver):
    server = http_receiver()
    SlackTransport().send({"url": server.base_url + SLACK_PATH}, "", firing(), timeout=5)
    (request,) = server.requests
    assert request.path == SLACK_PATH
    assert request.headers["content-type"] == "application/json"
    payload = request.json()
    assert payload["text"].startswith("\N{FIRE} [FIRING] critical: API latency p95 high (host=h1, region=eu)\n"
                                      "p95 latency &gt; 500: value 812.5, threshold 500")
    header = payload["blocks"][0]
    assert header["type"] == "header"
    assert header["text"]["text"] == "\N{FIRE} [FIRING] critical: API latency p95 high (host=h1, region=eu)"
    assert fields_of(payload) == {"Severity": "critical", "Status": "open", "Value": "812.5", "Threshold": "500",
                                  "Condition": "p95 latency &gt; 500", "host": "h1", "region": "eu"}
    (actions,) = [block for block in payload["blocks"] if block["type"] == "actions"]
    assert actions["elements"][0]["url"] == INCIDENT_URL
    assert INCIDENT_URL in payload["text"]


def test_a_resolved_slack_message_says_so(http_receiver):
    server = http_receiver()
    SlackTransport().send({"url": server.url}, "", resolved(), timeout=5)
    payload = server.requests[0].json()
    assert payload["text"].startswith("\N{WHITE HEAVY CHECK MARK} [RESOLVED]")
    assert payload["blocks"][0]["text"]["text"].startswith("\N{WHITE HEAVY CHECK MARK} [RESOLVED]")
    assert payload["blocks"][1]["text"]["text"].startswith("*Resolved*: ")
    assert fields_of(payload)["Value"] == "120"
    context = [block for block in payload["blocks"] if block["type"] == "context"][0]
    assert "resolved 2025-03-04T10:42:00+00:00" in context["elements"][0]["text"]


def test_a_relative_incident_link_is_text_not_a_button(http_receiver):
    # Without SITE_URL the link is a path; Slack refuses a whole message whose button has no absolute URL.
    server = http_receiver()
    SlackTransport().send({"url": server.url}, "", firing(incident_url="/admin/alerts/alertincident/7/change/"),
                          timeout=5)
    payload = server.requests[0].json()
    assert not [block for block in payload["blocks"] if block["type"] == "actions"]
    assert "/admin/alerts/alertincident/7/change/" in json.dumps(payload["blocks"])


def test_slack_errors_never_show_the_webhook_url(http_receiver):
    server = http_receiver([Reply(404, body=b"no_service"), Reply(429, headers={"Retry-After": "30"}), 500,
                            Reply(200, delay=3)])
    url = server.base_url + SLACK_PATH
    send = lambda: SlackTransport().send({"url": url}, "", firing(), timeout=0.5)  # noqa: E731
    gone, limited, broken, slow = (delivery_error(send) for _ in range(4))
    assert gone.permanent and str(gone) == "Slack webhook answered HTTP 404: no_service"
    assert not limited.permanent and limited.retry_after == 30.0
    assert not broken.permanent and not slow.permanent
    for error in (gone, limited, broken, slow):
        assert "XXXXsecretTOKENxxxx" not in str(error) and "127.0.0.1" not in str(error)
        assert str(error).startswith("Slack webhook")


# --- Retry-After -------------------------------------------------------------------------------------


def test_parse_retry_after():
    now = 1_700_000_000.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("17") == 17.0
    assert parse_retry_after("-3") == 0.0
    date = format_datetime(datetime.fromtimestamp(now + 60, UTC), usegmt=True)
    assert parse_retry_after(date, now=now) == 60.0
    assert parse_retry_after(format_datetime(datetime.fromtimestamp(now - 60, UTC), usegmt=True), now=now) == 0.0

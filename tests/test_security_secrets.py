"""Secrets never show: not in logs, API answers, exports or admin pages (docs/security.md, "Secrets").

Every secret the platform holds gets a known value: the OTLP token, the Grafana and W&B keys, the SMTP
password, the /metrics token, a webhook's signing secret, a Slack webhook URL (whose path is the secret) and an
API token. Then the paths that log or answer run for real — deliveries that fail against real receivers that
even echo the secrets back in their error bodies, an SMTP server that refuses to log in, an OTLP export to an
address where nothing listens, a Grafana that refuses the key, the client's config summary, the admin pages
and API reads of channels and tokens, every export — with every log record captured at DEBUG. No captured
record, answer or file holds any of the secrets.
"""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings

from alerts.notifications import outbox
from alerts.notifications.models import Notification, NotificationChannel
from analytics.platform.data_export import export_streams
from tests.receivers import Reply, start_http_receiver, start_smtp_receiver

OTLP_TOKEN = "otlp-tok-Q1w2E3r4T5y6"
GRAFANA_KEY = "glsa_grafana-Z9x8C7v6B5n4"
WANDB_KEY = "wandb-key-M1n2B3v4C5x6"
SMTP_PASSWORD = "smtp-pass-P0o9I8u7Y6t5"
METRICS_TOKEN = "prom-tok-L1k2J3h4G5f6"
WEBHOOK_SECRET = "whsec-A1s2D3f4G5h6"
SLACK_PATH_SECRET = "T0123/B0456/SLACKsecret789xyz"
SECRETS = [OTLP_TOKEN, GRAFANA_KEY, WANDB_KEY, SMTP_PASSWORD, METRICS_TOKEN, WEBHOOK_SECRET, SLACK_PATH_SECRET]

KNOWN_SECRETS = override_settings(OTLP_TOKEN=OTLP_TOKEN, OTLP_INSTANCE_ID="123456", GRAFANA_API_KEY=GRAFANA_KEY,
                                  WANDB_API_KEY=WANDB_KEY, EMAIL_HOST_PASSWORD=SMTP_PASSWORD,
                                  PROMETHEUS_METRICS_TOKEN=METRICS_TOKEN)


def assert_secret_free(text: str, where: str, *extra: str) -> None:
    for secret in (*SECRETS, *extra):
        assert secret not in text, f"{where} shows a secret ({secret[:6]}…): {text[:2000]}"


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)  # the root logger: every logger of the project and its libraries
    return caplog


@pytest.fixture
def echoing_receiver():
    """Start receivers that fail every request with a 500 whose body repeats a secret they were sent."""
    started = []

    def start(echoed: str):
        started.append(start_http_receiver(default=Reply(500, body=f"refused: {echoed}".encode())))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@KNOWN_SECRETS
def test_failed_deliveries_and_the_pages_that_show_them_hold_no_secret(personas, logs, echoing_receiver, client):
    hook_receiver = echoing_receiver(f"bad signature {WEBHOOK_SECRET}")
    slack_receiver = echoing_receiver(f"no such hook /services/{SLACK_PATH_SECRET}")
    webhook = NotificationChannel.objects.create(org=personas.org, name="hook", kind="webhook",
                                                 config={"url": hook_receiver.url}, secret=WEBHOOK_SECRET)
    slack_url = f"{slack_receiver.base_url}/services/{SLACK_PATH_SECRET}"
    slack = NotificationChannel.objects.create(org=personas.org, name="slack", kind="slack", config={"url": slack_url})
    smtp = start_smtp_receiver()  # no AUTH: a login with the password fails
    try:
        email = NotificationChannel.objects.create(org=personas.org, name="mail", kind="email",
                                                   config={"to": ["ops@example.com"]})
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST=smtp.host,
                               EMAIL_PORT=smtp.port, EMAIL_HOST_USER="alerts", EMAIL_USE_TLS=False):
            rows = [outbox.send_test(channel) for channel in (webhook, slack, email)]
    finally:
        smtp.stop()
    assert Notification.Status.SENT not in [row.status for row in rows]
    assert all(row.last_error for row in rows), [row.last_error for row in rows]
    assert len(hook_receiver.requests) == len(slack_receiver.requests) == 1  # both sends reached their receiver
    assert hook_receiver.requests[0].headers["x-toolweaver-signature"].startswith("sha256=")
    for row in rows:
        assert_secret_free(row.last_error, f"the {row.channel.kind} delivery error")

    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(staff)
    pages = ["/admin/alerts/notification/", f"/admin/alerts/notification/{rows[0].pk}/change/",
             f"/admin/alerts/notificationchannel/{webhook.pk}/change/", "/admin/alerts/notificationchannel/",
             f"/admin/alerts/notificationchannel/{slack.pk}/change/"]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert_secret_free(response.content.decode(), page)
    for path in ("alerts/channels", f"alerts/channels/{webhook.pk}", f"alerts/channels/{slack.pk}"):
        response = personas.member.get(path)
        assert response.status_code == 200
        assert_secret_free(response.content.decode(), f"GET {path}")
    assert logs.text.count("answered HTTP 500") == 2  # the failures were logged, and are checked here
    assert_secret_free(logs.text, "the log")


@KNOWN_SECRETS
def test_a_refused_otlp_export_and_the_config_summaries_hold_no_secret(db, logs):
    """A collector that refuses the export (a 400: the SDK does not retry it, unlike a connection refused or a
    503, which it retries for its whole 10 s timeout)."""
    import base64

    from analytics import create_analytics_client

    collector = start_http_receiver(default=400)
    try:
        with override_settings(OTLP_ENDPOINT=collector.base_url):
            client = create_analytics_client("otlp")
            try:
                client.record_skill_execution("parse_json", True, 12.0, user_id="u1")
                assert client.push() is False  # the export failed
                summary = client.get_config_summary()
            finally:
                client.close()
    finally:
        collector.stop()
    sent = collector.requests[0].headers["authorization"]
    assert base64.b64decode(sent.removeprefix("Basic ")).decode() == f"123456:{OTLP_TOKEN}"
    encoded_token = base64.b64encode(OTLP_TOKEN.encode()).decode()
    assert_secret_free(repr(summary), "the otlp client's config summary", encoded_token)
    assert_secret_free(repr(create_analytics_client("sqlite").get_config_summary()), "the sqlite config summary")
    assert "400" in logs.text  # the refusal was logged, and checked here
    assert_secret_free(logs.text, "the log", sent.removeprefix("Basic "))


def test_grafana_refusing_the_key_is_told_without_it(db, logs, echoing_receiver):
    grafana = echoing_receiver(f"invalid API key {GRAFANA_KEY}")
    with override_settings(GRAFANA_URL=grafana.base_url, GRAFANA_API_KEY=GRAFANA_KEY), \
            pytest.raises(CommandError) as refused:
        call_command("grafana_sync", stdout=StringIO(), stderr=StringIO())
    assert grafana.requests, "grafana_sync sent nothing"
    assert grafana.requests[0].headers["authorization"] == f"Bearer {GRAFANA_KEY}"
    assert "500" in str(refused.value)
    assert_secret_free(str(refused.value), "grafana_sync's error")
    assert_secret_free(logs.text, "the log")


@KNOWN_SECRETS
def test_api_tokens_show_only_their_prefix(personas, logs, client):
    raw = personas.member.raw_token
    token = personas.member.token
    for path in ("tokens", f"tokens/{token.pk}", "me"):
        text = personas.member.get(path).content.decode()
        assert token.prefix in text or path == "me"
        assert_secret_free(text, f"GET {path}", raw, token.key_hash)
    wrong = personas.anonymous.client.get("/api/v1/analytics/me", HTTP_AUTHORIZATION=f"Bearer {raw}x")
    assert wrong.status_code == 401
    assert_secret_free(wrong.content.decode(), "a 401", raw)
    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(staff)
    for page in ("/admin/analytics/apitoken/", f"/admin/analytics/apitoken/{token.pk}/change/",
                 f"/admin/analytics/organization/{personas.org.pk}/change/"):
        response = client.get(page)
        assert response.status_code == 200, page
        assert_secret_free(response.content.decode(), page, raw, token.key_hash)
    metrics = client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong")
    assert metrics.status_code == 401
    assert_secret_free(metrics.content.decode(), "/metrics' 401")
    assert_secret_free(logs.text, "the log", raw, token.key_hash)


@KNOWN_SECRETS
def test_no_export_holds_a_secret(personas):
    NotificationChannel.objects.create(org=personas.org, name="hook", kind="webhook", secret=WEBHOOK_SECRET,
                                       config={"url": f"https://hooks.example.com/services/{SLACK_PATH_SECRET}"})
    personas.member.post("metrics/record", {"metric_name": "cpu", "value": 1.0})
    streams = sorted(export_streams())
    assert streams, "no export streams"
    for name in streams:
        out = StringIO()
        call_command("export", "--what", name, "--format", "jsonl", "--days", "1", stdout=out, stderr=StringIO())
        assert_secret_free(out.getvalue(), f"export {name}", personas.member.raw_token, personas.member.token.key_hash)

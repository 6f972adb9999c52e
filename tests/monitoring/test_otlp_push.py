"""The server's OTLP push of the /metrics families, against a real local OTLP/HTTP receiver."""

import base64
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from analytics.metric_families import LATENCY_BUCKETS_MS
from monitoring import tasks
from tests.otlp_receiver import start_otlp_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(settings):
    server = start_otlp_receiver()
    settings.OTLP_ENDPOINT = server.endpoint + "/otlp"
    settings.OTLP_INSTANCE_ID = "1472140"
    settings.OTLP_TOKEN = "glc_push_secret"
    yield server
    server.stop()


def push() -> str:
    out = StringIO()
    call_command("push_otlp", stdout=out)
    return out.getvalue()


def test_the_push_carries_the_stored_figures_with_their_labels_and_the_auth_header(personas, receiver):
    batch = [{"skill_id": "pushed", "success": ms != 30.0, "latency_ms": ms} for ms in (4.0, 30.0, 700.0)]
    assert personas.member.post("skills/executions", batch).status_code == 201
    output = push()
    assert output.startswith("pushed ") and f"to {receiver.endpoint}/otlp/v1/metrics" in output

    request = receiver.requests[-1]
    assert request["path"] == "/otlp/v1/metrics"
    assert request["headers"]["authorization"] == "Basic " + base64.b64encode(b"1472140:glc_push_secret").decode()
    assert request["headers"]["content-type"] == "application/x-protobuf"
    resource = {kv.key: kv.value.string_value for kv in request["body"].resource_metrics[0].resource.attributes}
    assert resource["service.name"] == "toolweaver-analytics"
    labels = {"skill_id": "pushed", "org_id": "acme"}
    executions = receiver.latest("toolweaver_skill_executions_total", **labels)
    assert (executions.kind, executions.value) == ("sum", 3)
    assert receiver.latest("toolweaver_skill_failures_total", **labels).value == 1
    latency = receiver.latest("toolweaver_skill_latency_milliseconds", **labels)
    assert (latency.kind, latency.count, latency.total, latency.bucket_bounds) == \
        ("histogram", 3, 734.0, LATENCY_BUCKETS_MS)
    metric = next(metric for metric in request["body"].resource_metrics[0].scope_metrics[0].metrics
                  if metric.name == "toolweaver_skill_latency_milliseconds")
    assert list(metric.histogram.data_points[0].bucket_counts) == [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert metric.histogram.aggregation_temporality == 2  # cumulative, like the Prometheus counters
    assert receiver.latest("toolweaver_alert_incidents_open", severity="critical").kind == "gauge"
    assert "glc_push_secret" not in output


@pytest.mark.parametrize("status", [401, 404])
def test_a_refused_push_is_a_clear_command_error(settings, status):
    refusing = start_otlp_receiver(status=status)
    settings.OTLP_ENDPOINT = refusing.endpoint
    settings.OTLP_INSTANCE_ID, settings.OTLP_TOKEN = "1", "glc_never_shown"
    try:
        with pytest.raises(CommandError, match=f"answered HTTP {status} ") as error:
            push()
    finally:
        refusing.stop()
    assert "glc_never_shown" not in str(error.value)


def test_without_a_destination_the_command_says_what_to_set(settings, monkeypatch):
    settings.OTLP_ENDPOINT = ""
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", raising=False)
    with pytest.raises(CommandError, match="set OTLP_ENDPOINT"):
        push()


def test_the_scheduled_task_pushes_only_when_the_server_push_is_on(personas, receiver, settings):
    settings.OTLP_SERVER_PUSH = False
    assert tasks.push_otlp_aggregates() == {"skipped": "OTLP_SERVER_PUSH is off"}
    assert receiver.requests == []
    settings.OTLP_SERVER_PUSH = True
    result = tasks.push_otlp_aggregates()
    assert result["endpoint"] == receiver.endpoint + "/otlp/v1/metrics" and result["points"] > 0
    assert len(receiver.requests) == 1

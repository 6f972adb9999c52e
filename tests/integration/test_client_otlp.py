"""The client's otlp backend against a real OTLP/HTTP receiver (decoded with opentelemetry-proto)."""

import base64
import time
from importlib import metadata

import pytest

from analytics import UnsupportedOperation, create_analytics_client
from analytics.metric_families import LATENCY_BUCKETS_MS
from analytics.models import SkillExecution
from tests.otlp_receiver import start_otlp_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    server = start_otlp_receiver()
    yield server
    server.stop()


@pytest.fixture
def otlp(receiver, settings):
    settings.OTLP_ENDPOINT = receiver.endpoint + "/otlp"
    settings.OTLP_INSTANCE_ID = "1472140"
    settings.OTLP_TOKEN = "glc_secret"
    settings.OTLP_PUSH_INTERVAL = 3600
    client = create_analytics_client("otlp")
    yield client
    client.close()


def test_every_write_arrives_with_seed_001_names_and_skill_and_org_labels(otlp, receiver):
    otlp.record_skill_execution("parse_json", True, 145.5, user_id="user_123", org_id="org_456")
    otlp.record_skill_usage("parse_json", user_id="user_7", org_id="org_456", success=False, latency_ms=900.0)
    otlp.rate_skill("parse_json", 4, org_id="org_456")
    otlp.record_skill_rating("parse_json", 5, user_id="ann", org_id="org_456")
    otlp.record_skill_install("parse_json", org_id="org_456")
    otlp.update_health_score("parse_json", 91.0, org_id="org_456")
    assert otlp.push() is True

    request = receiver.requests[-1]
    assert request["path"] == "/otlp/v1/metrics"
    assert request["headers"]["authorization"] == "Basic " + base64.b64encode(b"1472140:glc_secret").decode()
    labels = {"skill_id": "parse_json", "org_id": "org_456"}
    assert receiver.latest("toolweaver_skill_executions_total", **labels).value == 2
    assert receiver.latest("toolweaver_skill_success_total", **labels).value == 1
    assert receiver.latest("toolweaver_skill_failures_total", **labels).value == 1
    latency = receiver.latest("toolweaver_skill_latency_milliseconds", **labels)
    assert (latency.kind, latency.count, latency.total) == ("histogram", 2, 1045.5)
    assert latency.bucket_bounds == LATENCY_BUCKETS_MS
    assert receiver.latest("toolweaver_skill_rating", **labels).value == 5
    assert receiver.latest("toolweaver_skill_health_score", **labels).value == 91.0
    assert all(set(point.attributes) == {"skill_id", "org_id"} for point in receiver.points())
    assert not SkillExecution.objects.exists()
    assert otlp.health_check() == {"backend": "otlp", "healthy": True,
                                   "detail": f"pushing to {receiver.endpoint}/otlp/v1/metrics; "
                                             "last export: ok (HTTP 200 OK)"}
    resource = {kv.key: kv.value.string_value for kv in request["body"].resource_metrics[0].resource.attributes}
    assert resource["service.name"] == "toolweaver-analytics"
    assert resource["service.version"] == metadata.version("toolweaver-analytics")


def test_the_periodic_reader_pushes_without_being_asked(receiver, settings):
    settings.OTLP_ENDPOINT = receiver.endpoint
    settings.OTLP_PUSH_INTERVAL = 0.2
    client = create_analytics_client("otlp")
    try:
        client.record_skill_usage("periodic", org_id="acme")
        deadline = time.monotonic() + 10
        while receiver.latest("toolweaver_skill_executions_total", skill_id="periodic") is None:
            assert time.monotonic() < deadline, "nothing pushed within 10 s"
            time.sleep(0.05)
        assert "authorization" not in receiver.requests[-1]["headers"]  # no credentials configured
        assert receiver.requests[-1]["path"] == "/v1/metrics"
    finally:
        client.close()


@pytest.mark.parametrize("status", [401, 404])
def test_a_refusing_endpoint_makes_push_false_and_the_backend_unhealthy(settings, status):
    refusing = start_otlp_receiver(status=status)
    settings.OTLP_ENDPOINT = refusing.endpoint
    client = create_analytics_client("otlp")
    try:
        client.record_skill_usage("s")
        assert client.push() is False
        assert refusing.requests  # it was sent, and refused
        check = client.health_check()
        assert check["healthy"] is False
        assert f"last export: failed (HTTP {status} " in check["detail"]
    finally:
        client.close()
        refusing.stop()


def test_an_endpoint_nobody_listens_on_shows_in_the_health_check(settings, monkeypatch):
    from analytics.client import otlp
    from tests.servers import free_port

    monkeypatch.setattr(otlp, "EXPORT_TIMEOUT_SECONDS", 1)  # the SDK retries a refused connection until then
    settings.OTLP_ENDPOINT = f"http://127.0.0.1:{free_port()}"
    client = create_analytics_client("otlp")
    try:
        client.record_skill_usage("s")
        assert client.push() is False
        assert "failed: cannot reach the endpoint (ConnectionError)" in client.health_check()["detail"]
    finally:
        client.close()


def test_the_standard_otel_variables_name_the_endpoint_and_headers(receiver, settings, monkeypatch):
    settings.OTLP_ENDPOINT = ""
    settings.OTLP_ENVIRONMENT = "staging"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint + "/collector")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20otel-secret,X-Scope-OrgID=team-a")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "host.name=runner-1")
    client = create_analytics_client("otlp")
    try:
        client.record_skill_usage("env_skill", org_id="acme")
        assert client.push() is True
        summary = client.get_config_summary()
    finally:
        client.close()
    request = receiver.requests[-1]
    assert request["path"] == "/collector/v1/metrics"
    assert request["headers"]["authorization"] == "Bearer otel-secret"
    assert request["headers"]["x-scope-orgid"] == "team-a"
    resource = {kv.key: kv.value.string_value for kv in request["body"].resource_metrics[0].resource.attributes}
    assert resource["deployment.environment"] == "staging"
    assert resource["host.name"] == "runner-1"
    assert summary["otlp_headers"] == {"authorization": "***", "x-scope-orgid": "***"}
    assert summary["otlp_resource"]["deployment.environment"] == "staging"
    assert "otel-secret" not in str(summary)


def test_reads_raise_unsupported_operation(otlp):
    for method, args in (("get_skill_usage", ("s",)), ("compute_health_score", ("s",)), ("get_leaderboard", ())):
        with pytest.raises(UnsupportedOperation, match="otlp"):
            getattr(otlp, method)(*args)


def test_config_summary_masks_the_token(otlp, receiver):
    summary = otlp.get_config_summary()
    assert summary["backend"] == "otlp"
    assert summary["otlp_endpoint"] == receiver.endpoint + "/otlp"
    assert summary["otlp_token"] == "***"
    assert "glc_secret" not in str(summary)


def test_without_an_endpoint_the_backend_refuses_to_start(settings):
    settings.OTLP_ENDPOINT = ""
    with pytest.raises(ValueError, match="OTLP_ENDPOINT"):
        create_analytics_client("otlp")


def test_fanout_with_the_store(receiver, settings):
    settings.OTLP_ENDPOINT = receiver.endpoint
    client = create_analytics_client("sqlite,otlp")
    try:
        client.record_skill_execution("fan", True, 12.0, org_id="acme")
        assert client.push() is True
        assert receiver.latest("toolweaver_skill_executions_total", skill_id="fan", org_id="acme").value == 1
        assert client.get_skill_usage("fan")["execution_count"] == 1
    finally:
        client.close()


def test_seed_001_otlp_metrics_class_is_the_otlp_backend(receiver, settings):
    """Seed 001: `metrics = OTLPMetrics()` then `record_skill_execution(...)`, `push()`, `health_check()`."""
    from analytics import OTLPMetrics

    settings.OTLP_ENDPOINT = receiver.endpoint
    settings.OTLP_PUSH_INTERVAL = 3600
    metrics = OTLPMetrics()
    try:
        metrics.record_skill_execution("test_skill", success=True, latency_ms=150)
        metrics.record_skill_rating("test_skill", 4, user_id="user_123")
        metrics.update_health_score("test_skill", 75.0)
        assert metrics.push() is True
        assert metrics.health_check()["healthy"] is True
        assert metrics.get_config_summary()["backend"] == "otlp"
    finally:
        metrics.close()
    labels = {"skill_id": "test_skill", "org_id": "default"}
    assert receiver.latest("toolweaver_skill_executions_total", **labels).value == 1
    assert receiver.latest("toolweaver_skill_rating", **labels).value == 4
    assert receiver.latest("toolweaver_skill_health_score", **labels).value == 75.0
    assert not SkillExecution.objects.exists()  # push-only: nothing stored

"""The OTLP/HTTP receiver (docs/otlp.md), driven by the real OpenTelemetry SDK's exporters over HTTP.

The SDK's OTLP exporters post to a live server; what they sent is read back through the JSON API. Requests the
SDK would not send (JSON with hex ids, a corrupt body, a wrong token) are posted with the test client.
"""

import base64
import gzip
import json
import os

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import Observation
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from analytics.models import ApiToken, MetricEvent, SkillExecution

pytestmark = pytest.mark.django_db(transaction=True)

RESOURCE = Resource.create({"service.name": "orchestrator", "service.version": "2.1.0"})


def recorded_metrics():
    """A counter, a gauge and a histogram recorded by the SDK: (the metrics data, what was recorded)."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(resource=RESOURCE, metric_readers=[reader]).get_meter("tests")
    jobs = meter.create_counter("jobs.done", unit="1")
    for amount in (3, 4):
        jobs.add(amount, {"queue": "default"})
    meter.create_observable_gauge("queue.depth", callbacks=[
        lambda options: [Observation(17.0, {"queue": "default"})]])
    latency = meter.create_histogram("request.duration", unit="ms")
    for value in (10.0, 20.0, 30.0, 40.0):
        latency.record(value, {"route": "/a"})
    return reader.get_metrics_data()


def tool_spans(*, user="user_1"):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    for index in range(3):
        with tracer.start_as_current_span("execute_tool parse_json", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "parse_json", "user.id": user}) as span:
            if index == 2:
                span.set_status(Status(StatusCode.ERROR, "bad input"))
                span.set_attribute("error.type", "ValueError")
    with tracer.start_as_current_span("invoke_agent planner"):
        pass
    return exporter.get_finished_spans()


def exporter_headers(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_the_sdks_exporters_report_metrics_and_tool_spans(live_server, personas):
    token = ApiToken.issue(personas.org, name="otel")[1]
    metrics = OTLPMetricExporter(endpoint=f"{live_server.url}/otlp/v1/metrics", headers=exporter_headers(token))
    assert metrics.export(recorded_metrics()) == MetricExportResult.SUCCESS
    spans = OTLPSpanExporter(endpoint=f"{live_server.url}/otlp/v1/traces", headers=exporter_headers(token),
                             compression=Compression.Gzip)
    assert spans.export(tool_spans()) == SpanExportResult.SUCCESS

    jobs = personas.member.get("metrics/jobs.done/statistics").json()
    assert jobs["count"] >= 1 and jobs["sum"] == 7
    depth = personas.member.get("metrics/queue.depth/statistics").json()
    assert depth["max"] == 17.0
    histogram_count = personas.member.get("metrics/request.duration.count/statistics").json()
    assert histogram_count["sum"] == 4
    assert personas.member.get("metrics/request.duration.sum/statistics").json()["sum"] == 100.0

    skill = personas.member.get("skills/parse_json").json()
    assert skill["execution_count"] == 3 and skill["success_count"] == 2 and skill["failure_count"] == 1
    assert SkillExecution.objects.filter(user_id="user_1", skill_version="2.1.0").count() == 3


def test_the_same_export_sent_twice_stores_once(live_server, personas):
    token = ApiToken.issue(personas.org, name="otel")[1]
    finished = tool_spans()
    exporter = OTLPSpanExporter(endpoint=f"{live_server.url}/otlp/v1/traces", headers=exporter_headers(token))
    assert exporter.export(finished) == SpanExportResult.SUCCESS
    assert exporter.export(finished) == SpanExportResult.SUCCESS
    assert SkillExecution.objects.count() == 3

    collected = recorded_metrics()
    metrics = OTLPMetricExporter(endpoint=f"{live_server.url}/otlp/v1/metrics", headers=exporter_headers(token))
    assert metrics.export(collected) == MetricExportResult.SUCCESS
    stored = MetricEvent.objects.count()
    assert stored > 0
    assert metrics.export(collected) == MetricExportResult.SUCCESS
    assert MetricEvent.objects.count() == stored
    assert personas.member.get("metrics/jobs.done/statistics").json()["sum"] == 7


def otlp_post(persona_client, path, body: bytes, content_type="application/x-protobuf", **headers):
    return persona_client.generic("POST", f"/otlp/v1/{path}", body, content_type=content_type, **headers)


def trace_request() -> trace_service_pb2.ExportTraceServiceRequest:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return encode_spans(tool_spans())


def test_a_json_body_with_hex_ids_works_and_answers_json(personas):
    body = json_format.MessageToDict(trace_request())
    for resource_spans in body["resourceSpans"]:  # OTLP/JSON writes ids as hex, not protobuf's base64
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for field in ("traceId", "spanId", "parentSpanId"):
                    if field in span:
                        span[field] = base64.b64decode(span[field]).hex()
    response = otlp_post(personas.member.client, "traces", json.dumps(body).encode(), "application/json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {}
    assert SkillExecution.objects.count() == 3
    trace_ids = {event.split(":")[1] for event in SkillExecution.objects.values_list("event_id", flat=True)}
    span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] in trace_ids


def test_a_gzip_body_works(personas):
    body = gzip.compress(trace_request().SerializeToString())
    response = otlp_post(personas.member.client, "traces", body, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    assert SkillExecution.objects.count() == 3


def test_basic_auth_with_the_token_as_password_is_accepted(client, personas):
    token = ApiToken.issue(personas.org, name="grafana-style")[1]
    credentials = base64.b64encode(f"12345:{token}".encode()).decode()
    response = otlp_post(client, "traces", trace_request().SerializeToString(),
                         HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert response.status_code == 200
    assert SkillExecution.objects.filter(org=personas.org).count() == 3


@pytest.mark.parametrize("authorization", [None, "Bearer twa_wrong", "Basic " + base64.b64encode(b"u:twa_x").decode()])
def test_a_wrong_or_missing_token_is_401_and_stores_nothing(client, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = otlp_post(client, "traces", trace_request().SerializeToString(), **headers)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response
    from google.rpc import status_pb2

    status = status_pb2.Status.FromString(response.content)
    assert status.code == 16  # UNAUTHENTICATED
    assert not SkillExecution.objects.exists()


def test_a_read_only_token_is_403(personas):
    response = otlp_post(personas.reader.client, "traces", trace_request().SerializeToString())
    assert response.status_code == 403
    assert not SkillExecution.objects.exists()


@pytest.mark.parametrize(("path", "body", "headers"), [
    ("traces", b"\x0a\xff\xff\xff\xff\xff", {}),  # a truncated length-delimited field
    ("metrics", b"not protobuf at all \x00\x01", {}),
    ("traces", b"not gzip", {"HTTP_CONTENT_ENCODING": "gzip"}),
])
def test_a_corrupt_body_is_400_and_stores_nothing(personas, path, body, headers):
    response = otlp_post(personas.member.client, path, body, **headers)
    assert response.status_code == 400, response.content
    assert not SkillExecution.objects.exists() and not MetricEvent.objects.exists()


def test_a_corrupt_json_body_is_400_with_a_json_status(personas):
    response = otlp_post(personas.member.client, "metrics", b'{"resourceMetrics": [', "application/json")
    assert response.status_code == 400
    assert json.loads(response.content)["code"] == 3  # INVALID_ARGUMENT


def test_other_media_types_and_encodings_are_415(personas):
    body = trace_request().SerializeToString()
    assert otlp_post(personas.member.client, "traces", body, "text/plain").status_code == 415
    assert otlp_post(personas.member.client, "traces", body, HTTP_CONTENT_ENCODING="br").status_code == 415


def test_a_body_over_the_limit_is_413(personas):
    response = otlp_post(personas.member.client, "traces", b"\x00" * (10 * 1024 * 1024 + 1))
    assert response.status_code == 413


def test_rejected_spans_are_a_partial_success(personas):
    request = trace_request()
    bad = request.resource_spans[0].scope_spans[0].spans[0]
    for attribute in bad.attributes:
        if attribute.key == "gen_ai.tool.name":
            attribute.value.string_value = "skills/leaderboard"  # a '/' is not a skill id
    response = otlp_post(personas.member.client, "traces", request.SerializeToString())
    assert response.status_code == 200
    answer = trace_service_pb2.ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert answer.partial_success.error_message
    assert SkillExecution.objects.count() == 2


def test_an_answer_without_rejections_has_no_partial_success(personas):
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    response = otlp_post(personas.member.client, "metrics", request.SerializeToString())
    assert response.status_code == 200
    answer = metrics_service_pb2.ExportMetricsServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")


def test_the_receiver_is_documented_and_not_in_the_json_schema(personas):
    import yaml

    schema = yaml.safe_load(personas.member.get("/api/schema/").content)
    assert not [path for path in schema["paths"] if path.startswith("/otlp")]
    docs = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "otlp.md")).read()
    assert "/otlp/v1/metrics" in docs and "/otlp/v1/traces" in docs


def test_an_error_answers_in_the_requests_encoding(client):
    response = otlp_post(client, "metrics", b"{}", "application/json", HTTP_AUTHORIZATION="Bearer twa_wrong")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["code"] == 16


@pytest.fixture
def busy_database(monkeypatch):
    """Another connection holds the skill executions' table locked; ours gives up waiting after 0.2 s."""
    from django.db import connection

    options = connection.settings_dict["OPTIONS"]
    connection.close()
    if connection.vendor == "sqlite":
        import sqlite3

        monkeypatch.setitem(options, "timeout", 0.2)
        other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the one write lock of the database file
    else:
        import psycopg

        monkeypatch.setitem(options, "options", "-c lock_timeout=200")
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        other = psycopg.connect(**params)
        other.execute(f"LOCK TABLE {SkillExecution._meta.db_table} IN ACCESS EXCLUSIVE MODE")
    yield
    other.close()  # its transaction (and lock) ends with it
    connection.close()  # the next test reconnects with the usual options


def test_a_busy_database_is_503_with_retry_after_and_the_sdk_would_retry(personas, busy_database):
    response = otlp_post(personas.member.client, "traces", trace_request().SerializeToString())
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    from google.rpc import status_pb2

    assert status_pb2.Status.FromString(response.content).code == 14  # UNAVAILABLE

"""OTLP traces → skill executions: spans made by the real OpenTelemetry SDK, encoded as its exporter does."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from analytics.models import MetricEvent, MetricSeries, SkillExecution
from analytics.platform.windows import Window
from analytics.services.otlp_common import IntakeResult
from analytics.services.otlp_traces import ingest_traces
from analytics.services.skills import skill_summary

pytestmark = pytest.mark.django_db
MS = 1_000_000  # nanoseconds


class Agent:
    """An instrumented agent: a TracerProvider whose finished spans are kept in memory."""

    def __init__(self, **resource):
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create(resource))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("agent.tools", "0.1")

    def span(self, name, *, ms=10.0, ago_s=60.0, attributes=None, status=None, exception=None):
        end = time.time_ns() - int(ago_s * 1e9)
        span = self.tracer.start_span(name, attributes=attributes or {}, start_time=end - int(ms * MS))
        if exception is not None:
            span.record_exception(exception)
        if status is not None:
            span.set_status(status)
        span.end(end_time=end)
        return span

    def tool(self, tool_name, **kwargs):
        attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool_name,
                      "gen_ai.tool.call.id": "call_1", "gen_ai.tool.type": "function",
                      **kwargs.pop("attributes", {})}
        return self.span(f"execute_tool {tool_name}", attributes=attributes, **kwargs)

    def request(self) -> ExportTraceServiceRequest:
        """What the OTLP exporter would send, through the wire format as the receiver reads it."""
        encoded = encode_spans(self.exporter.get_finished_spans())
        self.exporter.clear()
        return ExportTraceServiceRequest.FromString(encoded.SerializeToString())


def last_day():
    return Window(timezone.now() - timedelta(days=1), timezone.now() + timedelta(minutes=1))


def summary(org, skill_id):
    return skill_summary(skill_id, last_day(), org=org)


def test_tool_spans_become_executions_with_what_was_sent(personas):
    agent = Agent(**{"service.name": "orchestrator", "service.version": "2.3.0"})
    agent.tool("parse_json", ms=100, attributes={"user.id": "u1"})
    agent.tool("parse_json", ms=300, attributes={"user.id": "u1", "gen_ai.tool.version": "1.4"})
    agent.tool("parse_json", ms=200, attributes={"error.type": "ValueError"},
               status=Status(StatusCode.ERROR, "bad json"))
    result = ingest_traces(personas.org, agent.request())
    assert result == IntakeResult(accepted=3)
    figures = summary(personas.org, "parse_json")
    assert (figures.execution_count, figures.success_count, figures.failure_count) == (3, 2, 1)
    assert figures.success_rate == pytest.approx(2 / 3)
    assert figures.avg_latency_ms == pytest.approx(200.0)
    rows = {row.latency_ms: row for row in SkillExecution.objects.filter(org=personas.org)}
    assert sorted(rows) == [100.0, 200.0, 300.0]  # nanoseconds to milliseconds, exactly
    fast, failed, slow = (rows[key] for key in sorted(rows))
    assert (fast.user_id, fast.skill_version, fast.success, fast.error_type) == ("u1", "2.3.0", True, "")
    assert slow.skill_version == "1.4"  # the span's gen_ai.tool.version wins over the resource's service.version
    assert (failed.success, failed.error_type, failed.user_id) == (False, "ValueError", None)
    assert all(row.event_id.startswith("otlp:") and len(row.event_id) == 54 for row in rows.values())
    assert abs((timezone.now() - fast.timestamp).total_seconds() - 60) < 5  # the span's end time
    assert summary(personas.other_org, "parse_json") is None


def test_the_timestamp_is_the_end_and_the_event_id_the_trace_and_span_ids(personas):
    agent = Agent()
    span = agent.tool("ocr", ms=1500)
    ingest_traces(personas.org, agent.request())
    row = SkillExecution.objects.get(org=personas.org)
    context = span.get_span_context()
    assert row.event_id == f"otlp:{context.trace_id:032x}:{context.span_id:016x}"
    assert int(row.timestamp.timestamp() * 1e6) == span.end_time // 1000
    assert row.latency_ms == pytest.approx(1500.0)


def test_the_same_export_sent_twice_stores_once(personas):
    agent = Agent()
    for _ in range(3):
        agent.tool("parse_json")
    request = agent.request()
    assert ingest_traces(personas.org, request).accepted == 3
    events = MetricEvent.objects.count()
    again = ingest_traces(personas.org, request)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 3, 0)
    assert summary(personas.org, "parse_json").execution_count == 3
    assert MetricEvent.objects.count() == events
    # Another org sending the same spans has its own executions.
    assert ingest_traces(personas.other_org, request).accepted == 3


def test_openinference_tool_spans_map(personas):
    agent = Agent(**{"enduser.id": "resource-user"})
    agent.span("lookup", attributes={"openinference.span.kind": "TOOL", "tool.name": "weather_lookup"}, ms=40)
    agent.span("calculator", attributes={"openinference.span.kind": "TOOL"}, ms=20)  # no tool.name: span name
    agent.span("llm", attributes={"openinference.span.kind": "LLM"})
    result = ingest_traces(personas.org, agent.request())
    assert (result.accepted, result.other_spans) == (2, 1)
    weather = summary(personas.org, "weather_lookup")
    assert (weather.execution_count, weather.success_rate, weather.avg_latency_ms) == (1, 1.0, pytest.approx(40))
    assert summary(personas.org, "calculator").execution_count == 1
    assert set(SkillExecution.objects.values_list("user_id", flat=True)) == {"resource-user"}


def test_tool_spans_are_found_by_operation_or_by_name(personas):
    agent = Agent()
    agent.span("call a tool", attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "by_op"})
    agent.span("execute_tool by_name")  # no attributes at all: the tool is named by the span name
    agent.span("execute_tool ignored", attributes={"gen_ai.tool.name": "by_attribute"})
    assert ingest_traces(personas.org, agent.request()).accepted == 3
    assert set(SkillExecution.objects.values_list("skill_id", flat=True)) == {"by_op", "by_name", "by_attribute"}


def test_failures_carry_their_error_type(personas):
    agent = Agent()
    agent.tool("fetch", attributes={"error.type": "timeout"}, status=Status(StatusCode.ERROR, "took 30 s"))
    agent.tool("fetch", attributes={"error.type": "500"})  # status UNSET, error.type set: a failure
    agent.tool("fetch", exception=ConnectionError("refused"), status=Status(StatusCode.ERROR))
    agent.tool("fetch", status=Status(StatusCode.ERROR, "quota exceeded"))
    agent.tool("fetch", status=Status(StatusCode.OK))
    agent.tool("fetch")  # UNSET, no error.type: a success
    assert ingest_traces(personas.org, agent.request()).accepted == 6
    figures = summary(personas.org, "fetch")
    assert (figures.success_count, figures.failure_count) == (2, 4)
    errors = sorted(SkillExecution.objects.filter(success=False).values_list("error_type", flat=True))
    assert errors == ["500", "ConnectionError", "quota exceeded", "timeout"]
    assert set(SkillExecution.objects.filter(success=True).values_list("error_type", flat=True)) == {""}


def test_other_spans_are_counted_per_name_and_nothing_else_is_stored(personas):
    agent = Agent()
    agent.span("chat gpt-4o", attributes={"gen_ai.operation.name": "chat"})
    agent.span("chat gpt-4o", attributes={"gen_ai.operation.name": "chat"})
    agent.span("invoke_agent planner")
    agent.span("execute_toolbox")  # not "execute_tool <name>"
    request = agent.request()
    result = ingest_traces(personas.org, request)
    assert result == IntakeResult(other_spans=4)
    assert not SkillExecution.objects.exists()
    ingest_traces(personas.org, request)  # a retried export counts once

    def counted():
        return {event.series.tags["span_name"]: event.value
                for event in MetricEvent.objects.select_related("series").filter(series__name="otlp.other_spans")}

    assert counted() == {"chat gpt-4o": 2.0, "invoke_agent planner": 1.0, "execute_toolbox": 1.0}
    assert set(MetricSeries.objects.values_list("name", flat=True)) == {"otlp.other_spans"}


def test_other_spans_are_logged_per_name_at_debug(personas, caplog):
    agent = Agent()
    agent.span("chat gpt-4o")
    agent.span("chat gpt-4o")
    agent.tool("parse_json")
    with caplog.at_level("DEBUG", logger="analytics.services.otlp_traces"):
        ingest_traces(personas.org, agent.request())
    assert "'chat gpt-4o' ×2" in caplog.text


@pytest.mark.parametrize(("tool_name", "reason"), [
    ("executions", "reserved word"),
    ("a/b", "skill_id"),
    ("has space", "skill_id"),
    ("x" * 201, "At most 200 characters"),
])
def test_a_bad_skill_id_rejects_only_its_span(personas, tool_name, reason):
    agent = Agent()
    agent.tool("good_one")
    agent.tool(tool_name)
    agent.tool("good_two")
    result = ingest_traces(personas.org, agent.request())
    assert (result.accepted, result.rejected) == (2, 1)
    assert reason in result.reason and "skill_id" in result.reason
    assert set(SkillExecution.objects.values_list("skill_id", flat=True)) == {"good_one", "good_two"}
    assert MetricEvent.objects.count() == 4  # two events per stored execution, none for the rejected span


def test_times_out_of_range_are_rejected_and_the_first_reason_kept(personas):
    agent = Agent()
    agent.tool("old", ago_s=(settings.ANALYTICS_DB_RETENTION_DAYS + 1) * 86400)
    agent.tool("ahead", ago_s=-600)
    agent.tool("fine")
    result = ingest_traces(personas.org, agent.request())
    assert (result.accepted, result.rejected) == (1, 2)
    assert "'execute_tool old'" in result.reason and "retention" in result.reason
    assert list(SkillExecution.objects.values_list("skill_id", flat=True)) == ["fine"]


def test_now_is_the_reference_for_the_time_checks(personas):
    agent = Agent()
    agent.tool("ahead", ago_s=-600)  # 10 minutes ahead of the wall clock, fine for a "now" 10 minutes on
    assert ingest_traces(personas.org, agent.request(), now=timezone.now() + timedelta(minutes=10)).accepted == 1


def test_zero_length_spans_are_0_ms_and_broken_spans_are_rejected(personas):
    agent = Agent()
    agent.tool("instant", ms=0)
    agent.tool("backwards")
    agent.tool("unended")
    agent.tool("no_ids")
    agent.tool("unnamed")
    request = agent.request()
    spans = {span.name: span for span in request.resource_spans[0].scope_spans[0].spans}
    backwards = spans["execute_tool backwards"]
    backwards.start_time_unix_nano, backwards.end_time_unix_nano = (backwards.end_time_unix_nano,
                                                                    backwards.start_time_unix_nano)
    spans["execute_tool unended"].end_time_unix_nano = 0
    spans["execute_tool no_ids"].span_id = b""
    unnamed = spans["execute_tool unnamed"]
    unnamed.name = "execute_tool "
    del unnamed.attributes[:]
    unnamed.attributes.add(key="gen_ai.operation.name").value.string_value = "execute_tool"
    result = ingest_traces(personas.org, request)
    assert (result.accepted, result.rejected) == (1, 4)
    assert "ends before it starts" in result.reason
    row = SkillExecution.objects.get()
    assert (row.skill_id, row.latency_ms) == ("instant", 0.0)


def test_user_and_version_from_span_or_resource(personas):
    agent = Agent(**{"user.id": "resource-user", "service.version": "9.9"})
    agent.tool("a")
    agent.tool("b", attributes={"enduser.id": "span-enduser"})
    agent.tool("c", attributes={"user.id": "span-user", "enduser.id": "span-enduser"})
    agent.tool("d", attributes={"gen_ai.tool.version": "v" * 100})  # a long version is cut, not rejected
    assert ingest_traces(personas.org, agent.request()).accepted == 4
    rows = {row.skill_id: row for row in SkillExecution.objects.all()}
    assert {key: row.user_id for key, row in rows.items()} == {
        "a": "resource-user", "b": "span-enduser", "c": "span-user", "d": "resource-user"}
    assert (rows["a"].skill_version, rows["d"].skill_version) == ("9.9", "v" * 64)


def test_a_bad_user_id_rejects_its_span(personas):
    agent = Agent()
    agent.tool("a", attributes={"user.id": "u" * 201})
    agent.tool("b", attributes={"user.id": "ok"})
    result = ingest_traces(personas.org, agent.request())
    assert (result.accepted, result.rejected) == (1, 1)
    assert "user_id" in result.reason


def test_an_empty_export_does_nothing(personas):
    assert ingest_traces(personas.org, ExportTraceServiceRequest()) == IntakeResult()


def test_many_resources_and_scopes_in_one_request(personas):
    first, second = Agent(**{"service.version": "1"}), Agent(**{"service.version": "2"})
    first.tool("shared")
    second.tool("shared")
    request = first.request()
    request.resource_spans.extend(second.request().resource_spans)
    assert ingest_traces(personas.org, request).accepted == 2
    assert sorted(SkillExecution.objects.values_list("skill_version", flat=True)) == ["1", "2"]

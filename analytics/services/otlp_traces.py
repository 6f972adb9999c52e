"""OTLP traces → skill executions (docs/otlp.md, Traces).

    ingest_traces(org, request, *, now=None) -> IntakeResult

A span is a **tool execution** when any of these holds:

- ``gen_ai.operation.name`` is ``execute_tool`` (GenAI semantic conventions);
- its name starts with ``"execute_tool "`` (the conventions' span name ``execute_tool {gen_ai.tool.name}``);
- ``openinference.span.kind`` is ``TOOL`` (OpenInference, any letter case).

Each tool span becomes one skill execution:

=============  =================================================================================================
skill_id       ``gen_ai.tool.name``, else ``tool.name`` (OpenInference), else the rest of a span name
               ``execute_tool <name>``, else (OpenInference spans only) the span name. Checked as the API
               checks a skill id (no ``/`` or whitespace, not a reserved word, 1-200 characters).
success        false when the status is ``STATUS_CODE_ERROR`` or ``error.type`` is set (non-empty); true
               otherwise (status UNSET or OK without ``error.type``).
error_type     on a failure: ``error.type``, else the ``exception.type`` of the span's first ``exception``
               event, else the status message; printable, cut to 200 characters. Empty on success.
latency_ms     end − start, nanoseconds → milliseconds. A zero-length span is 0 ms (coarse clocks);
               a span ending before it starts, or without a start or end time, is rejected.
timestamp      the span's end time (when the execution finished, as the API's clients record it); checked
               as the API checks it (no older than retention, at most 5 minutes ahead of ``now``).
user_id        ``user.id``, else ``enduser.id`` (the older spelling): on the span, else on the resource.
               Checked as the API checks it (printable, at most 200 characters).
skill_version  ``gen_ai.tool.version`` on the span, else the resource's ``service.version``; printable, cut
               to 64 characters (a version is descriptive: a long one is cut, not a reason to reject).
event_id       ``otlp:<trace id hex>:<span id hex>`` (54 characters): a retried export stores nothing twice —
               its spans are counted as ``duplicates``. A span without a valid trace or span id is rejected.
=============  =================================================================================================

A bad tool span is rejected alone (OTLP's ``partial_success``): it is counted in ``rejected``, the first
reason is kept, and the good spans of the same request are stored — all of them with one
``record_executions`` call, in one transaction. Every other span is counted (per name, logged at DEBUG;
the total in ``other_spans``) and nothing else of it is stored: the counts are the org's counter
``otlp.other_spans`` tagged ``span_name``, whose events take their ids from the spans counted, so a retried
export counts once.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from datetime import datetime

from django.utils import timezone
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Status
from pydantic import TypeAdapter, ValidationError

from analytics.models import Organization
from analytics.platform.contracts import ContractError, field_messages, ingest_context
from analytics.services.metrics_ingest import MetricItem, MetricType, ingest_metric_items
from analytics.services.otlp_common import TAG_VALUE_MAX, IntakeResult, any_value_text, nanos_to_datetime, printable
from analytics.services.skills import ExecutionItem, record_executions

logger = logging.getLogger(__name__)

SPAN_NAME_PREFIX = "execute_tool "
EXECUTE_TOOL = "execute_tool"
# The attributes read from a span, and from its resource.
OPERATION, TOOL_NAME, OPENINFERENCE_KIND, OPENINFERENCE_TOOL_NAME = (
    "gen_ai.operation.name", "gen_ai.tool.name", "openinference.span.kind", "tool.name")
ERROR_TYPE, TOOL_VERSION, USER_ID, ENDUSER_ID = "error.type", "gen_ai.tool.version", "user.id", "enduser.id"
SERVICE_VERSION = "service.version"
SPAN_KEYS = frozenset({OPERATION, TOOL_NAME, OPENINFERENCE_KIND, OPENINFERENCE_TOOL_NAME, ERROR_TYPE,
                       TOOL_VERSION, USER_ID, ENDUSER_ID})
RESOURCE_KEYS = frozenset({USER_ID, ENDUSER_ID, SERVICE_VERSION})
EXCEPTION_TYPE = frozenset({"exception.type"})  # of a span's "exception" event
ERROR_TYPE_MAX, VERSION_MAX = 200, 64
REASON_MAX = 1000
OTHER_SPANS_METRIC = "otlp.other_spans"

_EXECUTION = TypeAdapter(ExecutionItem)


class SpanRejected(Exception):  # noqa: N818  (a reason, not an error of this code)
    pass


def _picked(attributes, keys: frozenset[str]) -> dict[str, str]:
    """The non-empty values of ``keys`` among OTLP attributes, as text (not cleaned: checked where used)."""
    found: dict[str, str] = {}
    for attribute in attributes:
        if attribute.key in keys:
            text = any_value_text(attribute.value)
            if text:
                found[attribute.key] = text
    return found


def _tool_name(span, attributes: dict[str, str]) -> str | None:
    """The skill id of a tool span, or None when the span is not a tool execution."""
    named = span.name.startswith(SPAN_NAME_PREFIX)
    openinference = attributes.get(OPENINFERENCE_KIND, "").upper() == "TOOL"
    if not (named or openinference or attributes.get(OPERATION) == EXECUTE_TOOL):
        return None
    name = attributes.get(TOOL_NAME) or attributes.get(OPENINFERENCE_TOOL_NAME)
    if not name and named:
        name = span.name[len(SPAN_NAME_PREFIX):].strip()
    if not name and openinference:
        name = span.name
    if not name:
        raise SpanRejected(f"no tool name ({TOOL_NAME}, {OPENINFERENCE_TOOL_NAME} or a span name "
                           f"'{SPAN_NAME_PREFIX}<name>')")
    return name


def _error_type(span, attributes: dict[str, str]) -> str:
    if ERROR_TYPE in attributes:
        return attributes[ERROR_TYPE]
    for event in span.events:
        if event.name == "exception":
            exception_type = _picked(event.attributes, EXCEPTION_TYPE)
            if exception_type:
                return exception_type["exception.type"]
            break
    return span.status.message


def _execution(span, skill_id: str, attributes: dict[str, str], resource: dict[str, str],
               now: datetime) -> ExecutionItem:
    if len(span.trace_id) != 16 or len(span.span_id) != 8 or not any(span.trace_id) or not any(span.span_id):
        raise SpanRejected("no valid trace_id (16 bytes) and span_id (8 bytes)")
    if not span.end_time_unix_nano or not span.start_time_unix_nano:
        raise SpanRejected("no start or end time")
    if span.end_time_unix_nano < span.start_time_unix_nano:
        raise SpanRejected("ends before it starts")
    failed = span.status.code == Status.STATUS_CODE_ERROR or ERROR_TYPE in attributes
    data = {
        "skill_id": skill_id,
        "success": not failed,
        "latency_ms": (span.end_time_unix_nano - span.start_time_unix_nano) / 1_000_000,
        "timestamp": nanos_to_datetime(span.end_time_unix_nano),
        "user_id": (attributes.get(USER_ID) or attributes.get(ENDUSER_ID)
                    or resource.get(USER_ID) or resource.get(ENDUSER_ID)),
        "error_type": printable(_error_type(span, attributes), ERROR_TYPE_MAX) if failed else "",
        "skill_version": printable(attributes.get(TOOL_VERSION) or resource.get(SERVICE_VERSION, ""), VERSION_MAX),
        "event_id": f"otlp:{span.trace_id.hex()}:{span.span_id.hex()}",
    }
    try:
        return _EXECUTION.validate_python(data, context=ingest_context(now))
    except ValidationError as error:
        raise SpanRejected(str(ContractError(field_messages(error)))) from None


def _where(span) -> str:
    return (f"span {printable(span.name, 100)!r} (trace {span.trace_id.hex() or '-'}, "
            f"span {span.span_id.hex() or '-'})")


def _count_other_spans(org: Organization, others: dict[str, list[bytes]], now: datetime) -> None:
    """Per span name, how many spans that are not tool executions arrived (``otlp.other_spans``)."""
    ingest_metric_items(org, [
        MetricItem(OTHER_SPANS_METRIC, float(len(ids)), MetricType.COUNTER, source="otlp", timestamp=now,
                   tags={"span_name": printable(name, TAG_VALUE_MAX) or "(unnamed)"},
                   event_id="otlp-spans:" + hashlib.sha1(b"".join(sorted(ids))).hexdigest())
        for name, ids in others.items()
    ])


def ingest_traces(org: Organization, request: ExportTraceServiceRequest, *,
                  now: datetime | None = None) -> IntakeResult:
    """Record the tool-execution spans of one ``ExportTraceServiceRequest`` as skill executions of ``org``.

    Bad tool spans are rejected one by one (the first reason kept); the rest are stored in one transaction.
    Other spans are counted, nothing else of them is stored.
    """
    now = now or timezone.now()
    items: list[ExecutionItem] = []
    others: dict[str, list[bytes]] = defaultdict(list)  # span name → trace and span ids
    rejected, reason = 0, ""
    for resource_spans in request.resource_spans:
        resource = _picked(resource_spans.resource.attributes, RESOURCE_KEYS)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = _picked(span.attributes, SPAN_KEYS)
                try:
                    skill_id = _tool_name(span, attributes)
                    if skill_id is None:
                        others[span.name].append(span.trace_id + span.span_id)
                        continue
                    items.append(_execution(span, skill_id, attributes, resource, now))
                except SpanRejected as problem:
                    rejected += 1
                    if not reason:
                        reason = printable(f"{_where(span)}: {problem}", REASON_MAX)
    other_spans = sum(len(ids) for ids in others.values())
    if others:
        _count_other_spans(org, others, now)
        if logger.isEnabledFor(logging.DEBUG):
            by_count = sorted(others.items(), key=lambda item: -len(item[1]))
            logger.debug("OTLP traces for %s: %d other spans, counted: %s", org.slug, other_spans,
                         ", ".join(f"{printable(name, 100)!r} ×{len(ids)}" for name, ids in by_count))
    if rejected:
        logger.debug("OTLP traces for %s: %d tool spans rejected, first: %s", org.slug, rejected, reason)
    result = record_executions(org, items) if items else None
    return IntakeResult(
        accepted=result.accepted if result else 0,
        rejected=rejected,
        duplicates=result.duplicates if result else 0,
        reason=reason,
        other_spans=other_spans,
    )

"""The server's OTLP push: the families of /metrics, sent to the OTLP destination (docs/exporters.md).

Where the orchestrator's processes push their own measurements with the client's ``otlp`` backend, the
server can push what the store knows — every execution from every process, health scores, services,
incidents — as cumulative OTLP metrics, to the same destination (``otlp_destination``: OTLP_ENDPOINT with
Grafana Cloud's Basic auth, or the standard OTEL_EXPORTER_OTLP_* variables). Enabled by OTLP_SERVER_PUSH;
run every OTLP_PUSH_INTERVAL seconds by the scheduler, or once by ``manage.py push_otlp``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import requests
from django.utils import timezone
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ResourceMessage
from opentelemetry.sdk.resources import Resource

from analytics.client.otlp import EXPORT_TIMEOUT_SECONDS, otlp_destination, otlp_resource
from analytics.metric_families import Exposed
from monitoring.prometheus import exposed_families

logger = logging.getLogger(__name__)

CUMULATIVE = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
SCOPE = InstrumentationScope(name="toolweaver.analytics.server")


class OtlpPushError(Exception):
    """The push was not accepted: nothing configured, the endpoint unreachable, or an HTTP error."""


@dataclass(frozen=True)
class PushResult:
    endpoint: str
    metrics: int
    points: int
    seconds: float


def _value(value) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def _attributes(pairs) -> list[KeyValue]:
    return [KeyValue(key=key, value=_value(value)) for key, value in pairs]


def _metric(item: Exposed, now_ns: int) -> metrics_pb2.Metric:
    family = item.family
    metric = metrics_pb2.Metric(name=family.name, description=family.help, unit=family.unit)
    if family.kind == "counter":
        metric.sum.is_monotonic = True
        metric.sum.aggregation_temporality = CUMULATIVE
    elif family.kind == "histogram":
        metric.histogram.aggregation_temporality = CUMULATIVE
    for sample in item.samples:
        common = {"attributes": _attributes(zip(family.labels, sample.labels, strict=True)),
                  "time_unix_nano": now_ns}
        if family.kind == "counter":
            metric.sum.data_points.add(as_double=sample.value, **common)
        elif family.kind == "gauge":
            metric.gauge.data_points.add(as_double=sample.value, **common)
        else:
            metric.histogram.data_points.add(count=sum(sample.buckets), sum=sample.total,
                                             bucket_counts=list(sample.buckets),
                                             explicit_bounds=list(family.buckets), **common)
    return metric


def export_request(exposed: list[Exposed], resource: Resource, now_ns: int) -> ExportMetricsServiceRequest:
    """The families as one OTLP request; families without samples are left out (OTLP has no empty metric)."""
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add(
        resource=ResourceMessage(attributes=_attributes(resource.attributes.items())))
    scope_metrics = resource_metrics.scope_metrics.add(scope=SCOPE)
    scope_metrics.metrics.extend(_metric(item, now_ns) for item in exposed if item.samples)
    return request


def push_aggregates() -> PushResult:
    destination = otlp_destination()
    if destination is None:
        raise OtlpPushError("no OTLP destination: set OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_ENDPOINT).")
    started = time.monotonic()
    now = timezone.now()
    request = export_request(exposed_families(now), otlp_resource(), int(now.timestamp() * 1e9))
    try:
        response = requests.post(destination.endpoint, data=request.SerializeToString(), timeout=EXPORT_TIMEOUT_SECONDS,
                                 headers={**destination.headers, "Content-Type": "application/x-protobuf"})
    except requests.RequestException as error:
        raise OtlpPushError(f"cannot reach {destination.endpoint}: {type(error).__name__}") from None
    if not response.ok:
        raise OtlpPushError(f"{destination.endpoint} answered HTTP {response.status_code} {response.reason}")
    metrics = request.resource_metrics[0].scope_metrics[0].metrics
    points = sum(len(getattr(metric, metric.WhichOneof("data")).data_points) for metric in metrics)
    result = PushResult(destination.endpoint, len(metrics), points, round(time.monotonic() - started, 3))
    logger.info("push_otlp: %d metrics, %d points to %s in %.2fs", result.metrics, result.points, result.endpoint,
                result.seconds)
    return result

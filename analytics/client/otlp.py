"""The ``otlp`` backend: records into the OpenTelemetry SDK, pushed over OTLP/HTTP.

Instruments are built from ``analytics.metric_families`` (the names Prometheus
shows too). A PeriodicExportingMetricReader pushes every OTLP_PUSH_INTERVAL
seconds; ``push()`` exports at once. Where to (``otlp_destination``): OTLP_ENDPOINT
with Basic auth from OTLP_INSTANCE_ID and OTLP_TOKEN (Grafana Cloud's scheme), or,
without OTLP_ENDPOINT, the standard OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT and
OTEL_EXPORTER_OTLP_(METRICS_)HEADERS. The server's own push (monitoring/otlp_push.py)
uses the same destination and resource.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from importlib import metadata

import requests
from django.conf import settings
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.util.re import parse_env_headers

from analytics.client.base import AnalyticsClient
from analytics.client.config import MASK, client_config
from analytics.metric_families import (
    SKILL_EXECUTIONS,
    SKILL_FAILURES,
    SKILL_FAMILIES,
    SKILL_HEALTH_SCORE,
    SKILL_LATENCY,
    SKILL_RATING,
    SKILL_SUCCESSES,
    MetricFamily,
)

EXPORT_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class OtlpDestination:
    endpoint: str  # the full /v1/metrics URL
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # may hold credentials: never logged

    def header_names(self) -> list[str]:
        return sorted(self.headers)


def metrics_endpoint(endpoint: str) -> str:
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/metrics") else f"{endpoint}/v1/metrics"


def otlp_destination() -> OtlpDestination | None:
    """Where OTLP pushes go, or None when nothing is configured."""
    config = client_config()
    if config.otlp_endpoint:
        headers: dict[str, str] = {}
        if config.otlp_instance_id and config.otlp_token:
            credentials = f"{config.otlp_instance_id}:{config.otlp_token}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        return OtlpDestination(metrics_endpoint(config.otlp_endpoint), headers)
    specific, general = (os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", ""),
                         os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""))
    if not (specific or general):
        return None
    standard_headers = parse_env_headers(os.environ.get("OTEL_EXPORTER_OTLP_METRICS_HEADERS")
                                         or os.environ.get("OTEL_EXPORTER_OTLP_HEADERS", ""), liberal=True)
    return OtlpDestination(specific or metrics_endpoint(general), dict(standard_headers))


def otlp_resource() -> Resource:
    """service.name, service.version and deployment.environment; OTEL_RESOURCE_ATTRIBUTES adds more."""
    attributes = {"service.name": settings.OTLP_SERVICE_NAME,
                  "service.version": metadata.version("toolweaver-analytics")}
    if settings.OTLP_ENVIRONMENT:
        attributes["deployment.environment"] = settings.OTLP_ENVIRONMENT
    return Resource.create(attributes)


class ExportOutcome(requests.Session):
    """A requests session that remembers how the last export went: the SDK's flush says True even on a 404."""

    def __init__(self):
        super().__init__()
        self.detail = "no export yet"

    def request(self, *args, **kwargs):
        try:
            response = super().request(*args, **kwargs)
        except requests.RequestException as error:
            self.detail = f"failed: cannot reach the endpoint ({type(error).__name__})"
            raise
        self.detail = ("ok" if response.ok else "failed") + f" (HTTP {response.status_code} {response.reason})"
        return response


class _OutcomeRecordingExporter(OTLPMetricExporter):
    """Keeps the last export's result, which force_flush does not return."""

    last_result: MetricExportResult | None = None

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        self.last_result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        return self.last_result


def _instrument(meter, family: MetricFamily):
    if family.kind == "counter":
        return meter.create_counter(family.name, unit=family.unit, description=family.help)
    if family.kind == "gauge":
        return meter.create_gauge(family.name, unit=family.unit, description=family.help)
    return meter.create_histogram(family.name, unit=family.unit, description=family.help)


class OtlpBackend(AnalyticsClient):
    name = "otlp"

    def __init__(self):
        destination = otlp_destination()
        if destination is None:
            raise ValueError("OTLP_ENDPOINT is not set (nor OTEL_EXPORTER_OTLP_ENDPOINT): the otlp backend needs "
                             "an OTLP/HTTP endpoint to push to.")
        self._destination = destination
        self._outcome = ExportOutcome()
        self._exporter = _OutcomeRecordingExporter(endpoint=destination.endpoint, headers=destination.headers,
                                                   timeout=EXPORT_TIMEOUT_SECONDS, session=self._outcome)
        reader = PeriodicExportingMetricReader(self._exporter,
                                               export_interval_millis=client_config().otlp_push_interval * 1000)
        views = [
            View(instrument_name=family.name, aggregation=ExplicitBucketHistogramAggregation(family.buckets))
            for family in SKILL_FAMILIES if family.kind == "histogram"
        ]
        self._resource = otlp_resource()
        self._provider = MeterProvider(metric_readers=[reader], views=views, resource=self._resource)
        meter = self._provider.get_meter("toolweaver.analytics")
        self._instruments = {family.name: _instrument(meter, family) for family in SKILL_FAMILIES}
        self._closed = False

    @staticmethod
    def _attributes(skill_id: str, org_slug: str) -> dict:
        return {"skill_id": skill_id, "org_id": org_slug}

    def _record_execution(self, org_slug, item):
        attributes = self._attributes(item.skill_id, org_slug)
        self._instruments[SKILL_EXECUTIONS.name].add(1, attributes)
        self._instruments[(SKILL_SUCCESSES if item.success else SKILL_FAILURES).name].add(1, attributes)
        self._instruments[SKILL_LATENCY.name].record(item.latency_ms, attributes)

    def _record_rating(self, org_slug, item):
        self._instruments[SKILL_RATING.name].set(item.rating, self._attributes(item.skill_id, org_slug))

    def _record_install(self, org_slug, item):
        """Installs have no exported family in seed 001: validated, and not exported."""

    def _record_health_score(self, org_slug, skill_id, score):
        self._instruments[SKILL_HEALTH_SCORE.name].set(score, self._attributes(skill_id, org_slug))

    def push(self) -> bool:
        """Export now; True when the endpoint accepted the export."""
        if self._closed:
            return False
        self._provider.force_flush(timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000)
        return self._exporter.last_result is MetricExportResult.SUCCESS

    def health_check(self) -> dict:
        healthy = not self._closed and self._exporter.last_result is not MetricExportResult.FAILURE
        return {"backend": self.name, "healthy": healthy,
                "detail": f"pushing to {self._destination.endpoint}; last export: {self._outcome.detail}"}

    def get_config_summary(self) -> dict:
        return {**super().get_config_summary(), "otlp_metrics_endpoint": self._destination.endpoint,
                "otlp_headers": {name: MASK for name in self._destination.header_names()},
                "otlp_resource": dict(self._resource.attributes)}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._provider.shutdown(timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000)

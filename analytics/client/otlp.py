"""The ``otlp`` backend: records into the OpenTelemetry SDK, pushed over OTLP/HTTP.

Instruments are built from ``analytics.metric_families`` (the names Prometheus
shows too). A PeriodicExportingMetricReader pushes every OTLP_PUSH_INTERVAL
seconds to ``OTLP_ENDPOINT/v1/metrics`` with Basic auth from OTLP_INSTANCE_ID and
OTLP_TOKEN (Grafana Cloud's scheme); ``push()`` exports at once.
"""

from __future__ import annotations

import base64

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from analytics.client.base import AnalyticsClient
from analytics.client.config import client_config
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


class _OutcomeRecordingExporter(OTLPMetricExporter):
    """Remembers the last export's outcome: the SDK's force_flush reports success even on a 404."""

    last_result: MetricExportResult | None = None

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        self.last_result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        return self.last_result


def metrics_endpoint(endpoint: str) -> str:
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/metrics") else f"{endpoint}/v1/metrics"


def _instrument(meter, family: MetricFamily):
    if family.kind == "counter":
        return meter.create_counter(family.name, unit=family.unit, description=family.help)
    if family.kind == "gauge":
        return meter.create_gauge(family.name, unit=family.unit, description=family.help)
    return meter.create_histogram(family.name, unit=family.unit, description=family.help)


class OtlpBackend(AnalyticsClient):
    name = "otlp"

    def __init__(self):
        config = client_config()
        if not config.otlp_endpoint:
            raise ValueError("OTLP_ENDPOINT is not set: the otlp backend needs an OTLP/HTTP endpoint to push to.")
        self._endpoint = metrics_endpoint(config.otlp_endpoint)
        headers = {}
        if config.otlp_instance_id and config.otlp_token:
            credentials = f"{config.otlp_instance_id}:{config.otlp_token}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        self._exporter = _OutcomeRecordingExporter(endpoint=self._endpoint, headers=headers,
                                                   timeout=EXPORT_TIMEOUT_SECONDS)
        reader = PeriodicExportingMetricReader(self._exporter,
                                               export_interval_millis=config.otlp_push_interval * 1000)
        views = [
            View(instrument_name=family.name, aggregation=ExplicitBucketHistogramAggregation(family.buckets))
            for family in SKILL_FAMILIES if family.kind == "histogram"
        ]
        self._provider = MeterProvider(metric_readers=[reader], views=views,
                                       resource=Resource.create({"service.name": "toolweaver-analytics"}))
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
        last = self._exporter.last_result
        outcome = {None: "no export yet", MetricExportResult.SUCCESS: "ok",
                   MetricExportResult.FAILURE: "failed"}[last]
        return {"backend": self.name, "healthy": not self._closed and last is not MetricExportResult.FAILURE,
                "detail": f"pushing to {self._endpoint}; last export: {outcome}"}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._provider.shutdown(timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000)

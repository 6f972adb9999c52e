"""The ``prometheus`` backend: records into prometheus_client's default registry.

The families of ``analytics.metric_families`` are registered once per process
(creating a second client reuses them). Inside the Django process, the
``/metrics`` view of django-prometheus exposes them and the client starts no
server; in a plain Python process it serves ``/metrics`` itself on
PROMETHEUS_HOST:PROMETHEUS_PORT when PROMETHEUS_ENABLED.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

from analytics.client import running_inside_django_server
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

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_collectors: dict[str, object] = {}
_server: dict[str, Any] = {"started": False, "address": None, "error": None}


def _build(family: MetricFamily):
    if family.kind == "counter":
        return Counter(family.name, family.help, family.labels)
    if family.kind == "gauge":
        return Gauge(family.name, family.help, family.labels)
    return Histogram(family.name, family.help, family.labels, buckets=family.buckets)


def skill_collectors() -> dict[str, object]:
    """Family name → collector in the default registry, created on first use."""
    with _lock:
        if not _collectors:
            for family in SKILL_FAMILIES:
                try:
                    _collectors[family.name] = _build(family)
                except ValueError:
                    # Registered already (this module was reloaded): use the registered collector.
                    _collectors[family.name] = REGISTRY._names_to_collectors[family.name]
        return _collectors


def _serve_metrics_once() -> None:
    config = client_config()
    with _lock:
        if _server["started"] or not config.prometheus_enabled or running_inside_django_server():
            return
        _server["started"] = True
        try:
            start_http_server(config.prometheus_port, addr=config.prometheus_host)
            _server["address"] = f"http://{config.prometheus_host}:{config.prometheus_port}/metrics"
            logger.info("prometheus metrics served at %s", _server["address"])
        except OSError as error:
            _server["error"] = f"cannot serve on {config.prometheus_host}:{config.prometheus_port}: {error.strerror}"
            logger.warning("prometheus backend: %s", _server["error"])


class PrometheusBackend(AnalyticsClient):
    name = "prometheus"

    def __init__(self):
        self._metrics = skill_collectors()
        _serve_metrics_once()

    def _labels(self, family: MetricFamily, skill_id: str, org_slug: str):
        return self._metrics[family.name].labels(skill_id=skill_id, org_id=org_slug)

    def _record_execution(self, org_slug, item):
        self._labels(SKILL_EXECUTIONS, item.skill_id, org_slug).inc()
        outcome = SKILL_SUCCESSES if item.success else SKILL_FAILURES
        self._labels(outcome, item.skill_id, org_slug).inc()
        self._labels(SKILL_LATENCY, item.skill_id, org_slug).observe(item.latency_ms)

    def _record_rating(self, org_slug, item):
        self._labels(SKILL_RATING, item.skill_id, org_slug).set(item.rating)

    def _record_install(self, org_slug, item):
        """Installs have no exported family in seed 001: validated, and not exported."""

    def _record_health_score(self, org_slug, skill_id, score):
        self._labels(SKILL_HEALTH_SCORE, skill_id, org_slug).set(score)

    def health_check(self) -> dict:
        if _server["error"]:
            return {"backend": self.name, "healthy": False, "detail": _server["error"]}
        where = _server["address"] or "the Django /metrics endpoint"
        return {"backend": self.name, "healthy": True,
                "detail": f"{len(SKILL_FAMILIES)} metric families registered, exposed at {where}"}

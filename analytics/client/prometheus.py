"""The ``prometheus`` backend.

In a plain Python process (an orchestrator that does not run Django), ``PrometheusBackend`` records into
prometheus_client's default registry, the families of ``analytics.metric_families`` registered once per
process (creating a second client reuses them), and serves ``/metrics`` itself on
PROMETHEUS_HOST:PROMETHEUS_PORT when PROMETHEUS_ENABLED.

Inside a Django process (the web server, a worker, a management command) the server's ``/metrics`` exposes
what the store holds, whichever process recorded it; there ``ServerPrometheusBackend`` records into the
store, so that what it records is exposed by every web worker (docs/exporters.md).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from prometheus_client import REGISTRY, start_http_server

from analytics.client import running_inside_django_server
from analytics.client.base import AnalyticsClient
from analytics.client.config import client_config
from analytics.client.store import StoreBackend
from analytics.metric_families import (
    SKILL_EXECUTIONS,
    SKILL_FAILURES,
    SKILL_FAMILIES,
    SKILL_HEALTH_SCORE,
    SKILL_LATENCY,
    SKILL_RATING,
    SKILL_SUCCESSES,
    MetricFamily,
    prometheus_metric,
)

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_collectors: dict[str, object] = {}
_server: dict[str, Any] = {"started": False, "address": None, "error": None}


def skill_collectors() -> dict[str, object]:
    """Family name → collector in the default registry, created on first use."""
    with _lock:
        if not _collectors:
            for family in SKILL_FAMILIES:
                try:
                    _collectors[family.name] = prometheus_metric(family)
                except ValueError:
                    # Registered already (this module was reloaded): use the registered collector.
                    _collectors[family.name] = REGISTRY._names_to_collectors[family.name]
        return _collectors


def _serve_metrics_once() -> None:
    config = client_config()
    with _lock:
        # Inside Django (a PrometheusBackend made there directly) the server's /metrics is the endpoint.
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
        where = (f"exposed at {_server['address']}" if _server["address"] else
                 "not served by the client (PROMETHEUS_ENABLED is off, or inside Django, whose /metrics shows the "
                 "store: create_analytics_client('prometheus') records there)")
        return {"backend": self.name, "healthy": True,
                "detail": f"{len(SKILL_FAMILIES)} metric families registered, {where}"}


class ServerPrometheusBackend(StoreBackend):
    """``prometheus`` inside a Django process: recorded into the store, which the server's /metrics exposes."""

    def __init__(self):
        super().__init__(name="prometheus")

    def health_check(self) -> dict:
        check = super().health_check()
        return {**check, "detail": f"{check['detail']}; exposed by the server's /metrics"}


def PrometheusMetrics():  # noqa: N802 - seed 001's class name, ``PrometheusMetrics()``
    """The prometheus backend that fits the process (seed 001's ``PrometheusMetrics``)."""
    return ServerPrometheusBackend() if running_inside_django_server() else PrometheusBackend()

"""Every metric a Grafana dashboard queries is one the server's /metrics exposes (checked against a scrape)."""

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from monitoring.grafana import dashboard_metric_names, load_dashboards

pytestmark = pytest.mark.django_db


def exposed_names(text: str) -> set[str]:
    """Family names and sample names (``_bucket``, ``_sum``, ``_count``, ``_total``) of an exposition."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        names.update(sample.name for sample in family.samples)
    return names


def test_every_panel_queries_only_metrics_the_server_exposes(personas):
    # One request of each kind the process families count, so that they have samples.
    personas.member.post("skills/executions", [{"skill_id": "graphed", "success": True, "latency_ms": 5.0}])
    personas.member.post("skills/executions", [{"skill_id": "graphed"}])  # a rejected one
    response = Client().get("/metrics")
    assert response.status_code == 200
    exposed = exposed_names(response.content.decode())

    used = dashboard_metric_names(load_dashboards())
    assert {"toolweaver_skill_executions_total", "toolweaver_skill_latency_milliseconds_bucket"} <= used
    assert used - exposed == set()

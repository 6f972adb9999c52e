"""The charts of the metric series, service and incident pages: their specs hold the points the data implies."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from alerts.models import AlertIncident
from analytics.models import MetricSeries
from analytics.platform.charts import point_count
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items
from monitoring.models import HealthCheck
from tests.alerts.factories import evaluate, make_rule, record
from tests.monitoring.factories import make_service

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("chart-ops", "chart-ops@example.com", "pw"))
    return client


def page_context(staff, url):
    response = staff.get(url)
    assert response.status_code == 200
    return response.context


def test_a_metric_series_page_charts_its_buckets(personas, staff):
    now = timezone.now()
    ingest_metric_items(personas.org, [MetricItem("queue.depth", 5.0, "gauge", "", "", {"q": "a"},
                                                  now - timedelta(hours=hours)) for hours in (1, 3, 5)])
    series = MetricSeries.objects.get(name="queue.depth")
    context = page_context(staff, f"/admin/analytics/metricseries/{series.pk}/change/")
    chart = context["series_chart"]
    assert [line["name"] for line in chart["series"]] == ["avg per 15m", "p95 per 15m"]
    assert point_count(chart) == 6  # three 15-minute buckets with an event, in two lines
    week = page_context(staff, f"/admin/analytics/metricseries/{series.pk}/change/?range=7d")["series_chart"]
    assert week["series"][0]["name"] == "avg per 1h"
    assert len(week["series"][0]["points"]) > len(chart["series"][0]["points"]) / 2


def test_an_empty_series_range_says_what_to_do(personas, staff):
    ingest_metric_items(personas.org, [MetricItem("old.metric", 1.0, "counter", "", "", {},
                                                  timezone.now() - timedelta(days=3))])
    series = MetricSeries.objects.get(name="old.metric")
    chart = page_context(staff, f"/admin/analytics/metricseries/{series.pk}/change/")["series_chart"]
    assert point_count(chart) == 0
    assert "widen the range, or send events to POST /api/v1/analytics/metrics/record" in chart["empty"]


def test_a_service_page_has_an_uptime_bar_per_day_and_its_response_times(staff):
    service = make_service("payments", sla_target=99.0)
    now = timezone.now()
    checks = [HealthCheck(service=service, checked_at=now - timedelta(days=days, minutes=minutes),
                          status="healthy", response_time_ms=40.0 + minutes)
              for days in (0, 1, 2) for minutes in range(1, 4)]
    HealthCheck.objects.bulk_create(checks)
    context = page_context(staff, f"/admin/monitoring/service/{service.pk}/change/")
    bars = context["uptime_chart"]["series"][0]
    assert len(bars["points"]) == 30  # one bar per day
    assert sum(1 for _, value in bars["points"] if value is not None) >= 3
    assert context["uptime_chart"]["thresholds"] == [{"name": "SLA target", "value": 99.0}]
    assert point_count(context["response_time_chart"]) == 3  # the last 24 hours' checks


def test_an_incident_page_charts_the_rule_value_around_it(personas, staff):
    rule = make_rule(personas.org, metric_name="cpu.usage", threshold=80, window_seconds=300)
    now = timezone.now()
    for minutes in range(40, 0, -1):
        record(personas.org, "cpu.usage", 95 if minutes < 20 else 10, now - timedelta(minutes=minutes))
    evaluate(now - timedelta(minutes=10), rule)
    incident = AlertIncident.objects.get(rule=rule)
    chart = page_context(staff, f"/admin/alerts/alertincident/{incident.pk}/change/")["metric_chart"]
    values = [value for _, value in chart["series"][0]["points"] if value is not None]
    assert len(chart["series"][0]["points"]) == 60
    assert max(values) > 80 > min(values)  # quiet before, breaching after
    assert chart["thresholds"] == [{"name": "threshold", "value": 80.0}]
    assert chart["bands"][0]["start"] == incident.triggered_at.isoformat()

"""Metrics in the admin, retention of raw events, and the demo metrics."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from analytics.admin import MetricEventAdmin
from analytics.models import MetricEvent, MetricSeries
from analytics.platform.admin import CappedCountPaginator
from analytics.platform.collectors import cleanup_old_data
from analytics.platform.windows import Window
from analytics.services import metrics_query as query
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items

pytestmark = pytest.mark.django_db


def test_cleanup_removes_only_events_past_retention(personas, settings):
    settings.ANALYTICS_DB_RETENTION_DAYS = 30
    now = timezone.now()
    ingest_metric_items(personas.org, [
        MetricItem("m", 1.0, timestamp=now - timedelta(days=31)),
        MetricItem("m", 2.0, timestamp=now - timedelta(days=29)),
    ])
    assert cleanup_old_data(now)["metric events"] == 1
    assert list(MetricEvent.objects.values_list("value", flat=True)) == [2.0]
    out = StringIO()
    call_command("cleanup_old_data", stdout=out)
    assert "metric events: 0 removed" in out.getvalue()


def test_cleanup_works_in_bounded_batches(personas, settings, monkeypatch):
    from analytics import retention

    monkeypatch.setattr(retention, "DELETE_BATCH", 7)
    old = timezone.now() - timedelta(days=settings.ANALYTICS_DB_RETENTION_DAYS + 1)
    ingest_metric_items(personas.org, [MetricItem("m", float(i), timestamp=old) for i in range(30)])
    assert cleanup_old_data()["metric events"] == 30
    assert not MetricEvent.objects.exists()


def test_capped_paginator_never_counts_past_its_cap(personas):
    ingest_metric_items(personas.org, [MetricItem("m", float(i), timestamp=timezone.now()) for i in range(12)])
    paginator = CappedCountPaginator(MetricEvent.objects.order_by("pk"), 5)
    paginator.CAP = 10
    assert paginator.count == 10 and paginator.num_pages == 2


def test_a_capped_event_list_says_more_than_the_cap_in_its_count_and_select_all(admin_client, personas,
                                                                              monkeypatch):
    ingest_metric_items(personas.org, [MetricItem("m", float(i), timestamp=timezone.now()) for i in range(12)])
    monkeypatch.setattr(CappedCountPaginator, "CAP", 10)
    monkeypatch.setattr(MetricEventAdmin, "list_per_page", 5)
    page = admin_client.get("/admin/analytics/metricevent/").content.decode()
    assert "more than 10 metric events" in page
    assert "Select all more than 10 metric events" in page and "All more than 10 selected" in page
    assert "Select all 10 " not in page


def test_admin_pages_for_metrics(admin_client, personas):
    ingest_metric_items(personas.org, [MetricItem("api.latency", 12.5, "timer", "ms", tags={"endpoint": "/x"},
                                                  timestamp=timezone.now())])
    series = MetricSeries.objects.get()
    page = admin_client.get("/admin/analytics/metricseries/").content.decode()
    assert "api.latency" in page and "endpoint=/x" in page and "12.5" in page
    assert admin_client.get(f"/admin/analytics/metricseries/{series.pk}/change/").status_code == 200
    events = admin_client.get("/admin/analytics/metricevent/?recent=24h")
    assert events.status_code == 200 and "12.5" in events.content.decode()


def test_demo_metrics_have_a_daily_pattern(personas, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    call_command("seed_demo", "--days", "3", stderr=StringIO())
    from analytics.models import Organization

    acme = Organization.objects.get(slug="acme")
    window = Window(timezone.now() - timedelta(days=3), timezone.now())
    hourly = query.time_series("queue.depth", window, interval="1h", org=acme)
    by_hour = {}
    for moment, value in hourly.points:
        if value is not None:
            by_hour.setdefault(moment.hour, []).append(value)
    peak = sum(by_hour[14]) / len(by_hour[14])
    night = sum(by_hour[2]) / len(by_hour[2])
    assert peak > 3 * night
    names = {info.name for info in query.list_metrics(org=acme)}
    assert {"api.response_time", "queue.depth", "jobs.processed", "cpu.usage"} <= names

"""Tasks go through a real Redis broker to a real worker and back."""

from datetime import timedelta

from celery import Celery
from django.utils import timezone

from analytics.models import MetricEvent, Organization
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items


def test_a_task_runs_end_to_end_on_redis(celery_worker, redis_server):
    app = Celery(broker=redis_server.url(0), backend=redis_server.url(1))
    result = app.send_task("analytics.ping", args=["hello from the test"])
    assert result.get(timeout=30) == "hello from the test"


def test_the_retention_job_runs_in_the_worker_against_the_test_database(celery_worker, redis_server):
    org = Organization.objects.create(slug="acme")
    now = timezone.now()
    ingest_metric_items(org, [
        MetricItem("m", 1.0, timestamp=now - timedelta(days=120)),
        MetricItem("m", 2.0, timestamp=now - timedelta(days=1)),
    ])
    app = Celery(broker=redis_server.url(0), backend=redis_server.url(1))
    removed = app.send_task("analytics.cleanup_old_data").get(timeout=60)
    assert removed["metric events"] == 1
    assert list(MetricEvent.objects.values_list("value", flat=True)) == [2.0]

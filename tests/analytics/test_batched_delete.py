"""delete_in_batches: every matching row goes, a bounded number at a time, nothing else."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.models import MetricEvent
from analytics.platform.batched import delete_in_batches
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items

pytestmark = pytest.mark.django_db


def test_deletes_exactly_the_matching_rows_in_bounded_batches(personas):
    now = timezone.now()
    ingest_metric_items(personas.org, [MetricItem("m", float(i), timestamp=now - timedelta(days=i % 2 * 40))
                                       for i in range(23)])
    old = MetricEvent.objects.filter(timestamp__lt=now - timedelta(days=30))
    assert old.count() == 11
    with CaptureQueriesContext(connection) as queries:
        assert delete_in_batches(old, batch_size=4) == 11
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("DELETE")]
    assert len(deletes) == 3  # 4 + 4 + 3
    assert MetricEvent.objects.count() == 12
    assert delete_in_batches(old, batch_size=4) == 0


def test_a_batch_size_below_one_is_refused(personas):
    with pytest.raises(ValueError):
        delete_in_batches(MetricEvent.objects.all(), batch_size=0)

"""A metric series' last_seen and last_value (the admin's list and the metric page show them) are those of
its newest event, whatever order events arrive in, also when two writers race."""

from datetime import timedelta

from django.utils import timezone

from analytics.models import MetricSeries, Organization
from analytics.platform.contracts import validate_one
from analytics.services.metrics_ingest import MetricItem, _update_last_seen, ingest_metric_items


def item(name: str, value: float, at, **tags) -> MetricItem:
    return validate_one(MetricItem, {"metric_name": name, "value": value, "timestamp": at.isoformat(),
                                     "tags": tags})


def last(name: str, **tags) -> tuple:
    series = MetricSeries.objects.get(name=name, tags=tags)
    return series.last_seen, series.last_value


def test_each_series_keeps_its_newest_event_whatever_the_order_of_arrival(db):
    org, now = Organization.objects.create(slug="acme"), timezone.now().replace(microsecond=0)
    ingest_metric_items(org, [item("cpu", 1, now - timedelta(minutes=3), host="a"),
                              item("cpu", 2, now - timedelta(minutes=1), host="a"),
                              item("cpu", 3, now - timedelta(minutes=2), host="a"),
                              item("cpu", 7, now - timedelta(minutes=5), host="b")])
    assert last("cpu", host="a") == (now - timedelta(minutes=1), 2)
    assert last("cpu", host="b") == (now - timedelta(minutes=5), 7)

    ingest_metric_items(org, [item("cpu", 9, now - timedelta(minutes=4), host="a"),  # older: no change
                              item("cpu", 8, now - timedelta(seconds=30), host="b")])  # newer: the new last
    assert last("cpu", host="a") == (now - timedelta(minutes=1), 2)
    assert last("cpu", host="b") == (now - timedelta(seconds=30), 8)


def test_a_writer_holding_a_stale_row_does_not_overwrite_a_newer_last_event(db):
    org, now = Organization.objects.create(slug="acme"), timezone.now().replace(microsecond=0)
    ingest_metric_items(org, [item("queue", 1, now - timedelta(minutes=10))])
    stale = MetricSeries.objects.get(name="queue")  # what a slower writer read before the other stored
    ingest_metric_items(org, [item("queue", 5, now - timedelta(minutes=1))])
    older = item("queue", 3, now - timedelta(minutes=5))  # newer than the stale row says, older than stored
    _update_last_seen({older.series_key: stale}, [older])
    assert last("queue") == (now - timedelta(minutes=1), 5)

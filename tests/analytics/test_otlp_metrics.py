"""OTLP metrics → metric events (analytics/services/otlp_metrics.py), on SQLite and PostgreSQL.

Exports come from the real OpenTelemetry SDK (a MeterProvider read by an InMemoryMetricReader, encoded as the
OTLP exporters encode it) and, for what the SDK does not send on demand (restarts, old points, odd names),
from hand-built ExportMetricsServiceRequest messages.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connections
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from analytics.models import MetricEvent, MetricSeries, OtlpCumulativeState
from analytics.platform.contracts import MAX_TAGS
from analytics.platform.windows import Window
from analytics.services import metrics_query, otlp_metrics
from analytics.services.otlp_metrics import estimate_quantile, explicit_triples, ingest_metrics

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOW_NANOS = int(NOW.timestamp()) * 10**9
MINUTE = 60 * 10**9
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
RESOURCE = Resource.create({"service.name": "orchestrator"})


def stats(org, name, *, around: datetime | None = None, tags=None):
    moment = around or datetime.now(UTC)
    window = Window(moment - timedelta(hours=1), moment + timedelta(minutes=10))
    return metrics_query.statistics(name, window, org=org, tags=tags)


# --- Hand-built requests -------------------------------------------------------------------------------


def attributes(tags: dict) -> list[KeyValue]:
    return [KeyValue(key=key, value=AnyValue(string_value=value)) for key, value in tags.items()]


def request(*metrics: metrics_pb2.Metric, resource: dict | None = None) -> ExportMetricsServiceRequest:
    message = ExportMetricsServiceRequest()
    resource_metrics = message.resource_metrics.add()
    resource_metrics.resource.attributes.extend(attributes(resource or {"service.name": "agent"}))
    resource_metrics.scope_metrics.add().metrics.extend(metrics)
    return message


def number(value, at: int, *, start: int = 0, tags: dict | None = None) -> metrics_pb2.NumberDataPoint:
    point = metrics_pb2.NumberDataPoint(time_unix_nano=at, start_time_unix_nano=start,
                                        attributes=attributes(tags or {}))
    if isinstance(value, int):
        point.as_int = value
    else:
        point.as_double = value
    return point


def gauge(name: str, *points, unit: str = "") -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, unit=unit, gauge=metrics_pb2.Gauge(data_points=points))


def monotonic(name: str, *points, temporality=CUMULATIVE) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, sum=metrics_pb2.Sum(data_points=points, is_monotonic=True,
                                                             aggregation_temporality=temporality))


def histogram(name: str, *points, temporality=CUMULATIVE) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, histogram=metrics_pb2.Histogram(data_points=points,
                                                                         aggregation_temporality=temporality))


def histogram_point(at: int, bounds, counts, *, total: float, start: int = 0, **extra):
    return metrics_pb2.HistogramDataPoint(time_unix_nano=at, start_time_unix_nano=start, count=sum(counts),
                                          sum=total, explicit_bounds=bounds, bucket_counts=counts, **extra)


# --- The SDK's exports -----------------------------------------------------------------------------------


def sdk_meter(**reader_options):
    reader = InMemoryMetricReader(**reader_options)
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    return provider.get_meter("tests"), reader


def export(reader: InMemoryMetricReader) -> ExportMetricsServiceRequest:
    return encode_metrics(reader.get_metrics_data())


LATENCIES = [1, 2, 3, 4, 6, 7, 8, 9, 30, 49]  # SDK default bounds: 4 in (0, 5], 4 in (5, 10], 2 in (25, 50]


def test_a_counter_an_up_down_counter_a_gauge_and_a_histogram_from_the_sdk(personas):
    meter, reader = sdk_meter()
    calls = meter.create_counter("tool.calls", unit="1")
    calls.add(3, {"tool": "search"})
    calls.add(4, {"tool": "search"})
    depth = meter.create_up_down_counter("queue.depth")
    depth.add(10)
    depth.add(-3)
    meter.create_gauge("cpu.temperature", unit="Cel").set(42.5)
    latency = meter.create_histogram("tool.latency", unit="ms")
    for value in LATENCIES:
        latency.record(value)

    result = ingest_metrics(personas.org, export(reader))

    assert (result.rejected, result.duplicates, result.reason) == (0, 0, "")
    assert result.accepted == 1 + 1 + 1 + 5  # the histogram: count, sum, p50, p95, p99
    calls_stats = stats(personas.org, "tool.calls", tags={"tool": "search", "service.name": "orchestrator"})
    assert (calls_stats.count, calls_stats.sum) == (1, 7)
    assert stats(personas.org, "queue.depth").avg == 7
    assert stats(personas.org, "cpu.temperature").avg == 42.5
    assert stats(personas.org, "tool.latency.count").sum == 10
    assert stats(personas.org, "tool.latency.sum").sum == sum(LATENCIES)
    # histogram_quantile by hand: p50 rank 5 → (5, 10] holding ranks 5-8: 5 + 5·1/4; p95 rank 9.5 → (25, 50]
    # holding 9-10: 25 + 25·1.5/2; p99 rank 9.9: 25 + 25·1.9/2 (all under the max, 49).
    assert stats(personas.org, "tool.latency.p50").avg == pytest.approx(6.25)
    assert stats(personas.org, "tool.latency.p95").avg == pytest.approx(43.75)
    assert stats(personas.org, "tool.latency.p99").avg == pytest.approx(48.75)
    types = dict(MetricSeries.objects.filter(org=personas.org).values_list("name", "metric_type"))
    assert types == {"tool.calls": "counter", "queue.depth": "gauge", "cpu.temperature": "gauge",
                     "tool.latency.count": "counter", "tool.latency.sum": "counter", "tool.latency.p50": "gauge",
                     "tool.latency.p95": "gauge", "tool.latency.p99": "gauge"}
    assert MetricSeries.objects.get(org=personas.org, name="cpu.temperature").unit == "Cel"
    assert MetricSeries.objects.get(org=personas.org, name="tool.calls").source == "otlp"

    # The next collection of the same (cumulative) instruments stores what happened since.
    time.sleep(0.001)
    calls.add(5, {"tool": "search"})
    latency.record(60)
    latency.record(70)
    ingest_metrics(personas.org, export(reader))
    assert stats(personas.org, "tool.calls").sum == 12
    assert stats(personas.org, "tool.latency.count").sum == 12
    assert stats(personas.org, "tool.latency.sum").sum == sum(LATENCIES) + 130
    latest_p50 = MetricEvent.objects.filter(series__name="tool.latency.p50").latest("timestamp").value
    assert latest_p50 == pytest.approx(62.5)  # the interval's two values in (50, 75]: 50 + 25·1/2


def test_the_same_export_twice_stores_once(personas):
    meter, reader = sdk_meter()
    meter.create_counter("jobs").add(3)
    meter.create_gauge("load").set(0.5)
    meter.create_histogram("size").record(12)
    message = export(reader)

    first = ingest_metrics(personas.org, message)
    events = MetricEvent.objects.count()
    again = ingest_metrics(personas.org, message)

    assert first.accepted == events > 0
    assert (again.accepted, again.rejected) == (0, 0)
    assert again.duplicates == 1 + 1 + 1  # the gauge's event id; the counter's and histogram's points
    assert MetricEvent.objects.count() == events
    assert stats(personas.org, "jobs").sum == 3


def test_a_restarted_sdk_process_keeps_the_total_right(personas):
    meter, reader = sdk_meter()
    jobs = meter.create_counter("jobs")
    jobs.add(10)
    ingest_metrics(personas.org, export(reader))
    jobs.add(5)
    ingest_metrics(personas.org, export(reader))
    # The process restarts: a new provider, a new start time, a total lower than the last one.
    time.sleep(0.001)
    meter, reader = sdk_meter()
    meter.create_counter("jobs").add(4)
    ingest_metrics(personas.org, export(reader))
    assert stats(personas.org, "jobs").sum == 10 + 5 + 4


def test_cumulative_resets_follow_the_start_time_and_decreases(personas):
    start, restart = NOW_NANOS - 60 * MINUTE, NOW_NANOS - 20 * MINUTE
    sends = [(5, -50, start), (9, -40, start), (12, -30, start),
             (2, -19, restart),  # new start time (a restart): the increment is the new total
             (6, -10, restart),
             (1, -5, restart)]   # lower total, same start (a reset that kept the start time)
    for value, minutes, started in sends:
        ingest_metrics(personas.org, request(monotonic("tasks", number(value, NOW_NANOS + minutes * MINUTE,
                                                                       start=started))), now=NOW)
    increments = list(MetricEvent.objects.order_by("timestamp").values_list("value", flat=True))
    assert increments == [5, 4, 3, 2, 4, 1]
    assert stats(personas.org, "tasks", around=NOW).sum == 19
    state = OtlpCumulativeState.objects.get(org=personas.org, metric_name="tasks")
    assert (state.value, state.start_time_unix_nano, state.time_unix_nano) == (1, restart, NOW_NANOS - 5 * MINUTE)


def test_a_first_point_without_a_start_time_only_seeds_the_state(personas):
    for value, minutes in ((100, -3), (104, -2), (110, -1)):
        result = ingest_metrics(personas.org, request(monotonic("bytes", number(value, NOW_NANOS + minutes * MINUTE))),
                                now=NOW)
    assert result.accepted == 1
    assert stats(personas.org, "bytes", around=NOW).sum == 10  # 100 may have been counted before anyone listened


def test_points_of_one_series_in_one_export_apply_in_time_order(personas):
    start = NOW_NANOS - 10 * MINUTE
    points = [number(9, NOW_NANOS - 1 * MINUTE, start=start), number(4, NOW_NANOS - 3 * MINUTE, start=start),
              number(9, NOW_NANOS - 1 * MINUTE, start=start)]
    result = ingest_metrics(personas.org, request(monotonic("tasks", *points)), now=NOW)
    assert (result.accepted, result.duplicates) == (2, 1)
    assert stats(personas.org, "tasks", around=NOW).sum == 9


def test_delta_temporality_from_the_sdk(personas):
    meter, reader = sdk_meter(preferred_temporality={Counter: AggregationTemporality.DELTA,
                                                     Histogram: AggregationTemporality.DELTA})
    calls = meter.create_counter("calls")
    sizes = meter.create_histogram("sizes")
    calls.add(3)
    sizes.record(7)
    first = export(reader)
    assert first.resource_metrics[0].scope_metrics[0].metrics[0].sum.aggregation_temporality == DELTA
    ingest_metrics(personas.org, first)
    time.sleep(0.001)
    calls.add(4)
    sizes.record(8)
    sizes.record(9)
    ingest_metrics(personas.org, export(reader))
    assert stats(personas.org, "calls").sum == 7
    assert stats(personas.org, "sizes.count").sum == 3
    assert stats(personas.org, "sizes.sum").sum == 24
    assert not OtlpCumulativeState.objects.exists()


def test_delta_points_sent_twice_store_once(personas):
    message = request(monotonic("calls", number(3, NOW_NANOS - MINUTE), temporality=DELTA))
    assert ingest_metrics(personas.org, message, now=NOW).accepted == 1
    again = ingest_metrics(personas.org, message, now=NOW)
    assert (again.accepted, again.duplicates) == (0, 1)


def test_a_non_monotonic_sum_is_a_gauge_of_the_value_sent(personas):
    metric = metrics_pb2.Metric(name="pool.size", sum=metrics_pb2.Sum(
        data_points=[number(-4, NOW_NANOS - MINUTE)], is_monotonic=False, aggregation_temporality=CUMULATIVE))
    ingest_metrics(personas.org, request(metric), now=NOW)
    assert stats(personas.org, "pool.size", around=NOW).avg == -4
    assert MetricSeries.objects.get(name="pool.size").metric_type == "gauge"


def test_cumulative_histograms_estimate_quantiles_of_each_interval(personas):
    start, bounds = NOW_NANOS - 30 * MINUTE, [10, 100, 1000]
    first = histogram_point(NOW_NANOS - 20 * MINUTE, bounds, [0, 10, 0, 0], total=500, start=start)
    second = histogram_point(NOW_NANOS - 10 * MINUTE, bounds, [0, 10, 20, 0], total=6500, start=start,
                             min=11, max=990)
    ingest_metrics(personas.org, request(histogram("rt", first)), now=NOW)
    ingest_metrics(personas.org, request(histogram("rt", second)), now=NOW)
    p95 = list(MetricEvent.objects.filter(series__name="rt.p95").order_by("timestamp").values_list("value", flat=True))
    # First interval: 10 in (10, 100]: 10 + 90·9.5/10. Second: the 20 new ones in (100, 1000]: 100 + 900·19/20.
    assert p95 == [pytest.approx(95.5), pytest.approx(955)]
    assert stats(personas.org, "rt.count", around=NOW).sum == 30
    assert stats(personas.org, "rt.sum", around=NOW).sum == 6500


def test_histogram_quantile_follows_prometheus():
    buckets = explicit_triples(otlp_metrics.Explicit((1.0, 2.0, 4.0), (2, 2, 4, 2)))
    assert estimate_quantile(0.5, buckets) == 2.5  # rank 5 of 10 in (2, 4] holding ranks 5-8
    assert estimate_quantile(0.1, buckets) == 0.5  # the first bucket spans from 0
    assert estimate_quantile(0.99, buckets) == 4.0  # the overflow bucket: its lower bound, the highest finite one
    assert estimate_quantile(0.99, buckets, high=3.5) == 3.5  # clamped into [min, max]
    assert estimate_quantile(0.5, explicit_triples(otlp_metrics.Explicit((1.0,), (0, 0)))) is None
    negative = explicit_triples(otlp_metrics.Explicit((-5.0, 0.0), (4, 4, 0)))
    assert estimate_quantile(0.25, negative) == -5.0  # a first bound ≤ 0 is the estimate itself
    assert estimate_quantile(0.75, negative) == -2.5


def test_exponential_histograms_and_summaries(personas):
    exponential = metrics_pb2.Metric(name="payload", exponential_histogram=metrics_pb2.ExponentialHistogram(
        aggregation_temporality=DELTA, data_points=[metrics_pb2.ExponentialHistogramDataPoint(
            time_unix_nano=NOW_NANOS - MINUTE, count=8, sum=40, scale=0,
            positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=0, bucket_counts=[0, 4, 4]))]))
    summary_point = metrics_pb2.SummaryDataPoint(
        time_unix_nano=NOW_NANOS - MINUTE, start_time_unix_nano=NOW_NANOS - 5 * MINUTE, count=20, sum=300,
        quantile_values=[metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=q, value=v)
                         for q, v in ((0.5, 12), (0.9, 20), (0.99, 31))])
    summary = metrics_pb2.Metric(name="wait", summary=metrics_pb2.Summary(data_points=[summary_point]))
    result = ingest_metrics(personas.org, request(exponential, summary), now=NOW)
    assert result.rejected == 0
    assert stats(personas.org, "payload.count", around=NOW).sum == 8
    assert stats(personas.org, "payload.p50", around=NOW).avg == 4  # rank 4 fills (2, 4]
    assert stats(personas.org, "wait.count", around=NOW).sum == 20
    assert stats(personas.org, "wait.sum", around=NOW).sum == 300
    assert stats(personas.org, "wait.p50", around=NOW).avg == 12
    assert stats(personas.org, "wait.p99", around=NOW).avg == 31
    assert not MetricSeries.objects.filter(name="wait.p95").exists()  # not sent


def test_old_future_and_non_finite_points_are_rejected_with_reasons(personas):
    days = settings.ANALYTICS_DB_RETENTION_DAYS
    old = NOW_NANOS - (days + 1) * 24 * 60 * MINUTE
    message = request(
        gauge("load", number(1.0, old), number(2.0, old + MINUTE), number(3.0, NOW_NANOS - MINUTE),
              number(4.0, NOW_NANOS + 6 * MINUTE), number(float("nan"), NOW_NANOS), number(1e301, NOW_NANOS)),
        monotonic("jobs", number(5, old, start=old - MINUTE)),
        histogram("rt", histogram_point(old, [1.0], [1, 1], total=3, start=old - MINUTE)),
    )
    result = ingest_metrics(personas.org, message, now=NOW)
    assert (result.accepted, result.rejected) == (1, 7)
    assert result.reason == (f"4 points older than the retention period ({days} days); "
                             "1 point more than 5 minutes in the future; "
                             "2 points with a value that is not a finite number within ±1e+300")
    assert list(MetricEvent.objects.values_list("value", flat=True)) == [3.0]
    assert not OtlpCumulativeState.objects.exists()
    assert not MetricSeries.objects.filter(name__in=["jobs", "rt.count", "rt.sum"]).exists()


def test_a_failed_write_leaves_neither_events_nor_state(personas, monkeypatch):
    def broken(org, items):
        raise RuntimeError("disk full")

    monkeypatch.setattr(otlp_metrics, "ingest_metric_items", broken)
    message = request(monotonic("jobs", number(5, NOW_NANOS - MINUTE, start=NOW_NANOS - 2 * MINUTE)))
    with pytest.raises(RuntimeError):
        ingest_metrics(personas.org, message, now=NOW)
    assert not OtlpCumulativeState.objects.exists()
    monkeypatch.undo()
    assert ingest_metrics(personas.org, message, now=NOW).accepted == 1  # so a retry stores it


def test_tags_merge_resource_and_point_attributes_up_to_the_cap(personas):
    resource = {f"r{i:02}": "resource" for i in range(15)} | {"env": "resource"}
    point_tags = {f"p{i:02}": "point" for i in range(8)} | {"env": "point"}
    message = request(gauge("load", number(1.0, NOW_NANOS - 2 * MINUTE, tags=point_tags),
                            number(2.0, NOW_NANOS - MINUTE, tags=point_tags)), resource=resource)
    result = ingest_metrics(personas.org, message, now=NOW)
    assert result.accepted == 2
    assert result.dropped_attributes == 2 * (16 + 9 - 1 - MAX_TAGS)  # "env" is one tag: the point's value wins
    tags = MetricSeries.objects.get(name="load").tags
    assert len(tags) == MAX_TAGS and tags["env"] == "point"
    assert tags == dict(sorted((resource | point_tags).items())[:MAX_TAGS])  # the cut is in key order


@pytest.mark.parametrize("name", ["", " padded", "padded ", "bell\x07", "x" * 201])
def test_names_outside_the_metric_name_rules_are_rejected(personas, name):
    result = ingest_metrics(personas.org, request(gauge(name, number(1.0, NOW_NANOS - MINUTE))), now=NOW)
    assert (result.accepted, result.rejected) == (0, 1)
    assert "metric name" in result.reason


def test_a_histogram_name_must_leave_room_for_its_suffixes(personas):
    fits, too_long = "h" * 194, "h" * 195
    points = [histogram_point(NOW_NANOS - MINUTE, [1.0], [1, 0], total=0.5, start=NOW_NANOS - 2 * MINUTE)]
    result = ingest_metrics(personas.org, request(histogram(fits, *points), histogram(too_long, *points)), now=NOW)
    assert result.rejected == 1
    assert MetricSeries.objects.filter(name=fits + ".count").exists()


def test_names_are_kept_as_sent(personas):
    ingest_metrics(personas.org, request(gauge("gen_ai.client.token.usage/Ünïcode", number(3.0, NOW_NANOS - MINUTE))),
                   now=NOW)
    assert MetricSeries.objects.get().name == "gen_ai.client.token.usage/Ünïcode"


def test_event_ids_fit_the_column_and_are_per_series_and_time():
    first = otlp_metrics.event_id("m", {"a": "1", "b": "2"}, 5)
    assert first == otlp_metrics.event_id("m", {"b": "2", "a": "1"}, 5)
    assert first != otlp_metrics.event_id("m", {"a": "1"}, 5) != otlp_metrics.event_id("m", {"a": "1"}, 6)
    assert first.startswith("otlp:") and len(first) == 45 <= MetricEvent._meta.get_field("event_id").max_length


def test_orgs_keep_their_own_state(personas):
    message = request(monotonic("jobs", number(5, NOW_NANOS - MINUTE, start=NOW_NANOS - 2 * MINUTE)))
    assert ingest_metrics(personas.org, message, now=NOW).accepted == 1
    assert ingest_metrics(personas.other_org, message, now=NOW).accepted == 1
    assert stats(personas.org, "jobs", around=NOW).sum == 5


@pytest.mark.django_db(transaction=True)
def test_concurrent_exports_of_one_series_apply_one_by_one(personas):
    """Two exporters' totals never both diff against the same state: PostgreSQL locks the state row
    (select_for_update), SQLite runs writing transactions one at a time (IMMEDIATE)."""
    start = NOW_NANOS - 60 * MINUTE

    def send(value, minutes):
        return request(monotonic("tasks", number(value, NOW_NANOS + minutes * MINUTE, start=start)))

    for round_ in range(5):
        name = f"tasks{round_}"
        first, second, third = (send(v, m) for v, m in ((10, -50), (15, -40), (20, -30)))
        for message in (first, second, third):
            message.resource_metrics[0].scope_metrics[0].metrics[0].name = name
        ingest_metrics(personas.org, first, now=NOW)
        barrier = threading.Barrier(2)

        def racer(message, barrier=barrier):
            try:
                barrier.wait()
                ingest_metrics(personas.org, message, now=NOW)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=racer, args=(message,)) for message in (second, third)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert stats(personas.org, name, around=NOW).sum == 20  # never 10 + 5 + 10


@pytest.mark.django_db
def test_series_state_silent_for_the_retention_period_is_cleaned_up(personas, settings):
    from django.utils import timezone

    from analytics import retention

    now = timezone.now()
    for name in ("silent", "active"):
        OtlpCumulativeState.objects.create(org=personas.org, metric_name=name, tags_hash="0" * 40, value=1.0)
    OtlpCumulativeState.objects.filter(metric_name="silent").update(
        updated_at=now - timedelta(days=settings.ANALYTICS_DB_RETENTION_DAYS + 1))
    assert retention.cleanup(now)["otlp cumulative states"] == 1
    assert list(OtlpCumulativeState.objects.values_list("metric_name", flat=True)) == ["active"]

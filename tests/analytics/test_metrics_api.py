"""The metrics endpoints as API.md and seed 003 show them, bad input included."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from analytics.models import MetricEvent, MetricSeries
from analytics.platform.windows import isoformat

pytestmark = pytest.mark.django_db

SEED_RECORD = {
    "metric_name": "api.response_time",
    "value": 125.5,
    "metric_type": "timer",
    "unit": "ms",
    "tags": {"endpoint": "/api/agents", "method": "GET"},
}


def test_the_seeds_record_example_works_as_written(personas):
    response = personas.member.post("metrics/record", SEED_RECORD)
    assert response.status_code == 201
    assert response.json() == {"accepted": 1, "duplicates": 0}
    event = MetricEvent.objects.select_related("series").get()
    assert event.org == personas.org and event.value == 125.5
    assert event.series.tags == {"endpoint": "/api/agents", "method": "GET"}
    assert event.series.metric_type == "timer" and event.series.unit == "ms"


def test_the_seeds_statistics_example_returns_the_seeds_keys(personas):
    values = [50.0, 120.0, 125.5, 200.0, 500.0]
    personas.member.post("metrics/batch", [{**SEED_RECORD, "value": v} for v in values])
    response = personas.member.get("metrics/api.response_time/statistics", {"hours": 24})
    assert response.status_code == 200
    body = response.json()
    assert {"metric_name", "count", "avg", "min", "max", "p50", "p95", "p99"} <= set(body)
    assert body["metric_name"] == "api.response_time" and body["count"] == 5
    assert body["avg"] == pytest.approx(np.mean(values))
    assert body["p95"] == pytest.approx(np.percentile(values, 95))
    assert body["source"] == "raw" and body["end"].endswith("Z")


@pytest.mark.parametrize("shape", ["array", "events"])
def test_batches_in_every_shape(personas, shape):
    items = [{"metric_name": "q.depth", "value": i} for i in range(3)]
    body = items if shape == "array" else {"events": items}
    response = personas.member.post("metrics/batch", body)
    assert response.status_code == 201 and response.json() == {"accepted": 3, "duplicates": 0}


def test_the_same_batch_twice_is_stored_once(personas):
    batch = [{"metric_name": "jobs", "value": 1, "metric_type": "counter", "event_id": f"e{i}"} for i in range(50)]
    assert personas.member.post("metrics/batch", batch).json() == {"accepted": 50, "duplicates": 0}
    assert personas.member.post("metrics/batch", batch).json() == {"accepted": 0, "duplicates": 50}
    assert MetricEvent.objects.count() == 50
    # The same ids in another org are that org's own events.
    assert personas.outsider.post("metrics/batch", batch[:5]).json() == {"accepted": 5, "duplicates": 0}
    # An id repeated inside one batch counts once.
    twice = [{"metric_name": "jobs", "value": 1, "event_id": "x"}] * 2
    assert personas.member.post("metrics/batch", twice).json() == {"accepted": 1, "duplicates": 1}


def test_a_batch_with_one_bad_item_stores_nothing_and_names_it(personas):
    batch = [{"metric_name": "ok", "value": 1}, {"metric_name": "bad", "value": "high"},
             {"metric_name": "ok", "value": 2}]
    response = personas.member.post("metrics/batch", batch)
    assert response.status_code == 400
    assert response.json() == {"errors": [{"index": 1, "value": ["Must be a number."]}]}
    assert MetricEvent.objects.count() == 0 and MetricSeries.objects.count() == 0


def future(minutes):
    return isoformat(timezone.now() + timedelta(minutes=minutes))


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"value": 1}, "metric_name"),
        ({"metric_name": "", "value": 1}, "metric_name"),
        ({"metric_name": "x" * 201, "value": 1}, "metric_name"),
        ({"metric_name": "bad\nname", "value": 1}, "metric_name"),
        ({"metric_name": "m"}, "value"),
        ({"metric_name": "m", "value": "NaN"}, "value"),
        ({"metric_name": "m", "value": True}, "value"),
        ({"metric_name": "m", "value": 1, "metric_type": "summary"}, "metric_type"),
        ({"metric_name": "m", "value": -1, "metric_type": "counter"}, "value"),
        ({"metric_name": "m", "value": 1, "tags": ["a"]}, "tags"),
        ({"metric_name": "m", "value": 1, "tags": {"k": 5}}, "tags"),
        ({"metric_name": "m", "value": 1, "tags": {"k" * 65: "v"}}, "tags"),
        ({"metric_name": "m", "value": 1, "tags": {"k": "v" * 257}}, "tags"),
        ({"metric_name": "m", "value": 1, "tags": {f"k{i}": "v" for i in range(21)}}, "tags"),
        ({"metric_name": "m", "value": 1, "timestamp": "yesterday"}, "timestamp"),
        ({"metric_name": "m", "value": 1, "timestamp": "FUTURE"}, "timestamp"),
        ({"metric_name": "m", "value": 1, "timestamp": "2001-01-01T00:00:00Z"}, "timestamp"),
        ({"metric_name": "m", "value": 1, "event_id": "e" * 129}, "event_id"),
        ({"metric_name": "m", "value": 1, "unit": "u" * 33}, "unit"),
    ],
)
def test_bad_items_get_400_naming_the_field_and_store_nothing(personas, item, field):
    if item.get("timestamp") == "FUTURE":
        item = {**item, "timestamp": future(6)}
    response = personas.member.post("metrics/record", item)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert MetricEvent.objects.count() == 0


def test_a_timestamp_up_to_5_minutes_ahead_is_accepted(personas):
    assert personas.member.post("metrics/record", {"metric_name": "m", "value": 1,
                                                   "timestamp": future(4)}).status_code == 201


@pytest.mark.parametrize("body", [[], {"events": []}, {"events": "x"}, "text", 5])
def test_empty_or_malformed_batches(personas, body):
    response = personas.member.post("metrics/batch", body)
    assert response.status_code == 400
    assert response.json()["errors"]


def test_malformed_json_is_a_400_naming_the_body(personas):
    response = personas.member.client.generic("POST", "/api/v1/analytics/metrics/record", b"{nope",
                                              content_type="application/json")
    assert response.status_code == 400
    assert "body" in response.json()["errors"]


def test_a_batch_over_10000_items_is_refused(personas):
    response = personas.member.post("metrics/batch", [{"metric_name": "m", "value": 1}] * 10_001)
    assert response.status_code == 400
    assert MetricEvent.objects.count() == 0


def test_a_full_10000_item_batch_is_accepted(personas):
    batch = [{"metric_name": "load", "value": i % 97, "tags": {"host": f"h{i % 10}"}} for i in range(10_000)]
    assert personas.member.post("metrics/batch", batch).json() == {"accepted": 10_000, "duplicates": 0}
    assert personas.member.get("metrics/load/statistics").json()["count"] == 10_000


def test_writes_need_a_writing_token_and_staff_must_name_the_org(personas):
    assert personas.reader.post("metrics/record", SEED_RECORD).status_code == 403
    response = personas.staff.post("metrics/record", SEED_RECORD)
    assert response.status_code == 400 and "org" in response.json()["errors"]
    assert personas.staff.post("/api/v1/analytics/metrics/record?org=globex", SEED_RECORD).status_code == 201
    assert MetricEvent.objects.get().org == personas.other_org


def test_reads_are_scoped_to_the_tokens_org(personas):
    personas.member.post("metrics/record", {"metric_name": "m", "value": 1})
    personas.outsider.post("metrics/record", {"metric_name": "m", "value": 100})
    assert personas.member.get("metrics/m/statistics").json()["sum"] == 1
    assert personas.outsider.get("metrics/m/statistics").json()["sum"] == 100
    assert personas.staff.get("metrics/m/statistics").json()["sum"] == 101
    assert personas.staff.get("metrics/m/statistics", {"org": "acme"}).json()["sum"] == 1


def test_windows_in_every_form(personas):
    now = timezone.now()
    personas.member.post("metrics/batch", [
        {"metric_name": "m", "value": 1, "timestamp": isoformat(now - timedelta(minutes=30))},
        {"metric_name": "m", "value": 2, "timestamp": isoformat(now - timedelta(hours=5))},
        {"metric_name": "m", "value": 4, "timestamp": isoformat(now - timedelta(days=3))},
    ])
    stats = lambda **params: personas.member.get("metrics/m/statistics", params).json()  # noqa: E731
    assert stats()["sum"] == 3  # default: 24 hours
    assert stats(hours=1)["sum"] == 1
    assert stats(days=7)["sum"] == 7
    naive_start = (now - timedelta(hours=6)).replace(tzinfo=None).isoformat()
    assert stats(start=naive_start, end=isoformat(now - timedelta(hours=1)))["sum"] == 2
    body = stats(start="2026-01-01T00:00:00", end="2026-01-02T00:00:00")
    assert (body["start"], body["end"]) == ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"hours": "x"}, "hours"),
        ({"hours": "-1"}, "hours"),
        ({"hours": 1, "days": 1}, "days"),
        ({"hours": 1, "start": "2026-01-01"}, "hours"),
        ({"start": "not a time"}, "start"),
        ({"end": "2026-01-01T00:00:00Z"}, "start"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end"),
        ({"tag": "no-colon"}, "tag"),
    ],
)
def test_bad_windows_and_tags_get_400_naming_the_field(personas, params, field):
    response = personas.member.get("metrics/m/statistics", params)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_tag_filters_and_group_by(personas):
    personas.member.post("metrics/batch", [
        {"metric_name": "http", "value": 10, "tags": {"endpoint": "/a", "method": "GET"}},
        {"metric_name": "http", "value": 30, "tags": {"endpoint": "/a", "method": "POST"}},
        {"metric_name": "http", "value": 50, "tags": {"endpoint": "/b:x", "method": "GET"}},
    ])
    filtered = personas.member.get("/api/v1/analytics/metrics/http/statistics?tag=method:GET&tag=endpoint:/b:x")
    assert filtered.json()["count"] == 1 and filtered.json()["sum"] == 50  # split on the first colon
    grouped = personas.member.get("metrics/http/statistics", {"group_by": "endpoint"}).json()
    assert {g["tags"]["endpoint"]: g["sum"] for g in grouped["groups"]} == {"/a": 40, "/b:x": 50}
    assert {"count", "p95", "start", "end"} <= set(grouped["groups"][0])


def test_time_series_endpoint(personas):
    now = timezone.now()
    personas.member.post("metrics/batch", [
        {"metric_name": "m", "value": v, "timestamp": isoformat(now - timedelta(hours=h))}
        for h, v in ((0, 1), (0, 3), (2, 10))
    ])
    body = personas.member.get("metrics/m/time-series", {"hours": 3, "interval": "1h", "aggregate": "sum"}).json()
    assert set(body) == {"metric_name", "interval", "aggregate", "start", "end", "source", "points"}
    values = [point["value"] for point in body["points"]]
    assert len(values) in (4, 5)  # 3 hours touch 4 aligned buckets (5 when `now` sits on a boundary)
    assert values[-1] == 4 and 10 in values and None in values
    assert all(point["timestamp"].endswith(":00:00Z") for point in body["points"])


@pytest.mark.parametrize(("params", "field"), [({"interval": "2h"}, "interval"), ({"aggregate": "median"}, "aggregate"),
                                                ({"interval": "1m", "days": 30}, "interval")])
def test_time_series_bad_parameters(personas, params, field):
    response = personas.member.get("metrics/m/time-series", params)
    assert response.status_code == 400 and field in response.json()["errors"]


def test_metric_list(personas):
    personas.member.post("metrics/batch", [
        {"metric_name": "b.gauge", "value": 1, "unit": "items"},
        {"metric_name": "a.timer", "value": 1, "metric_type": "timer", "unit": "ms", "tags": {"x": "1"}},
        {"metric_name": "a.timer", "value": 1, "metric_type": "timer", "unit": "ms", "tags": {"x": "2"}},
    ])
    personas.outsider.post("metrics/record", {"metric_name": "secret.metric", "value": 1})
    body = personas.member.get("metrics").json()
    assert body["count"] == 2
    assert [(r["name"], r["metric_type"], r["unit"], r["series"]) for r in body["results"]] == [
        ("a.timer", "timer", "ms", 2), ("b.gauge", "gauge", "items", 1)]


def test_metric_names_with_slashes_and_dots_are_addressable(personas):
    personas.member.post("metrics/record", {"metric_name": "queue/orders.depth", "value": 7})
    assert personas.member.get("metrics/queue/orders.depth/statistics").json()["sum"] == 7


def test_values_too_large_to_sum_are_refused_and_the_largest_accepted_sum_finitely(personas):
    # 1.7e308 twice would overflow every sum over the window: such values are a 400 naming `value`.
    for value, message in ((1.7e308, "Must be at most 1e+300."), (-1e301, "Must be at least -1e+300.")):
        response = personas.member.post("metrics/record", {"metric_name": "huge", "value": value})
        assert response.status_code == 400
        assert response.json()["errors"] == {"value": [message]}
    assert not MetricEvent.objects.exists()

    personas.member.post("metrics/batch", [{"metric_name": "huge", "value": 1e300}] * 3)
    stats = personas.member.get("metrics/huge/statistics").json()
    assert stats["sum"] == pytest.approx(3e300) and stats["max"] == 1e300
    points = personas.member.get("metrics/huge/time-series", {"aggregate": "sum"}).json()["points"]
    assert sum(point["value"] or 0 for point in points) == pytest.approx(3e300)


def test_the_average_of_unequal_values_near_the_bound_is_finite(personas):
    # PostgreSQL's avg(float8) keeps a sum of squares: over 1e300 and -1e300 it raised "value out of range".
    personas.member.post("metrics/batch", [{"metric_name": "huge", "value": value} for value in (1e300, -1e300, 5e299)])
    stats = personas.member.get("metrics/huge/statistics").json()
    assert stats["count"] == 3 and stats["avg"] == pytest.approx(5e299 / 3)
    points = personas.member.get("metrics/huge/time-series", {"aggregate": "avg"}).json()["points"]
    assert [point["value"] for point in points if point["value"] is not None] == [pytest.approx(5e299 / 3)]


def test_the_schema_states_the_value_bounds(personas):
    import yaml

    schema = yaml.safe_load(personas.member.get("/api/schema/").content)
    value = schema["components"]["schemas"]["MetricItem"]["properties"]["value"]
    assert (value["minimum"], value["maximum"]) == (-1e300, 1e300)


def test_answers_are_written_without_binary_noise(personas):
    # 0.1 + 0.2 is 0.30000000000000004 in binary floating point; the API writes 0.3 (12 significant digits).
    personas.member.post("metrics/batch", [{"metric_name": "noise", "value": v} for v in (0.1, 0.2)])
    body = personas.member.get("metrics/noise/statistics").json()
    assert 0.1 + 0.2 != 0.3 and body["sum"] == 0.3
    assert body["avg"] == 0.15
    # Large sums (counters) keep their integer part exact.
    personas.member.post("metrics/batch", [{"metric_name": "big", "value": 1234567890123.0, "metric_type": "counter"},
                                           {"metric_name": "big", "value": 1.0, "metric_type": "counter"}])
    assert personas.member.get("metrics/big/statistics").json()["sum"] == 1234567890124.0

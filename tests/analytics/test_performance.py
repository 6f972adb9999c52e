"""``GET performance`` and ``performance_summary``: requests, the 5xx error rate and percentiles per endpoint.

The requests are ``api.response_time`` events as request tracking writes them (tags ``endpoint``, ``method``,
``status``), recorded here with known values so that every figure can be worked out by hand.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.platform.windows import Window
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items
from analytics.services.performance import performance_summary

pytestmark = pytest.mark.django_db

# metric-record POST: ten requests of 10, 20, ... 100 ms; three answered 5xx (500, 502, 503) and two 4xx.
RECORD = list(zip(range(10, 101, 10), ["201"] * 5 + ["400", "404", "500", "502", "503"], strict=True))
LIST = [(5, "200"), (7, "200"), (9, "304"), (11, "200")]  # metric-list GET: no 5xx
BROKEN = [(1000, "500"), (3000, "599")]  # skill-detail GET: every answer a 5xx


def requests(org, endpoint, method, rows, now):
    ingest_metric_items(org, [
        MetricItem("api.response_time", float(ms), "timer", "ms", "", {"endpoint": endpoint, "method": method,
                                                                        "status": status},
                   now - timedelta(minutes=1 + i))
        for i, (ms, status) in enumerate(rows)
    ])


@pytest.fixture
def tracked(personas):
    now = timezone.now()
    requests(personas.org, "metric-record", "POST", RECORD, now)
    requests(personas.org, "metric-list", "GET", LIST, now)
    requests(personas.org, "skill-detail", "GET", BROKEN, now)
    # The other org: five more metric-record POSTs, every one a 500.
    requests(personas.other_org, "metric-record", "POST", [(50, "500")] * 5, now)
    return now


def by_endpoint(rows):
    return {(row["endpoint"], row["method"]): row for row in rows}


def test_the_error_rate_is_the_share_of_5xx_answers_per_endpoint(personas, tracked):
    summary = performance_summary(Window(tracked - timedelta(hours=1), tracked), org=personas.org)
    rows = by_endpoint(row.model_dump() for row in summary.results)
    assert set(rows) == {("metric-record", "POST"), ("metric-list", "GET"), ("skill-detail", "GET")}
    record = rows[("metric-record", "POST")]
    # 3 of 10 answers were 5xx; the 400 and the 404 are the caller's errors, not ours.
    assert (record["requests"], record["error_rate"]) == (10, pytest.approx(0.3))
    assert (rows[("metric-list", "GET")]["requests"], rows[("metric-list", "GET")]["error_rate"]) == (4, 0.0)
    assert (rows[("skill-detail", "GET")]["requests"], rows[("skill-detail", "GET")]["error_rate"]) == (2, 1.0)


def test_percentiles_per_endpoint(personas, tracked):
    summary = performance_summary(Window(tracked - timedelta(hours=1), tracked), org=personas.org)
    record = by_endpoint(row.model_dump() for row in summary.results)[("metric-record", "POST")]
    # 10, 20, ... 100 ms, linear interpolation at rank q × (n − 1) = q × 9:
    #   p50 at 4.5 → 50 + 0.5 × 10 = 55;  p95 at 8.55 → 90 + 0.55 × 10 = 95.5;  p99 at 8.91 → 90 + 0.91 × 10 = 99.1
    assert (record["p50"], record["p95"], record["p99"]) == (
        pytest.approx(55.0), pytest.approx(95.5), pytest.approx(99.1))


def test_the_api_answers_the_callers_org_and_staff_all_orgs(personas, tracked):
    response = personas.member.get("performance", {"hours": 1})
    assert response.status_code == 200
    body = response.json()
    assert {"start", "end", "results"} <= set(body)
    record = by_endpoint(body["results"])[("metric-record", "POST")]
    assert (record["requests"], record["error_rate"]) == (10, pytest.approx(0.3))

    outsider = by_endpoint(personas.outsider.get("performance", {"hours": 1}).json()["results"])
    assert set(outsider) == {("metric-record", "POST")}
    assert (outsider[("metric-record", "POST")]["requests"], outsider[("metric-record", "POST")]["error_rate"]) == (
        5, 1.0)

    # Staff: both orgs together, 15 requests of which 3 + 5 = 8 answered 5xx.
    staff = by_endpoint(personas.staff.get("performance", {"hours": 1}).json()["results"])
    assert (staff[("metric-record", "POST")]["requests"], staff[("metric-record", "POST")]["error_rate"]) == (
        15, pytest.approx(8 / 15))


def test_requests_outside_the_window_do_not_count(personas, tracked):
    # The newest three metric-record requests (1, 2 and 3 minutes ago: 201, 201, 201) are after this window's
    # end; the seven left include all three 5xx: 3 / 7.
    window = Window(tracked - timedelta(hours=1), tracked - timedelta(minutes=3, seconds=30))
    record = by_endpoint(row.model_dump() for row in performance_summary(window, org=personas.org).results)[
        ("metric-record", "POST")]
    assert (record["requests"], record["error_rate"]) == (7, pytest.approx(3 / 7))


def test_no_requests_no_rows(personas):
    now = timezone.now()
    assert performance_summary(Window(now - timedelta(hours=1), now), org=personas.org).results == []
    assert personas.member.get("performance").json()["results"] == []

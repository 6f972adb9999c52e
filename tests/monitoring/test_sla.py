"""SLA arithmetic over hand-built histories, against hand-computed numbers."""

import random
from datetime import UTC, datetime, timedelta

import numpy
import pytest

from monitoring.services import sla
from monitoring.services.sla import Result, Segment

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HOLD = timedelta(seconds=120)  # two intervals of 60 s


def at(seconds):
    return T0 + timedelta(seconds=seconds)


# 0 H, 60 H, 120 U, 180 U, 240 D, (no result until) 600 H, 660 U, (none after)
HISTORY = [
    Result(at(0), "healthy", 100.0),
    Result(at(60), "healthy", 200.0),
    Result(at(120), "unhealthy", None),
    Result(at(180), "unhealthy", None),
    Result(at(240), "degraded", 900.0),
    Result(at(600), "healthy", 300.0),
    Result(at(660), "unhealthy", None),
]


def test_each_result_holds_until_the_next_for_at_most_two_intervals_then_time_is_unknown():
    assert sla.timeline(HISTORY, at(0), at(1000), HOLD) == [
        Segment(at(0), at(120), "healthy"),
        Segment(at(120), at(240), "unhealthy"),
        Segment(at(240), at(360), "degraded"),  # held 2 intervals, not until 600
        Segment(at(360), at(600), "unknown"),
        Segment(at(600), at(660), "healthy"),
        Segment(at(660), at(780), "unhealthy"),
        Segment(at(780), at(1000), "unknown"),
    ]


def test_uptime_downtime_and_budget_over_a_history_with_gaps():
    segments = sla.timeline(HISTORY, at(0), at(1000), HOLD)
    figures = sla.figures(segments, HISTORY, at(0), at(1000))
    # known: 120 H + 120 U + 120 D + 60 H + 120 U = 540 s; up: 300 s; unknown: 240 + 220 = 460 s
    assert figures.known_seconds == 540
    assert figures.seconds["unknown"] == 460
    assert figures.uptime_percentage == pytest.approx(100 * 300 / 540)  # 55.56 %, not 300/1000
    assert figures.downtime_incidents == 2
    assert figures.downtime_minutes == pytest.approx(4.0)
    assert figures.compliant(99.9) is False
    assert figures.error_budget_remaining_minutes(99.9) == pytest.approx(0.001 * 9 - 4)
    # response times of the checks that got an answer: 100, 200, 900, 300
    assert figures.avg_response_time_ms == pytest.approx(375.0)
    assert figures.p95_response_time_ms == pytest.approx(300 + (900 - 300) * 0.85)  # rank 2.85


def test_a_result_before_the_window_holds_into_it():
    segments = sla.timeline(HISTORY, at(90), at(300), HOLD)
    figures = sla.figures(segments, HISTORY, at(90), at(300))
    assert segments[0] == Segment(at(90), at(120), "healthy")
    assert figures.seconds == {"healthy": 30, "unhealthy": 120, "degraded": 60, "unknown": 0}
    assert figures.uptime_percentage == pytest.approx(100 * 90 / 210)
    assert figures.response_count == 1  # only the degraded check at 240 s lies in the window


def test_an_unknown_gap_splits_an_outage_into_two_incidents():
    results = [Result(at(0), "unhealthy"), Result(at(500), "unhealthy")]
    spans = sla.unhealthy_spans(sla.timeline(results, at(0), at(600), HOLD))
    assert spans == [Segment(at(0), at(120), "unhealthy"), Segment(at(500), at(600), "unhealthy")]


def test_consecutive_unhealthy_results_are_one_incident():
    results = [Result(at(s), "unhealthy") for s in range(0, 600, 60)] + [Result(at(600), "healthy", 5.0)]
    figures = sla.figures(sla.timeline(results, at(0), at(700), HOLD), results, at(0), at(700))
    assert figures.downtime_incidents == 1
    assert figures.downtime_minutes == 10
    assert figures.uptime_percentage == pytest.approx(100 * 100 / 700)


def test_no_results_means_no_uptime_figure_rather_than_100_percent():
    figures = sla.figures(sla.timeline([], at(0), at(3600), HOLD), [], at(0), at(3600))
    assert figures.uptime_percentage is None
    assert figures.compliant(99.9) is None
    assert figures.seconds["unknown"] == 3600
    assert figures.avg_response_time_ms is None and figures.p95_response_time_ms is None


def test_merged_pieces_equal_the_whole_even_when_an_outage_crosses_a_boundary():
    whole_segments = sla.timeline(HISTORY, at(0), at(1000), HOLD)
    whole = sla.figures(whole_segments, HISTORY, at(0), at(1000))
    cuts = [0, 150, 200, 700, 1000]  # 150 and 200 fall inside the first outage, 700 inside the second
    parts = [sla.figures(whole_segments, HISTORY, at(a), at(b)) for a, b in zip(cuts, cuts[1:], strict=False)]
    merged = sla.merge(parts)
    assert merged.seconds == whole.seconds
    assert merged.downtime_incidents == whole.downtime_incidents == 2
    assert merged.p95_response_time_ms == pytest.approx(whole.p95_response_time_ms)
    assert merged.avg_response_time_ms == pytest.approx(whole.avg_response_time_ms)


def test_merging_summaries_keeps_the_average_but_cannot_give_a_percentile():
    segments = sla.timeline(HISTORY, at(0), at(1000), HOLD)
    first, second = (sla.figures(segments, HISTORY, at(0), at(500)), sla.figures(segments, HISTORY, at(500), at(1000)))
    second.response_times = None
    second.source = "rollup"
    merged = sla.merge([first, second])
    assert merged.avg_response_time_ms == pytest.approx(375.0)
    assert merged.p95_response_time_ms is None
    assert merged.source == "rollup"


def test_percentile_is_numpys_linear_interpolation():
    rng = random.Random(7)
    for size in (1, 2, 5, 20, 101):
        values = [rng.uniform(0, 1000) for _ in range(size)]
        for q in (50, 95, 99):
            assert sla.percentile(values, q) == pytest.approx(float(numpy.percentile(values, q)))
    assert sla.percentile([], 95) is None


def test_split_days_cuts_at_utc_midnight():
    start = datetime(2026, 3, 30, 18, tzinfo=UTC)
    pieces = sla.split_days(start, datetime(2026, 4, 1, 6, tzinfo=UTC))
    assert pieces == [
        (start, datetime(2026, 3, 31, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
        (datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 1, 6, tzinfo=UTC)),
    ]

"""Skill versions compared (docs/skill-versions.md): figures per version, the two tests, verdicts, the endpoint."""

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.platform.scope import ALL_ORGS
from analytics.platform.windows import Window
from analytics.services import skill_versions
from analytics.services.skill_versions import (
    compare_versions,
    mann_whitney,
    newest_version_regression,
    two_proportion_p_value,
)
from analytics.services.skills import ExecutionItem, record_executions

pytestmark = pytest.mark.django_db


def runs(version, count, *, failures=0, latency=lambda i: 100.0, hours_ago=10.0, skill_id="parse_json"):
    """``count`` executions one second apart from ``hours_ago``; the first ``failures`` of them fail."""
    start = timezone.now() - timedelta(hours=hours_ago)
    return [ExecutionItem(skill_id=skill_id, success=i >= failures, latency_ms=float(latency(i)),
                          skill_version=version, timestamp=start + timedelta(seconds=i)) for i in range(count)]


def last_day():
    return Window(timezone.now() - timedelta(days=1), timezone.now())


def two_sided(z):
    return math.erfc(abs(z) / math.sqrt(2))


# --- The tests themselves -----------------------------------------------------------------------------


def test_mann_whitney_with_ties_by_hand():
    # Ranks of 1 2 2 2 3 3 4 5: 1, then 3 for the three 2s, 5.5 for the two 3s, 7, 8.
    result = mann_whitney([1, 2, 2, 3], [2, 3, 4, 5])
    rank_sum_b = 3 + 5.5 + 7 + 8
    u_b = rank_sum_b - 4 * 5 / 2
    assert result.u_b == u_b == 13.5
    assert result.prob_greater == 13.5 / 16
    tie_term = (3**3 - 3) + (2**3 - 2)
    variance = 4 * 4 / 12 * (9 - tie_term / (8 * 7))
    assert result.p_value == pytest.approx(two_sided((abs(u_b - 8) - 0.5) / math.sqrt(variance)))
    assert result.p_value == pytest.approx(0.1367, abs=1e-4)


def test_mann_whitney_of_identical_samples_is_no_difference():
    assert mann_whitney([5.0] * 40, [5.0] * 40).p_value == 1.0
    assert mann_whitney(range(50), range(50)).p_value == pytest.approx(1.0)


def test_two_proportion_test_by_hand():
    pooled = (190 + 140) / 400
    z = (140 / 200 - 190 / 200) / math.sqrt(pooled * (1 - pooled) * (1 / 200 + 1 / 200))
    assert z == pytest.approx(-6.5795, abs=1e-4)
    assert two_proportion_p_value(190, 200, 140, 200) == pytest.approx(two_sided(z))
    assert two_proportion_p_value(30, 30, 40, 40) == 1.0  # both perfect: nothing to tell apart


# --- Figures per version --------------------------------------------------------------------------------


def test_counts_rates_and_percentiles_per_version_in_the_order_first_seen(personas):
    record_executions(personas.org, [
        *runs("1.0", 4, failures=1, latency=lambda i: [10, 20, 30, 40][i], hours_ago=5),
        *runs("2.0", 5, failures=0, latency=lambda i: [1, 2, 3, 4, 100][i], hours_ago=3),
        *runs("", 2, failures=2, latency=lambda i: 7, hours_ago=20),  # first seen earliest
        *runs("0.9", 3, hours_ago=30),  # outside the window
    ])
    result = compare_versions("parse_json", last_day(), org=personas.org)
    assert [v.skill_version for v in result.versions] == ["", "1.0", "2.0"]
    unversioned, first, second = result.versions
    assert (unversioned.executions, unversioned.success_count, unversioned.success_rate) == (2, 0, 0.0)
    assert unversioned.change is None
    assert (first.executions, first.success_count, first.success_rate) == (4, 3, 0.75)
    # Linear interpolation: p50 at rank 1.5 of 10 20 30 40, p95 at rank 2.85.
    assert first.p50_latency_ms == 25.0
    assert first.p95_latency_ms == pytest.approx(30 + 0.85 * 10)
    assert (second.executions, second.success_rate, second.p50_latency_ms) == (5, 1.0, 3.0)
    assert second.p95_latency_ms == pytest.approx(4 + 0.8 * 96)  # rank 3.8 of 1 2 3 4 100
    assert first.first_seen < first.last_seen < second.first_seen
    change = second.change
    assert change.previous_version == "1.0"
    assert change.success_rate_delta == 0.25
    assert change.p50_latency_delta_ms == 3.0 - 25.0
    assert change.p95_latency_delta_ms == pytest.approx(4 + 0.8 * 96 - 38.5)
    # Too few executions for either test.
    assert (change.success_rate_p_value, change.latency_p_value) == (None, None)
    assert change.verdict.success_rate == change.verdict.latency == "not enough data"
    assert (result.sampled, first.sampled, first.latency_sample_size) == (False, False, 4)
    assert (result.significance_level, result.min_sample) == (0.01, 30)


def test_a_clearly_worse_success_rate_is_worse_with_the_p_value_of_the_formula(personas):
    record_executions(personas.org, [*runs("1", 200, failures=10, hours_ago=12),
                                     *runs("2", 200, failures=60, hours_ago=6)])
    result = compare_versions("parse_json", last_day(), org=personas.org)
    v1, v2 = result.versions
    assert (v1.success_rate, v2.success_rate) == (0.95, 0.7)
    pooled = 330 / 400
    z = (0.7 - 0.95) / math.sqrt(pooled * (1 - pooled) * (2 / 200))
    assert v2.change.success_rate_p_value == pytest.approx(two_sided(z), rel=1e-9)
    assert v2.change.success_rate_p_value < 0.01
    assert v2.change.success_rate_delta == pytest.approx(-0.25)
    assert v2.change.verdict.success_rate == "worse"
    # Equal latencies throughout: every pair ties.
    assert (v2.change.latency_p_value, v2.change.latency_prob_slower) == (1.0, 0.5)
    assert v2.change.verdict.latency == "no significant difference"
    assert newest_version_regression("parse_json", last_day(), org=personas.org) == 1.0


def test_the_same_improvement_the_other_way_is_better(personas):
    record_executions(personas.org, [*runs("1", 200, failures=60, hours_ago=12),
                                     *runs("2", 200, failures=10, hours_ago=6)])
    change = compare_versions("parse_json", last_day(), org=personas.org).versions[1].change
    assert change.verdict.success_rate == "better"
    assert newest_version_regression("parse_json", last_day(), org=personas.org) == 0.0


def test_a_small_difference_is_no_significant_difference_and_a_small_sample_not_enough_data(personas):
    record_executions(personas.org, [*runs("1", 100, failures=5, hours_ago=12),
                                     *runs("2", 100, failures=8, hours_ago=6),
                                     *runs("3", 29, failures=29, latency=lambda i: 10_000, hours_ago=3)])
    v1, v2, v3 = compare_versions("parse_json", last_day(), org=personas.org).versions
    assert 0.01 <= v2.change.success_rate_p_value < 1
    assert v2.change.verdict.success_rate == "no significant difference"
    # Every execution of 3 failed, ten times slower: but 29 are fewer than the minimum sample.
    assert v3.change.verdict.success_rate == v3.change.verdict.latency == "not enough data"
    assert v3.change.success_rate_p_value is None and v3.change.latency_prob_slower == 1.0
    assert newest_version_regression("parse_json", last_day(), org=personas.org) == 0.0


def test_slower_latencies_are_worse_by_the_rank_test(personas):
    record_executions(personas.org, [*runs("1", 40, latency=lambda i: 100 + i, hours_ago=12),
                                     *runs("2", 40, latency=lambda i: 200 + i, hours_ago=6)])
    v1, v2 = compare_versions("parse_json", last_day(), org=personas.org).versions
    assert (v1.p50_latency_ms, v2.p50_latency_ms) == (119.5, 219.5)
    change = v2.change
    assert change.p50_latency_delta_ms == 100.0
    # Every latency of 2 is above every one of 1: U = 40 × 40, no ties.
    assert change.latency_prob_slower == 1.0
    expected = two_sided((1600 - 800 - 0.5) / math.sqrt(40 * 40 * 81 / 12))
    assert change.latency_p_value == pytest.approx(expected, rel=1e-9)
    assert change.latency_p_value < 1e-10
    assert change.verdict.latency == "worse"
    assert change.verdict.success_rate == "no significant difference"
    assert newest_version_regression("parse_json", last_day(), org=personas.org) == 1.0


def test_the_latency_sample_is_the_most_recent_executions(personas, monkeypatch):
    monkeypatch.setattr(skill_versions, "LATENCY_SAMPLE_CAP", 5)
    record_executions(personas.org, runs("1", 8, latency=lambda i: i))  # latencies 0..7, the newest 3..7
    result = compare_versions("parse_json", last_day(), org=personas.org)
    (version,) = result.versions
    assert (result.sampled, version.sampled, version.latency_sample_size, version.executions) == (True, True, 5, 8)
    assert version.p50_latency_ms == 5.0


def test_regression_needs_two_versions_and_none_without_data(personas):
    assert compare_versions("parse_json", last_day(), org=personas.org) is None
    record_executions(personas.org, runs("1", 50, hours_ago=30))
    empty = compare_versions("parse_json", last_day(), org=personas.org)
    assert empty.versions == [] and empty.sampled is False  # executions, none in the window
    record_executions(personas.org, runs("1", 50))
    assert newest_version_regression("parse_json", last_day(), org=personas.org) is None
    assert newest_version_regression("never_seen", last_day(), org=personas.org) is None


def test_versions_are_per_org(personas):
    record_executions(personas.org, runs("1", 40, hours_ago=12))
    record_executions(personas.other_org, [*runs("1", 40, hours_ago=12), *runs("2", 40, failures=40, hours_ago=6)])
    mine = compare_versions("parse_json", last_day(), org=personas.org)
    assert [(v.skill_version, v.executions) for v in mine.versions] == [("1", 40)]
    assert newest_version_regression("parse_json", last_day(), org=personas.org) is None
    assert newest_version_regression("parse_json", last_day(), org=personas.other_org) == 1.0
    every = compare_versions("parse_json", last_day(), org=ALL_ORGS)
    assert [(v.skill_version, v.executions) for v in every.versions] == [("1", 80), ("2", 40)]


# --- The endpoint ------------------------------------------------------------------------------------------


def api_runs(version, count, *, failures=0, hours_ago=10.0):
    return [{"skill_id": item.skill_id, "success": item.success, "latency_ms": item.latency_ms,
             "skill_version": item.skill_version, "timestamp": item.timestamp.isoformat()}
            for item in runs(version, count, failures=failures, hours_ago=hours_ago)]


def test_the_endpoint_shape(personas):
    response = personas.member.post("skills/executions", api_runs("1", 200, failures=10, hours_ago=12)
                                    + api_runs("2", 200, failures=60, hours_ago=6))
    assert response.status_code == 201, response.json()
    response = personas.member.get("skills/parse_json/versions")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"skill_id", "start", "end", "significance_level", "min_sample", "latency_sample_cap",
                         "sampled", "versions"}
    assert (body["skill_id"], body["significance_level"], body["min_sample"], body["sampled"]) == (
        "parse_json", 0.01, 30, False)
    assert body["end"].endswith("Z")
    first, second = body["versions"]
    assert set(first) == {"skill_version", "executions", "success_count", "success_rate", "p50_latency_ms",
                          "p95_latency_ms", "latency_sample_size", "sampled", "first_seen", "last_seen", "change"}
    assert (first["skill_version"], first["executions"], first["success_rate"], first["change"]) == (
        "1", 200, 0.95, None)
    assert set(second["change"]) == {
        "previous_version", "success_rate_delta", "p50_latency_delta_ms", "p95_latency_delta_ms",
        "success_rate_p_value", "latency_p_value", "latency_prob_slower", "verdict"}
    assert second["change"]["verdict"] == {"success_rate": "worse", "latency": "no significant difference"}
    assert second["change"]["success_rate_p_value"] < 0.01


def test_the_default_window_is_seven_days(personas):
    personas.member.post("skills/executions", api_runs("1", 3, hours_ago=24 * 6) + api_runs("2", 3, hours_ago=24 * 8))
    body = personas.member.get("skills/parse_json/versions").json()
    assert [v["skill_version"] for v in body["versions"]] == ["1"]
    assert [v["skill_version"] for v in personas.member.get("skills/parse_json/versions",
                                                            {"days": 9}).json()["versions"]] == ["2", "1"]


def test_the_endpoint_is_scoped_to_the_org_and_404_without_executions(personas):
    personas.member.post("skills/executions", api_runs("1", 3))
    assert personas.outsider.get("skills/parse_json/versions").status_code == 404
    assert personas.member.get("skills/never_seen/versions").status_code == 404
    personas.member.post("skills/ratings", {"skill_id": "rated_only", "rating": 4})
    assert personas.member.get("skills/rated_only/versions").status_code == 404
    personas.outsider.post("skills/executions", api_runs("1", 2) + api_runs("2", 2, hours_ago=1))
    assert [v["executions"] for v in personas.outsider.get("skills/parse_json/versions").json()["versions"]] == [2, 2]
    assert [v["executions"] for v in personas.member.get("skills/parse_json/versions").json()["versions"]] == [3]
    assert [v["executions"] for v in personas.reader.get("skills/parse_json/versions").json()["versions"]] == [3]
    assert [v["executions"] for v in personas.staff.get("skills/parse_json/versions").json()["versions"]] == [5, 2]
    assert [v["executions"] for v in personas.staff.get("skills/parse_json/versions",
                                                        {"org": "globex"}).json()["versions"]] == [2, 2]
    assert personas.anonymous.get("skills/parse_json/versions").status_code == 401


def test_bad_windows_get_400_naming_the_field(personas):
    personas.member.post("skills/executions", api_runs("1", 3))
    response = personas.member.get("skills/parse_json/versions", {"hours": "x"})
    assert response.status_code == 400 and "hours" in response.json()["errors"]
    response = personas.member.get("skills/parse_json/versions", {"hours": 1, "days": 1})
    assert response.status_code == 400 and "days" in response.json()["errors"]
    response = personas.member.get("skills/parse_json/versions", {"start": "yesterday"})
    assert response.status_code == 400 and "start" in response.json()["errors"]

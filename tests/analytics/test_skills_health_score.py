"""The health score's pinned behaviour (docs/health-score.md)."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.platform.scope import ALL_ORGS
from analytics.services import health_score as formula
from analytics.services.health_score import health_score
from analytics.services.skills import (
    ExecutionItem,
    InstallItem,
    RatingItem,
    record_executions,
    record_installs,
    record_ratings,
    set_health_score,
)

pytestmark = pytest.mark.django_db

SKILL = "parse_json"


def put(org, runs, skill_id=SKILL):
    """runs: (hours ago, success, latency_ms)."""
    now = timezone.now()
    record_executions(org, [
        ExecutionItem(skill_id=skill_id, success=success, latency_ms=latency, timestamp=now - timedelta(hours=hours))
        for hours, success, latency in runs
    ])


def score(org=ALL_ORGS, skill_id=SKILL):
    """``score(None)``: all orgs together (the services themselves refuse None)."""
    return health_score(skill_id, org=ALL_ORGS if org is None else org).score


def history(rng, count=60, latency=100.0, failure_rate=0.05, days=(8, 36)):
    """Executions in the 30-day baseline (before the recent week)."""
    return [(rng.uniform(days[0] * 24, days[1] * 24), rng.random() > failure_rate, latency * rng.uniform(0.5, 1.5))
            for _ in range(count)]


def recent(rng, count=40, latency=100.0, failure_rate=0.05):
    return [(rng.uniform(0.1, 160), rng.random() > failure_rate, latency * rng.uniform(0.5, 1.5))
            for _ in range(count)]


def test_no_data_gives_none(personas):
    assert score(personas.org, "never_seen") is None
    record_ratings(personas.org, [RatingItem(skill_id="rated_only", rating=5, timestamp=timezone.now())])
    assert score(personas.org, "rated_only") is None
    put(personas.org, [(24 * 20, True, 10.0)], skill_id="idle")  # only older than the recent week
    assert score(personas.org, "idle") is None


def test_the_score_is_within_0_and_100_and_orders_reliable_over_failing(personas):
    rng = random.Random(1)
    put(personas.org, history(rng) + recent(rng, failure_rate=0.0), skill_id="reliable")
    put(personas.org, history(rng) + recent(rng, failure_rate=0.6), skill_id="failing")
    reliable, failing = score(personas.org, "reliable"), score(personas.org, "failing")
    assert 0 <= failing < reliable <= 100
    assert reliable > 80
    assert failing < 50


@pytest.mark.parametrize("seed, recent_count", [(1, 40), (2, 3), (3, 1), (4, 200)])
def test_more_failures_never_raise_it(personas, seed, recent_count):
    rng = random.Random(seed)
    put(personas.org, history(rng) + recent(rng, count=recent_count))
    record_ratings(personas.org, [RatingItem(skill_id=SKILL, rating=4, timestamp=timezone.now())])
    scores = [score(personas.org)]
    for _ in range(4):
        # fast failures: they must not make the skill look quicker either
        put(personas.org, [(rng.uniform(0.1, 100), False, rng.choice([0.5, 1.0, 5000.0])) for _ in range(3)])
        scores.append(score(personas.org))
    assert all(later <= earlier for earlier, later in zip(scores, scores[1:], strict=False)), scores
    assert scores[-1] < scores[0]


def test_failures_in_the_baseline_change_nothing(personas):
    rng = random.Random(5)
    put(personas.org, history(rng) + recent(rng))
    before = score(personas.org)
    put(personas.org, [(24 * 20, False, 1.0)] * 10)
    assert score(personas.org) == before


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_slower_recent_executions_never_raise_it(personas, seed):
    rng = random.Random(seed)
    baseline = history(rng)
    runs = recent(rng)
    scores = []
    for factor in (1.0, 1.5, 3.0, 10.0):
        put(personas.org, baseline + [(hours, ok, latency * factor) for hours, ok, latency in runs],
            skill_id=f"s{factor}")
        scores.append(score(personas.org, f"s{factor}"))
    assert all(later <= earlier for earlier, later in zip(scores, scores[1:], strict=False)), scores
    assert scores[-1] < scores[0]


def test_a_uniform_slowdown_never_raises_it(personas):
    rng = random.Random(9)
    runs = history(rng) + recent(rng)
    put(personas.org, runs, skill_id="fast")
    put(personas.org, [(hours, ok, latency * 4) for hours, ok, latency in runs], skill_id="slow")
    assert score(personas.org, "slow") <= score(personas.org, "fast")


def test_latency_is_judged_against_the_skills_own_baseline(personas):
    rng = random.Random(3)
    put(personas.org, history(rng, latency=2000) + recent(rng, latency=2000), skill_id="always_slow")
    put(personas.org, history(rng, latency=100) + recent(rng, latency=400), skill_id="got_slower")
    always_slow = health_score("always_slow", org=personas.org).components["latency"]
    got_slower = health_score("got_slower", org=personas.org).components["latency"]
    assert always_slow["score"] > 80
    assert got_slower["score"] < 40
    assert got_slower["baseline_p95_ms"] < got_slower["p95_ms"]


def test_little_data_leaves_latency_out_and_pulls_success_toward_the_prior(personas):
    put(personas.org, [(1, True, 50.0)])
    health = health_score(SKILL, org=personas.org)
    assert health.components["latency"]["score"] is None
    assert health.components["latency"]["weight"] == 0
    assert sum(part["weight"] for name, part in health.components.items()
               if name in formula.WEIGHTS) == pytest.approx(1.0)
    success = health.components["success"]
    assert success["success_rate"] == 1.0
    assert success["score"] < 100  # one success is not proof of perfection
    put(personas.org, [(1, True, 50.0)] * 200)
    assert health_score(SKILL, org=personas.org).components["success"]["score"] > success["score"]


def test_ratings_are_a_bayesian_average(personas):
    put(personas.org, [(1, True, 50.0)], skill_id="one_five")
    put(personas.org, [(1, True, 50.0)], skill_id="many_fives")
    now = timezone.now()
    record_ratings(personas.org, [RatingItem(skill_id="one_five", rating=5, timestamp=now)])
    record_ratings(personas.org, [RatingItem(skill_id="many_fives", rating=5, user_id=f"u{i}", timestamp=now)
                                  for i in range(30)])
    one = health_score("one_five", org=personas.org).components["rating"]
    many = health_score("many_fives", org=personas.org).components["rating"]
    assert 3 < one["bayesian_average"] < many["bayesian_average"] < 5
    assert one["score"] < many["score"]


def test_an_explicit_score_is_returned_until_newer_data_supersedes_it(personas):
    rng = random.Random(4)
    put(personas.org, history(rng) + recent(rng))
    computed = score(personas.org)
    set_health_score(personas.org, SKILL, 12.5)
    health = health_score(SKILL, org=personas.org)
    assert health.score == 12.5
    assert health.computed == computed
    assert health.components["explicit"]["in_effect"] is True

    # Data timed before the explicit score, and installs, do not supersede it.
    put(personas.org, [(2, True, 80.0)])
    record_installs(personas.org, [InstallItem(skill_id=SKILL, timestamp=timezone.now())])
    assert score(personas.org) == 12.5

    record_executions(personas.org, [ExecutionItem(skill_id=SKILL, success=True, latency_ms=90.0,
                                                   timestamp=timezone.now())])
    health = health_score(SKILL, org=personas.org)
    assert health.score == health.computed != 12.5
    assert health.components["explicit"]["in_effect"] is False


def test_a_newer_rating_supersedes_an_explicit_score_too(personas):
    put(personas.org, [(1, True, 50.0)])
    set_health_score(personas.org, SKILL, 99)
    assert score(personas.org) == 99
    record_ratings(personas.org, [RatingItem(skill_id=SKILL, rating=1, timestamp=timezone.now())])
    assert score(personas.org) != 99


def test_an_explicit_score_without_any_data_is_returned(personas):
    set_health_score(personas.org, "manual_only", 70)
    assert score(personas.org, "manual_only") == 70
    assert health_score("manual_only", org=personas.org).computed is None


@pytest.mark.parametrize("bad", [-1, 100.5, float("nan"), "high", None])
def test_an_explicit_score_must_be_0_to_100(personas, bad):
    with pytest.raises(ValueError, match="score"):
        set_health_score(personas.org, SKILL, bad)


def test_health_is_per_org_and_all_orgs_together_for_staff_and_the_client(personas):
    put(personas.org, [(1, True, 50.0)] * 20)
    put(personas.other_org, [(1, False, 50.0)] * 20)
    assert score(personas.org) > score(None) > score(personas.other_org)
    set_health_score(personas.other_org, SKILL, 5)
    assert score(personas.org) != 5
    assert score(None) == 5


# --- Values computed by hand from docs/health-score.md -------------------------------------------------
#
# Each case below sets up data whose figures are known exactly and checks the number the formula of
# docs/health-score.md gives, worked out by hand (the arithmetic is in the comments). Components are
# compared to 0.005 (health_components shows them to two decimals); the score to its one decimal.
#
#   success = 100 × max(0, (s − 0.5) / 0.5),  s = (successes + 9) / (executions + 10)
#   latency = 100 × min(1, max(baseline_p95, 1 ms) / recent_p95)      (10 + 10 successful samples needed)
#   rating  = 100 × (b − 1) / 4,             b = (15 + sum of ratings) / (5 + number of ratings)
#   volume  = 100 × min(1, ln(1 + successes) / ln(101))
#   score   = Σ w × score / Σ w over the components with a score, w = 0.50 / 0.20 / 0.15 / 0.15, to 1 decimal
#
# ln 2 = 0.693147, ln 3 = 1.098612, ln 11 = 2.397895, ln 101 = 4.615121.


def pinned(org, now, recent_runs=(), baseline_runs=(), ratings=(), skill_id=SKILL):
    """recent_runs / baseline_runs: (success, latency_ms); ratings: stars, one user each. Returns Health at now."""
    runs = [ExecutionItem(skill_id=skill_id, success=ok, latency_ms=latency, timestamp=now - timedelta(hours=1 + i))
            for i, (ok, latency) in enumerate(recent_runs)]  # 1 h, 2 h, ... ago: inside the recent week
    runs += [ExecutionItem(skill_id=skill_id, success=ok, latency_ms=latency,
                           timestamp=now - timedelta(days=10, hours=i))  # 10 days ago and earlier: the baseline
             for i, (ok, latency) in enumerate(baseline_runs)]
    if runs:
        record_executions(org, runs)
    if ratings:
        record_ratings(org, [RatingItem(skill_id=skill_id, rating=stars, user_id=f"user-{i}",
                                        timestamp=now - timedelta(hours=1)) for i, stars in enumerate(ratings)])
    return health_score(skill_id, org=org, now=now)


def component(health, name):
    return health.components[name]["score"]


def test_one_success_and_one_five_star_rating_the_seed_000_example_scores_64_9(personas):
    # Seed 000's example, through the client exactly as the seed writes it: one successful execution
    # (145.5 ms) and one 5-star rating, then compute_health_score.
    #   success: s = (1 + 9) / (1 + 10) = 10/11 = 0.909091 → 100 × 0.409091 / 0.5 = 81.8182
    #   latency: 1 successful execution < 10 → no score, weight 0
    #   rating:  b = (15 + 5) / (5 + 1) = 20/6 = 3.3333 stars → 100 × 2.3333 / 4 = 58.3333
    #   volume:  ln 2 / ln 101 = 0.693147 / 4.615121 = 0.150190 → 15.0190
    #   score:   (0.5 × 81.8182 + 0.15 × 58.3333 + 0.15 × 15.0190) / 0.8
    #          = (40.9091 + 8.7500 + 2.2529) / 0.8 = 51.9120 / 0.8 = 64.890 → 64.9
    from analytics import create_analytics_client

    client = create_analytics_client()
    client.record_skill_usage(skill_id="parse_json", user_id="user_123", org_id="org_456", success=True,
                              latency_ms=145.5)
    client.rate_skill(skill_id="parse_json", rating=5, org_id="org_456")
    assert client.compute_health_score("parse_json") == 64.9
    health = health_score("parse_json")
    assert component(health, "success") == pytest.approx(81.8182, abs=0.005)
    assert component(health, "latency") is None and health.components["latency"]["weight"] == 0
    assert component(health, "rating") == pytest.approx(58.3333, abs=0.005)
    assert health.components["rating"]["bayesian_average"] == pytest.approx(3.3333, abs=1e-4)
    assert component(health, "volume") == pytest.approx(15.0190, abs=0.005)
    # The weights left are scaled up to sum to 1: 0.5 / 0.8, 0.15 / 0.8, 0.15 / 0.8.
    assert [health.components[name]["weight"] for name in ("success", "rating", "volume")] == pytest.approx(
        [0.625, 0.1875, 0.1875])


def test_thirty_five_star_ratings_give_4_71_stars(personas):
    # b = (15 + 30 × 5) / (5 + 30) = 165 / 35 = 4.714286 stars → 100 × 3.714286 / 4 = 92.8571
    # With the one successful execution of the case above (success 81.8182, volume 15.0190):
    #   (0.5 × 81.8182 + 0.15 × 92.8571 + 0.15 × 15.0190) / 0.8 = (40.9091 + 13.9286 + 2.2529) / 0.8
    #   = 57.0905 / 0.8 = 71.363 → 71.4
    health = pinned(personas.org, timezone.now(), recent_runs=[(True, 145.5)], ratings=[5] * 30)
    rating = health.components["rating"]
    assert rating["bayesian_average"] == pytest.approx(4.714286, abs=1e-6)
    assert round(rating["bayesian_average"], 2) == 4.71
    assert rating["rating_count"] == 30
    assert rating["score"] == pytest.approx(92.8571, abs=0.005)
    assert health.score == 71.4


def test_no_ratings_count_as_3_stars_scoring_50(personas):
    health = pinned(personas.org, timezone.now(), recent_runs=[(True, 10.0)])
    assert health.components["rating"]["bayesian_average"] == 3.0
    assert component(health, "rating") == 50.0


def test_latency_from_100_to_400_ms_scores_25(personas):
    # 10 successful executions at 400 ms this week, 10 at 100 ms in the baseline: every p95 is the value itself.
    #   latency: 100 × min(1, 100 / 400) = 25
    #   success: s = (10 + 9) / (10 + 10) = 0.95 → 100 × 0.45 / 0.5 = 90
    #   rating:  none → 3 stars → 50
    #   volume:  ln 11 / ln 101 = 2.397895 / 4.615121 = 0.519574 → 51.9574
    #   score:   0.5 × 90 + 0.2 × 25 + 0.15 × 50 + 0.15 × 51.9574 = 45 + 5 + 7.5 + 7.7936 = 65.2936 → 65.3
    health = pinned(personas.org, timezone.now(), recent_runs=[(True, 400.0)] * 10,
                    baseline_runs=[(True, 100.0)] * 10)
    latency = health.components["latency"]
    assert (latency["p95_ms"], latency["baseline_p95_ms"], latency["samples"], latency["baseline_samples"]) == (
        pytest.approx(400.0), pytest.approx(100.0), 10, 10)
    assert latency["score"] == pytest.approx(25.0, abs=0.005)
    assert latency["weight"] == 0.2
    assert component(health, "success") == pytest.approx(90.0, abs=0.005)
    assert component(health, "volume") == pytest.approx(51.9574, abs=0.005)
    assert health.score == 65.3


def test_faster_than_the_baseline_scores_100_never_more(personas):
    # 100 × min(1, 400 / 100) = 100
    health = pinned(personas.org, timezone.now(), recent_runs=[(True, 100.0)] * 10,
                    baseline_runs=[(True, 400.0)] * 10)
    assert component(health, "latency") == 100.0


def test_a_baseline_under_1_ms_is_taken_as_1_ms(personas):
    # Baseline p95 0.25 ms, recent p95 4 ms: 100 × min(1, max(0.25, 1) / 4) = 25 (without the floor: 6.25).
    now = timezone.now()
    floored = pinned(personas.org, now, recent_runs=[(True, 4.0)] * 10, baseline_runs=[(True, 0.25)] * 10,
                     skill_id="sub_ms")
    assert floored.components["latency"]["baseline_p95_ms"] == pytest.approx(0.25)
    assert component(floored, "latency") == pytest.approx(25.0, abs=0.005)
    # A recent p95 of 0.5 ms against that baseline is "faster than 1 ms": 100 × min(1, 1 / 0.5) = 100.
    fast = pinned(personas.org, now, recent_runs=[(True, 0.5)] * 10, baseline_runs=[(True, 0.25)] * 10,
                  skill_id="sub_ms_fast")
    assert component(fast, "latency") == 100.0


def test_latency_needs_ten_successful_executions_in_each_window(personas):
    now = timezone.now()
    # 9 successful + 5 failed this week: the failures do not count towards the 10.
    short = pinned(personas.org, now, recent_runs=[(True, 400.0)] * 9 + [(False, 400.0)] * 5,
                   baseline_runs=[(True, 100.0)] * 10, skill_id="nine")
    assert component(short, "latency") is None
    assert short.components["latency"]["samples"] == 9
    assert "10 successful executions" in short.components["latency"]["note"]
    thin_baseline = pinned(personas.org, now, recent_runs=[(True, 400.0)] * 10,
                           baseline_runs=[(True, 100.0)] * 9, skill_id="thin")
    assert component(thin_baseline, "latency") is None


def test_a_smoothed_success_rate_of_half_or_less_scores_0(personas):
    # 10 failures: s = (0 + 9) / (10 + 10) = 0.45 ≤ 0.5 → success 0; no successes → volume 0, no latency;
    # rating 50. score = (0.5 × 0 + 0.15 × 50 + 0.15 × 0) / 0.8 = 7.5 / 0.8 = 9.375 → 9.4
    health = pinned(personas.org, timezone.now(), recent_runs=[(False, 30.0)] * 10)
    assert component(health, "success") == 0.0
    assert component(health, "volume") == 0.0
    assert component(health, "latency") is None
    assert health.score == 9.4


def test_the_score_is_rounded_once_to_one_decimal(personas):
    # 4 executions, 2 succeeded, no ratings:
    #   success: s = (2 + 9) / (4 + 10) = 11/14 = 0.785714 → 100 × 0.285714 / 0.5 = 57.142857
    #   rating:  50;  volume: ln 3 / ln 101 = 1.098612 / 4.615121 = 0.238046 → 23.804620
    #   score:   (0.5 × 57.142857 + 0.15 × 50 + 0.15 × 23.804620) / 0.8
    #          = (28.571429 + 7.5 + 3.570693) / 0.8 = 39.642122 / 0.8 = 49.552652 → 49.6
    # Rounding the components to two decimals first (57.14, 50, 23.80) would give 49.55 → 49.5.
    health = pinned(personas.org, timezone.now(), recent_runs=[(True, 20.0), (False, 20.0)] * 2)
    assert health.score == 49.6
    assert health.computed == 49.6


def test_the_score_is_rounded_once_with_ratings_too(personas):
    # 2 executions (1 succeeded), ratings 1 and 2 stars by two users:
    #   success: s = (1 + 9) / (2 + 10) = 0.833333 → 66.666667
    #   rating:  b = (15 + 3) / (5 + 2) = 18/7 = 2.571429 → 100 × 1.571429 / 4 = 39.285714
    #   volume:  15.019048 (one success, as in the seed 000 case)
    #   score:   (33.333333 + 5.892857 + 2.252857) / 0.8 = 41.479048 / 0.8 = 51.848810 → 51.8
    # (components rounded first: 66.67, 39.29, 15.02 → 51.8519 → 51.9)
    health = pinned(personas.org, timezone.now(), recent_runs=[(True, 20.0), (False, 20.0)], ratings=[1, 2])
    assert health.score == 51.8

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

"""Leaderboards in hand-built worlds (docs/leaderboards.md): every score below is computed by hand.

Time is controlled: each world is recorded around a fixed NOW and boards are asked with ``now=NOW``.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from analytics import tasks
from analytics.models import LeaderboardEntry, Organization, Skill
from analytics.platform.collectors import declared_periodic_jobs
from analytics.platform.windows import Window
from analytics.services import leaderboards
from analytics.services.leaderboards import (
    compute_leaderboards,
    get_board,
    most_improved_board,
    rating_board,
    trending_new_board,
    usage_board,
)
from analytics.services.skills import ExecutionItem, RatingItem, record_executions, record_ratings

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 11, 15, 30, tzinfo=UTC)


def runs(skill_id, count, days_ago, *, success=True, latency=100.0, user_id=None):
    at = NOW - timedelta(days=days_ago)
    return [ExecutionItem(skill_id=skill_id, success=success, latency_ms=latency, timestamp=at - timedelta(seconds=i),
                          user_id=user_id) for i in range(count)]


def ratings(skill_id, stars: dict[int, int], prefix="u"):
    """{stars: how many users}, each rating by its own user."""
    items, user = [], 0
    for value, count in stars.items():
        for _ in range(count):
            items.append(RatingItem(skill_id=skill_id, rating=value, timestamp=NOW - timedelta(days=1),
                                    user_id=f"{prefix}{user}"))
            user += 1
    return items


def recent(skill_id, count=1):
    """Runs a minute ago in real time, for the job and command, which ask at the real now."""
    at = timezone.now() - timedelta(minutes=1)
    return [ExecutionItem(skill_id=skill_id, success=True, latency_ms=1.0, timestamp=at) for _ in range(count)]


def ranked(board):
    return [(row["rank"], row["skill_id"], pytest.approx(row["score"])) for row in board]


# --- Usage -----------------------------------------------------------------------------


def test_usage_ranks_executions_of_the_30_days_with_ties_in_alphabetical_order(personas):
    record_executions(personas.org, runs("a", 5, 1) + runs("b", 3, 29) + runs("c", 3, 2) + runs("d", 7, 31))
    record_executions(personas.other_org, runs("b", 10, 1))
    board = leaderboards.compute_board("usage", org=personas.org, now=NOW)
    assert ranked(board) == [(1, "a", 5), (2, "b", 3), (3, "c", 3)]  # d's runs are 31 days old
    assert board[0]["success_rate"] == 1.0
    assert ranked(leaderboards.compute_board("usage", now=NOW)) == [(1, "b", 13), (2, "a", 5), (3, "c", 3)]
    assert ranked(usage_board(Window(NOW - timedelta(days=2), NOW), org=personas.org, limit=1)) == [(1, "a", 5)]


# --- Rating ----------------------------------------------------------------------------


def test_one_five_star_vote_does_not_top_two_hundred_ratings_averaging_4_6(personas):
    record_ratings(personas.org, ratings("one_vote", {5: 1}))
    record_ratings(personas.org, ratings("solid", {5: 120, 4: 80}))  # (600 + 320) / 200 = 4.6
    board = rating_board(org=personas.org)
    # (C·m + Σ) / (C + n) with m = 3 stars, C = 10 ratings:
    assert ranked(board) == [(1, "solid", (10 * 3 + 920) / (10 + 200)),  # 4.5238
                             (2, "one_vote", (10 * 3 + 5) / (10 + 1))]  # 3.1818
    assert board[1]["rating_avg"] == 5.0  # the plain mean would have put it first
    assert (board[0]["rating_count"], board[0]["rating_avg"]) == (200, pytest.approx(4.6))


def test_ratings_count_the_current_rating_of_each_user_in_the_org(personas):
    record_ratings(personas.org, [
        RatingItem("s", 1, NOW - timedelta(days=3), user_id="u1"),
        RatingItem("s", 5, NOW - timedelta(days=2), user_id="u1"),  # replaces u1's 1
        RatingItem("s", 4, NOW - timedelta(days=2)),  # anonymous: replaces nothing
    ])
    record_ratings(personas.other_org, [RatingItem("s", 1, NOW, user_id="u1")])
    assert ranked(rating_board(org=personas.org)) == [(1, "s", (30 + 5 + 4) / 12)]
    assert ranked(rating_board()) == [(1, "s", (30 + 5 + 4 + 1) / 13)]


# --- Most improved ---------------------------------------------------------------------


def test_most_improved_weighs_success_rate_and_p95_latency_this_week_against_last(personas):
    org = personas.org
    # improver: 75 % → 95 % success (+20 points); p95 of successful runs 200 → 150 ms (+25 %): 45.
    record_executions(org, runs("improver", 30, 10, latency=200) + runs("improver", 10, 10, success=False,
                                                                         latency=5)
                      + runs("improver", 38, 2, latency=150) + runs("improver", 2, 2, success=False, latency=5))
    # faster: always succeeds, exactly the minimum 20 runs a week, 400 → 300 ms: 25.
    record_executions(org, runs("faster", 20, 9, latency=400) + runs("faster", 20, 1, latency=300))
    # tiny: 0 % → 100 % but 19 runs a week, under the minimum volume.
    record_executions(org, runs("tiny", 19, 9, success=False) + runs("tiny", 19, 1))
    # worse: 100 % → 90 %: −10, not on a board of improvement; steady: no change, score 0.
    record_executions(org, runs("worse", 30, 9) + runs("worse", 27, 1) + runs("worse", 3, 1, success=False))
    record_executions(org, runs("steady", 25, 9) + runs("steady", 25, 1))
    board = most_improved_board(org=org, now=NOW)
    assert ranked(board) == [(1, "improver", 45.0), (2, "faster", 25.0)]
    improver = board[0]
    assert improver["success_rate_last_week"] == 0.75 and improver["success_rate_this_week"] == 0.95
    assert improver["success_rate_change_pp"] == pytest.approx(20.0)
    assert (improver["p95_latency_ms_last_week"], improver["p95_latency_ms_this_week"]) == (200.0, 150.0)
    assert improver["latency_improvement_pct"] == pytest.approx(25.0)
    assert (improver["executions_last_week"], improver["executions_this_week"]) == (40, 40)


def test_most_improved_needs_enough_successful_runs_for_the_latency_term(personas):
    # 25 % → 40 % success, only 5 and 8 successful runs: the latency term (10 → 1000 ms) is left out.
    record_executions(personas.org, runs("s", 5, 9, latency=10) + runs("s", 15, 9, success=False)
                      + runs("s", 8, 2, latency=1000) + runs("s", 12, 2, success=False))
    [row] = most_improved_board(org=personas.org, now=NOW)
    assert row["score"] == pytest.approx(100 * (8 / 20 - 5 / 20))  # 15 points
    assert row["latency_improvement_pct"] is None


def test_the_weeks_meet_without_overlap(personas):
    # A run exactly 7 days before NOW belongs to this week (windows include both ends), not to last week.
    at_the_seam = [ExecutionItem("s", True, 100.0, NOW - timedelta(days=7)) for _ in range(20)]
    record_executions(personas.org, at_the_seam + runs("s", 20, 8, success=False))
    [row] = most_improved_board(org=personas.org, now=NOW)
    assert (row["executions_this_week"], row["executions_last_week"]) == (20, 20)
    assert row["score"] == pytest.approx(100.0)


# --- Trending new ----------------------------------------------------------------------


def test_trending_new_ranks_skills_first_seen_in_14_days_by_growth(personas):
    org = personas.org
    record_executions(org, runs("fresh", 10, 10) + runs("fresh", 30, 3))  # (30 − 10) / max(10, 10) = 2.0
    record_executions(org, runs("big_new", 40, 13) + runs("big_new", 100, 1))  # (100 − 40) / 40 = 1.5
    record_executions(org, runs("newborn", 15, 2))  # first week: (15 − 0) / max(0, 10) = 1.5
    record_executions(org, runs("old", 1, 20) + runs("old", 5, 9) + runs("old", 50, 1))  # seen 20 days ago
    record_executions(org, runs("fading", 20, 12) + runs("fading", 5, 1))  # new but shrinking
    record_executions(personas.other_org, runs("old", 50, 1))  # new in the other org only
    board = trending_new_board(org=org, now=NOW)
    assert ranked(board) == [(1, "fresh", 2.0), (2, "big_new", 1.5), (3, "newborn", 1.5)]
    assert board[2].render()["first_seen"] == "2026-03-09T15:29:46Z"  # the earliest of its runs
    assert (board[0]["executions_this_week"], board[0]["executions_last_week"]) == (30, 10)
    other = trending_new_board(org=personas.other_org, now=NOW)
    assert ranked(other) == [(1, "old", 5.0)]  # (50 − 0) / 10
    assert "old" not in {row["skill_id"] for row in trending_new_board(now=NOW)}  # over all orgs it is old


# --- The cache and the job -------------------------------------------------------------


def test_the_job_caches_every_board_of_every_org_and_of_all_orgs(personas):
    record_executions(personas.org, runs("a", 3, 1) + runs("b", 1, 1))
    record_executions(personas.other_org, runs("c", 2, 1))
    record_ratings(personas.other_org, ratings("a", {4: 2}))
    result = compute_leaderboards(now=NOW)
    assert result["orgs"] == 2 and result["boards"] == 12
    rows = LeaderboardEntry.objects.filter(metric_type="usage")
    assert {(row.org_id, row.rank, row.skill_id, row.score) for row in rows} == {
        (personas.org.id, 1, "a", 3), (personas.org.id, 2, "b", 1), (personas.other_org.id, 1, "c", 2),
        (None, 1, "a", 3), (None, 2, "c", 2), (None, 3, "b", 1),
    }
    assert all(row.computed_at == NOW for row in LeaderboardEntry.objects.all())
    rating = LeaderboardEntry.objects.get(metric_type="rating", org=personas.other_org)
    assert rating.details["rating_count"] == 2
    again = compute_leaderboards(now=NOW + timedelta(minutes=15))
    assert again["rows"] == result["rows"] == LeaderboardEntry.objects.count()  # replaced, not added
    # An org whose data is gone keeps no boards.
    from analytics.models import MetricSeries, SkillExecution, SkillRating

    for model in (MetricSeries, SkillExecution, SkillRating):
        model.objects.filter(org=personas.other_org).delete()
    compute_leaderboards(now=NOW)
    assert not LeaderboardEntry.objects.filter(org=personas.other_org).exists()


def test_a_cached_board_reads_back_as_it_was_computed(personas):
    record_executions(personas.org, runs("a", 25, 9, success=False) + runs("a", 25, 1) + runs("n", 12, 2))
    record_ratings(personas.org, ratings("a", {4: 2}))
    computed = {board_type: leaderboards.compute_board(board_type, org=personas.org, now=NOW)
                for board_type in leaderboards.BOARD_TYPES}
    assert all(computed.values())
    compute_leaderboards(now=NOW)
    for board_type, rows in computed.items():
        computed_at, cached = leaderboards.cached_board(board_type, org=personas.org)
        assert computed_at == NOW
        assert [row.render() for row in cached] == [row.render() for row in rows], board_type
        assert all(isinstance(row, leaderboards.ROW_MODELS[board_type]) for row in cached)


def test_boards_are_served_from_the_cache_until_stale(personas):
    record_executions(personas.org, runs("a", 3, 1))
    compute_leaderboards(now=NOW)
    record_executions(personas.org, runs("b", 9, 1))  # after the job ran
    served = get_board("usage", org=personas.org, now=NOW + timedelta(minutes=29))
    assert served["cached"] is True
    assert served.render()["computed_at"] == "2026-03-11T15:30:00Z"
    assert ranked(served["results"]) == [(1, "a", 3)]
    stale = get_board("usage", org=personas.org, now=NOW + leaderboards.MAX_AGE + timedelta(seconds=1))
    assert stale["cached"] is False
    assert ranked(stale["results"]) == [(1, "b", 9), (2, "a", 3)]
    # ... and what was computed on read is cached in turn.
    assert get_board("usage", org=personas.org, now=NOW + timedelta(minutes=32))["cached"] is True
    assert LeaderboardEntry.objects.filter(org=personas.org, metric_type="usage").count() == 2


def test_a_missing_board_is_computed_on_read_and_cached(personas):
    record_ratings(personas.org, ratings("a", {5: 3}))
    board = get_board("rating", org=personas.org, now=NOW, limit=5)
    assert board["cached"] is False and board.render()["computed_at"] == "2026-03-11T15:30:00Z"
    assert ranked(board["results"]) == [(1, "a", 45 / 13)]
    assert LeaderboardEntry.objects.filter(org=personas.org, metric_type="rating").count() == 1
    assert LeaderboardEntry.objects.filter(org__isnull=True).count() == 0  # only the board asked for
    with pytest.raises(ValueError, match="type"):
        get_board("popularity", org=personas.org)


def test_the_job_is_scheduled_and_has_a_task_and_a_command(personas, capsys):
    job = next(job for job in declared_periodic_jobs() if job.task == "analytics.compute_leaderboards")
    assert job.every == timedelta(minutes=15) and leaderboards.MAX_AGE == 2 * job.every
    record_executions(personas.org, recent("a"))
    assert tasks.compute_leaderboards()["orgs"] == 1
    call_command("compute_leaderboards")
    assert "orgs: 1" in capsys.readouterr().out
    assert LeaderboardEntry.objects.filter(org__isnull=True, metric_type="usage").count() == 1


def test_deleting_a_skill_or_org_takes_its_cached_rows_along(personas):
    record_executions(personas.org, recent("a"))
    compute_leaderboards()
    # Usage and trending new (it is a new skill), for the org and for all orgs.
    assert LeaderboardEntry.objects.filter(skill_id="a").count() == 4
    Skill.objects.filter(skill_id="a").delete()
    assert not LeaderboardEntry.objects.exists()
    record_executions(personas.org, recent("b"))
    compute_leaderboards()
    assert LeaderboardEntry.objects.filter(org=personas.org).exists()
    Organization.objects.filter(pk=personas.org.pk).delete()
    assert not LeaderboardEntry.objects.filter(org__isnull=False).exists()


def test_the_demo_fills_every_board_and_logs_recommendations_with_outcomes(personas):
    import random

    from analytics import demo_leaderboards
    from analytics.demo_skills import seed_skills
    from analytics.models import RecommendationLog
    from analytics.platform.collectors import DemoContext
    from analytics.services.recommendations import effectiveness

    context = DemoContext(days=15, now=timezone.now(), rng=random.Random(1), log=lambda message: None)
    seed_skills(context)
    demo_leaderboards.seed(context)
    for board_type in leaderboards.BOARD_TYPES:
        board = get_board(board_type, org=personas.org)
        assert board["cached"] is True and board["results"], board_type
    assert "agent_planner" in {row["skill_id"] for row in get_board("trending_new")["results"]}
    assert RecommendationLog.objects.filter(strategy="popularity").exists()
    overall = effectiveness(org=personas.org)["overall"]
    assert overall["followed"] and overall["not_followed"]
    count = RecommendationLog.objects.count()
    demo_leaderboards.seed(context)  # idempotent
    assert RecommendationLog.objects.count() == count


def test_a_reader_racing_another_writer_still_answers(personas, monkeypatch):
    from django.db import IntegrityError

    record_executions(personas.org, runs("a", 2, 1))

    def collide(*args, **kwargs):
        raise IntegrityError("another writer stored this board first")

    monkeypatch.setattr(leaderboards, "store_boards", collide)
    board = get_board("usage", org=personas.org, now=NOW)
    assert ranked(board["results"]) == [(1, "a", 2)] and board["cached"] is False

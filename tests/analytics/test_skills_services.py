"""Skill services below the API: the skill_metrics view, long event ids, summaries, retention, demo data."""

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from analytics import retention
from analytics.models import MetricEvent, Skill, SkillExecution, SkillInstall
from analytics.platform.collectors import DemoContext
from analytics.platform.windows import Window
from analytics.services import metrics_query as query
from analytics.services.skills import (
    ExecutionItem,
    InstallItem,
    RatingItem,
    record_executions,
    record_installs,
    record_ratings,
    skill_summaries,
    usage_leaderboard,
)

pytestmark = pytest.mark.django_db


def run(skill_id, success=True, latency=10.0, hours=1, event_id=None, user_id=None):
    return ExecutionItem(skill_id=skill_id, success=success, latency_ms=latency, user_id=user_id,
                         timestamp=timezone.now() - timedelta(hours=hours), event_id=event_id)


def last_day():
    return Window(timezone.now() - timedelta(days=1), timezone.now())


def sql(statement):
    with connection.cursor() as cursor:
        cursor.execute(statement)
        return cursor.fetchall()


def test_seed_001_sql_reads_skill_usage_and_skill_metrics(personas):
    record_executions(personas.org, [run("parse_json", user_id="u1"), run("parse_json", False), run("csv", hours=2)])
    now = timezone.now()
    record_ratings(personas.org, [RatingItem("parse_json", 5, now, user_id="u1"),
                                  RatingItem("parse_json", 2, now, user_id="u2"),
                                  RatingItem("parse_json", 4, now + timedelta(seconds=1), user_id="u2")])
    record_installs(personas.other_org, [InstallItem("parse_json", now), InstallItem("csv", now)])
    assert sorted(sql("SELECT skill_id, COUNT(*) FROM skill_usage GROUP BY skill_id")) == [("csv", 1),
                                                                                            ("parse_json", 2)]
    latest = sql("SELECT * FROM skill_usage ORDER BY timestamp DESC LIMIT 10")
    assert len(latest) == 3
    columns = [column.name for column in connection.introspection.get_table_description(connection.cursor(),
                                                                                         "skill_usage")]
    assert {"skill_id", "user_id", "timestamp", "success", "latency_ms"} <= set(columns)
    metrics = {row[0]: row[1:] for row in sql(
        "SELECT skill_id, rating_1_5_stars, rating_count, install_count, last_updated FROM skill_metrics")}
    assert float(metrics["parse_json"][0]) == 4.5  # u2's newer rating replaced their 2
    assert metrics["parse_json"][1:3] == (2, 1)
    assert metrics["csv"][:3] == (None, 0, 1)
    assert metrics["parse_json"][3] is not None


def test_long_event_ids_still_deduplicate_the_metric_events(personas):
    long_id = "x" * 128
    assert record_executions(personas.org, [run("s", event_id=long_id)]).accepted == 1
    assert record_executions(personas.org, [run("s", event_id=long_id)]).duplicates == 1
    assert MetricEvent.objects.filter(org=personas.org).count() == 2
    assert all(len(event_id) <= 128 for event_id in MetricEvent.objects.values_list("event_id", flat=True))


def test_a_repeated_event_id_inside_one_batch_is_stored_once(personas):
    result = record_executions(personas.org, [run("s", event_id="a"), run("s", event_id="a"), run("s")])
    assert (result.accepted, result.duplicates) == (2, 1)


def test_summaries_cover_every_skill_with_data_most_used_first(personas):
    record_executions(personas.org, [run("busy")] * 3 + [run("quiet")])
    record_installs(personas.org, [InstallItem("installed_only", timezone.now())])
    record_executions(personas.other_org, [run("elsewhere")])
    summaries = skill_summaries(last_day(), org=personas.org)
    assert [summary["skill_id"] for summary in summaries] == ["busy", "quiet", "installed_only"]
    assert summaries[2]["install_count"] == 1
    assert summaries[2]["execution_count"] == 0
    assert len(skill_summaries(last_day())) == 4


def test_the_usage_leaderboard_ranks_by_executions_in_the_window(personas):
    record_executions(personas.org, [run("a")] * 2 + [run("b", success=False)] * 3 + [run("c", hours=30)] * 9)
    board = usage_leaderboard(last_day(), org=personas.org, limit=10)
    assert [(row["rank"], row["skill_id"], row["score"]) for row in board] == [(1, "b", 3), (2, "a", 2)]
    assert board[0]["success_rate"] == 0
    assert len(usage_leaderboard(last_day(), org=personas.org, limit=1)) == 1


def test_retention_removes_old_executions_in_batches_and_keeps_the_rest(personas, settings, monkeypatch):
    monkeypatch.setattr(retention, "DELETE_BATCH", 3)
    settings.ANALYTICS_DB_RETENTION_DAYS = 10
    record_executions(personas.org, [run("s", hours=24 * 20)] * 7 + [run("s")] * 2)
    record_installs(personas.org, [InstallItem("s", timezone.now() - timedelta(days=20))])
    removed = retention.cleanup(timezone.now())
    assert removed["skill executions"] == 7
    assert SkillExecution.objects.count() == 2
    assert SkillInstall.objects.count() == 1


def test_the_demo_seeds_30_skills_with_different_behaviours(personas):
    context = DemoContext(days=8, now=timezone.now(), rng=random.Random(1), log=lambda message: None)
    from analytics.demo_skills import seed_skills

    seed_skills(context)
    assert Skill.objects.count() == 30
    assert Skill.objects.filter(deprecated=True).count() == 1
    stats = {summary["skill_id"]: summary for summary in skill_summaries(Window(context.now - timedelta(days=8),
                                                                                 context.now))}
    assert stats["parse_json"]["success_rate"] > 0.98
    assert stats["legacy_scraper"]["success_rate"] < 0.8
    assert stats["render_report"]["p95_latency_ms"] > stats["parse_json"]["p95_latency_ms"] * 5
    assert all(summary["rating_count"] > 0 and summary["install_count"] > 0 for summary in stats.values())
    assert stats["legacy_scraper"]["health_score"] < stats["parse_json"]["health_score"]
    week = Window(context.now - timedelta(days=6), context.now)
    planner = query.time_series("skill.executions", week, interval="1d", aggregate="sum",
                                tags={"skill_id": "agent_planner"}).points
    assert (planner[-2][1] or 0) > (planner[1][1] or 0)  # trending up
    count = SkillExecution.objects.count()
    seed_skills(context)  # idempotent
    assert SkillExecution.objects.count() == count


def test_explicit_scores_of_several_skills_are_superseded_each_by_its_own_newer_data(personas):
    from analytics.services.health_score import health_scores
    from analytics.services.skills import set_health_score

    now = timezone.now()
    record_executions(personas.org, [run("early"), run("late"), run("quiet")])
    set_health_score(personas.org, "early", 10.0, recorded_at=now - timedelta(minutes=30))
    set_health_score(personas.org, "late", 20.0, recorded_at=now - timedelta(minutes=5))
    set_health_score(personas.org, "quiet", 30.0, recorded_at=now - timedelta(minutes=30))
    # Between the two explicit times: newer than early's score, older than late's. Nothing new for quiet.
    between = now - timedelta(minutes=15)
    record_executions(personas.org, [
        ExecutionItem(skill_id=skill, success=True, latency_ms=5.0, timestamp=between) for skill in ("early", "late")])
    scores = health_scores(["early", "late", "quiet"], org=personas.org)
    assert [scores[skill].components["explicit"]["in_effect"] for skill in ("early", "late", "quiet")] == [
        False, True, True]
    assert scores["late"].score == 20.0 and scores["quiet"].score == 30.0 and scores["early"].score != 10.0

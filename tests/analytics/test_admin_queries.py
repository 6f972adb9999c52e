"""Admin change lists of analytics cost the same number of queries for 2 rows as for 6, and show the right figures."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.models import (
    LeaderboardEntry,
    MetricSeries,
    Organization,
    RecommendationLog,
    Skill,
    SkillExecution,
    SkillHealthScore,
)
from analytics.platform.scope import PLATFORM
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items

pytestmark = pytest.mark.django_db


def queries_of_page(client, url) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries.captured_queries), response


def assert_count_does_not_grow(client, url, add_rows):
    """Load the page with 2 rows, then with 6: the same number of queries."""
    add_rows(0, 2)
    with_two, first = queries_of_page(client, url)
    assert len(first.context["cl"].result_list) == 2
    add_rows(2, 6)
    with_six, second = queries_of_page(client, url)
    assert len(second.context["cl"].result_list) == 6
    assert with_six == with_two
    return second


def orgs():
    return [Organization.objects.create(slug="org-a", name="A"), None]


def test_metric_series_list_counts_events_per_minute_in_one_query(admin_client):
    now = timezone.now()
    scopes = orgs()

    def add_rows(first, last):
        for index in range(first, last):
            org = scopes[index % 2]
            items = [MetricItem(f"m{index}", 1.0, timestamp=now - timedelta(minutes=minute))
                     for minute in range(index * 6)]  # 6 events/hour per index, and 2 older ones
            items += [MetricItem(f"m{index}", 1.0, timestamp=now - timedelta(hours=2, minutes=m)) for m in (1, 2)]
            ingest_metric_items(org or PLATFORM, items)  # None: rows of the platform scope

    page = assert_count_does_not_grow(admin_client, "/admin/analytics/metricseries/", add_rows)
    shown = {series.name: series.events_last_hour for series in page.context["cl"].result_list}
    assert shown == {f"m{index}": index * 6 for index in range(6)}
    html = page.content.decode()
    assert "<td class=\"field-events_per_minute\">0.5</td>" in html  # m5: 30 events in the hour
    assert MetricSeries.objects.filter(org__isnull=True).exists()


def skills(first, last):
    return [Skill.objects.get_or_create(skill_id=f"skill-{index}")[0] for index in range(first, last)]


def add_skill_rows(org, first, last, *, explicit_scores):
    for skill in skills(first, last):
        if explicit_scores:
            SkillHealthScore.objects.create(org=org, skill=skill, score=70.0, source="admin",
                                            recorded_at=timezone.now() - timedelta(hours=1))
        SkillExecution.objects.create(org=org, skill=skill, user_id="u", success=True, latency_ms=10.0,
                                      timestamp=timezone.now())


def test_skill_list_does_not_query_per_row(admin_client, personas):
    page = assert_count_does_not_grow(admin_client, "/admin/analytics/skill/", lambda first, last: add_skill_rows(
        personas.org, first, last, explicit_scores=False))
    assert all("health" in skill.figures for skill in page.context["cl"].result_list)


def test_skill_list_with_explicit_health_scores_does_not_query_per_row(admin_client, personas):
    assert_count_does_not_grow(admin_client, "/admin/analytics/skill/", lambda first, last: add_skill_rows(
        personas.org, first, last, explicit_scores=True))


@pytest.mark.parametrize("url", ["/admin/analytics/skillexecution/", "/admin/analytics/skillhealthscore/"])
def test_skill_row_lists_do_not_query_per_row(admin_client, personas, url):
    assert_count_does_not_grow(admin_client, url, lambda first, last: add_skill_rows(
        personas.org, first, last, explicit_scores=True))


def test_leaderboard_list_does_not_query_per_row(admin_client):
    scopes = orgs()

    def add_rows(first, last):
        for index, skill in enumerate(skills(first, last), start=first):
            LeaderboardEntry.objects.create(org=scopes[index % 2], metric_type="most_used", rank=index + 1,
                                            skill=skill, score=10.0 - index, computed_at=timezone.now())

    page = assert_count_does_not_grow(admin_client, "/admin/analytics/leaderboardentry/", add_rows)
    html = page.content.decode()
    assert "skill-5" in html and "all orgs" in html and "org-a" in html


def test_recommendation_log_does_not_query_per_row(admin_client):
    scopes = orgs()

    def add_rows(first, last):
        for index, skill in enumerate(skills(first, last), start=first):
            RecommendationLog.objects.create(org=scopes[index % 2], user_id=f"u{index}", skill=skill, score=0.5,
                                             reason="r", strategy="popularity")

    page = assert_count_does_not_grow(admin_client, "/admin/analytics/recommendationlog/", add_rows)
    assert "skill-5" in page.content.decode()


@pytest.mark.parametrize("url", ["/admin/analytics/metricevent/", "/admin/analytics/apitoken/",
                                 "/admin/analytics/organization/"])
def test_other_lists_do_not_query_per_row(admin_client, url):
    from analytics.models import ApiToken

    def add_rows(first, last):
        for index in range(first, last):
            org = Organization.objects.create(slug=f"o{index}", name=f"O{index}")
            ApiToken.issue(org, name=f"t{index}")
            ingest_metric_items(org if index % 2 else PLATFORM,
                                [MetricItem(f"e{index}", 1.0, timestamp=timezone.now())])

    assert_count_does_not_grow(admin_client, url, add_rows)

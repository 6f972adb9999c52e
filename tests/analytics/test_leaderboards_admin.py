"""The admin shows the leaderboards and adoption on the skill pages, and the recommendation log read-only."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from analytics.models import LeaderboardEntry, RecommendationLog, Skill
from analytics.platform.windows import Window
from analytics.services.leaderboards import compute_leaderboards
from analytics.services.recommendations import serve_recommendations
from analytics.services.skills import ExecutionItem, record_executions

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def run(skill_id, user_id, hours_ago):
    return ExecutionItem(skill_id=skill_id, success=True, latency_ms=10.0, user_id=user_id,
                         timestamp=timezone.now() - timedelta(hours=hours_ago))


@pytest.fixture
def recorded(personas):
    record_executions(personas.org, [run("parse_json", "u1", 1), run("parse_json", "u1", 2),
                                     run("parse_json", "u2", 1), run("csv_tools", "u2", 1)])
    compute_leaderboards()
    return personas


def test_the_skill_list_shows_the_boards_and_adoption(admin_client, recorded):
    page = admin_client.get("/admin/analytics/skill/").content.decode()
    assert 'id="skill-leaderboards"' in page and 'id="skill-adoption"' in page
    assert "most_improved" in page and "trending_new" in page
    assert "2 of 2 skills used" in page  # the catalogue: parse_json, csv_tools
    assert "acme" in page


def test_the_skill_page_shows_its_ranks_and_adoption(admin_client, recorded):
    skill = Skill.objects.get(skill_id="parse_json")
    page = admin_client.get(f"/admin/analytics/skill/{skill.pk}/change/").content.decode()
    assert "top by usage" in page and "#1" in page and "all orgs" in page
    assert "2 users of 2 active (100.0%), in 1 org(s)" in page
    LeaderboardEntry.objects.all().delete()
    page = admin_client.get(f"/admin/analytics/skill/{skill.pk}/change/").content.decode()
    assert "On no cached leaderboard." in page


def test_the_leaderboard_cache_is_listed_read_only(admin_client, recorded):
    response = admin_client.get("/admin/analytics/leaderboardentry/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "parse_json" in page and "all orgs" in page
    assert "Add leaderboard entry" not in page
    assert admin_client.get("/admin/analytics/leaderboardentry/?metric_type__exact=usage").status_code == 200


def test_the_recommendation_log_is_read_only_with_its_outcome(admin_client, recorded):
    now = timezone.now()
    window = Window(now - timedelta(days=30), now)
    serve_recommendations("u1", window, org=recorded.org, now=now - timedelta(hours=3))  # csv_tools, then used
    record_executions(recorded.org, [run("csv_tools", "u1", 0.5)])
    serve_recommendations("u3", window, org=recorded.org, limit=1)  # new user: pending
    response = admin_client.get("/admin/analytics/recommendationlog/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "used by 1 of 1 users who use parse_json" in page
    assert "followed " in page and "pending" in page
    assert 'id="recommendation-effectiveness"' in page
    assert "<td>100%</td>" in page  # csv_tools: followed, the only decided one
    row = RecommendationLog.objects.filter(user_id="u1").get()
    change = admin_client.get(f"/admin/analytics/recommendationlog/{row.pk}/change/")
    assert change.status_code == 200 and "followed" in change.content.decode()
    assert admin_client.post(f"/admin/analytics/recommendationlog/{row.pk}/delete/").status_code == 403
    assert "Add recommendation log" not in page

"""The skill admin pages load, show health and figures, and never count the whole executions table."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.models import Skill, SkillExecution, SkillHealthScore
from analytics.platform.admin import CappedCountPaginator
from analytics.services.skills import ExecutionItem, RatingItem, record_executions, record_ratings

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def recorded(personas):
    now = timezone.now()
    record_executions(personas.org, [
        ExecutionItem(skill_id="parse_json", success=i % 10 != 0, latency_ms=float(10 + i), user_id=f"u{i % 3}",
                      timestamp=now - timedelta(minutes=i), error_type="" if i % 10 else "TimeoutError")
        for i in range(40)
    ])
    record_ratings(personas.org, [RatingItem(skill_id="parse_json", rating=4, timestamp=now)])
    return personas


def test_the_skill_list_shows_health_success_rate_p95_and_rating(admin_client, recorded):
    response = admin_client.get("/admin/analytics/skill/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "parse_json" in page
    assert "90.0%" in page  # success rate over 7 days
    assert re.search(r">\d+ ms<", page)  # p95
    assert "4.00 (1)" in page
    assert re.search(r"border-radius:9px[^>]*>\d+<", page)  # the health badge
    for query in ("?deprecated__exact=0", "?q=parse", "?q=nothing"):
        assert admin_client.get("/admin/analytics/skill/" + query).status_code == 200
    skill = Skill.objects.get(skill_id="parse_json")
    assert admin_client.get(f"/admin/analytics/skill/{skill.pk}/change/").status_code == 200


def test_executions_are_read_only_with_a_date_hierarchy(admin_client, recorded):
    response = admin_client.get("/admin/analytics/skillexecution/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "TimeoutError" in page
    assert "Add skill execution" not in page
    year = timezone.now().year
    assert admin_client.get(f"/admin/analytics/skillexecution/?timestamp__year={year}").status_code == 200
    assert admin_client.get("/admin/analytics/skillexecution/?success__exact=0&q=parse_json").status_code == 200
    execution = SkillExecution.objects.first()
    detail = admin_client.get(f"/admin/analytics/skillexecution/{execution.pk}/change/")
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert admin_client.post(f"/admin/analytics/skillexecution/{execution.pk}/delete/").status_code == 403
    assert admin_client.get("/admin/analytics/skillexecution/add/").status_code == 403


def test_the_executions_paginator_counts_at_most_its_cap(admin_client, recorded, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "CAP", 25)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get("/admin/analytics/skillexecution/")
    assert response.status_code == 200
    counts = [query["sql"] for query in queries if "COUNT(" in query["sql"].upper() and "skill_usage" in query["sql"]]
    assert counts, "the paginator's count query"
    assert all("LIMIT" in sql.upper() for sql in counts), counts
    assert response.context["cl"].result_count == 25


def test_an_explicit_health_score_can_be_set_in_the_admin(admin_client, recorded):
    response = admin_client.post("/admin/analytics/skillhealthscore/add/", {
        "skill": "parse_json", "org": recorded.org.pk, "score": "42", "source": "admin",
        "recorded_at_0": timezone.now().strftime("%Y-%m-%d"), "recorded_at_1": timezone.now().strftime("%H:%M:%S"),
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    assert SkillHealthScore.objects.get().score == 42
    assert admin_client.get("/admin/analytics/skillhealthscore/").status_code == 200

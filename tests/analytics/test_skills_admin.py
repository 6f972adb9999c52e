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


def test_the_executions_search_finds_part_of_a_skill_id(admin_client, recorded):
    record_executions(recorded.org, [ExecutionItem(skill_id="web_search", success=True, latency_ms=5.0, user_id="u9",
                                                   event_id="evt-42", timestamp=timezone.now())])
    for term, skills in [("parse", {"parse_json"}), ("JSON", {"parse_json"}), ("_", {"parse_json", "web_search"}),
                         ("search", {"web_search"}), ("nothing", set())]:
        response = admin_client.get("/admin/analytics/skillexecution/", {"q": term})
        assert response.status_code == 200
        assert {row.skill_id for row in response.context["cl"].result_list} == skills, term
    parse = admin_client.get("/admin/analytics/skillexecution/", {"q": "parse"}).context["cl"]
    assert parse.result_count == 40
    # User and event ids match whole: "u" is no user's id.
    by_user = admin_client.get("/admin/analytics/skillexecution/", {"q": "u9"}).context["cl"].result_list
    assert [row.user_id for row in by_user] == ["u9"]
    assert not admin_client.get("/admin/analytics/skillexecution/", {"q": "u"}).context["cl"].result_list
    by_event = admin_client.get("/admin/analytics/skillexecution/", {"q": "evt-42"}).context["cl"].result_list
    assert [row.event_id for row in by_event] == ["evt-42"]


def test_a_capped_count_says_more_than_the_cap(admin_client, recorded, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "CAP", 25)  # 40 executions recorded
    page = admin_client.get("/admin/analytics/skillexecution/").content.decode()
    assert re.search(r"more than 25 skill executions\s*</p>", page), page[page.find('class="paginator"'):][:500]
    assert not re.search(r">\s*25 skill executions", page)
    searched = admin_client.get("/admin/analytics/skillexecution/", {"q": "parse"}).content.decode()
    assert "more than 25 results" in searched


def test_a_count_under_the_cap_is_the_count(admin_client, recorded, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "CAP", 40)  # exactly 40: not more than the cap
    page = admin_client.get("/admin/analytics/skillexecution/").content.decode()
    assert re.search(r"\b40 skill executions\s*</p>", page) and "more than" not in page


def test_the_capped_count_is_written_with_thousands_separators(personas):
    record_executions(personas.org, [ExecutionItem(skill_id="s", success=True, latency_ms=1.0, user_id="u",
                                                   timestamp=timezone.now()) for _ in range(1_001)])
    paginator = CappedCountPaginator(SkillExecution.objects.order_by("pk"), 100)
    paginator.CAP = 1_000
    assert (paginator.count, paginator.num_pages, paginator.capped) == (1_000, 10, True)
    assert paginator.count_display == "more than 1,000"
    uncapped = CappedCountPaginator(SkillExecution.objects.order_by("pk"), 100)
    uncapped.CAP = 1_001
    assert (uncapped.count, uncapped.capped, uncapped.count_display) == (1_001, False, "1,001")

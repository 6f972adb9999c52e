"""Recommendations and their effectiveness in hand-built worlds (docs/leaderboards.md), at a fixed NOW.

The co-usage world of the org "acme" (all runs within the last 30 days):

    me          parse_json, fetch_url
    n1          parse_json, csv_tools, old_thing (deprecated)
    n2          parse_json, csv_tools
    n3          parse_json, regex
    n4          fetch_url, regex
    p1 … p6     web_search (popular: six users, none of them a neighbour of me)
    loner       rare_skill (nobody else uses it)

Globex: its users use parse_json together with secret_skill.
"""

from datetime import UTC, datetime, timedelta

import pytest

from analytics.models import RecommendationLog, Skill
from analytics.platform.windows import Window
from analytics.services.recommendations import (
    effectiveness,
    outcome,
    recommend,
    serve_recommendations,
    with_outcome,
)
from analytics.services.skills import ExecutionItem, record_executions

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 11, 15, 30, tzinfo=UTC)
WINDOW = Window(NOW - timedelta(days=30), NOW)


def run(skill_id, user_id, at):
    return ExecutionItem(skill_id=skill_id, success=True, latency_ms=10.0, user_id=user_id, timestamp=at)


def uses(user_id, *skill_ids, days_ago=1):
    return [run(skill_id, user_id, NOW - timedelta(days=days_ago)) for skill_id in skill_ids]


@pytest.fixture
def world(personas):
    record_executions(personas.org, [
        *uses("me", "parse_json", "fetch_url"),
        *uses("n1", "parse_json", "csv_tools", "old_thing"), *uses("n1", "csv_tools", days_ago=2),
        *uses("n2", "parse_json", "csv_tools"),
        *uses("n3", "parse_json", "regex"),
        *uses("n4", "fetch_url", "regex"),
        *[item for user in range(1, 7) for item in uses(f"p{user}", "web_search", "web_search")],
        *uses("loner", "rare_skill"),
        *uses("returning", "parse_json", days_ago=40),  # history older than the window only
    ])
    record_executions(personas.other_org, [*uses("g1", "parse_json", "secret_skill"),
                                           *uses("me", "secret_skill")])
    Skill.objects.filter(skill_id="old_thing").update(deprecated=True)
    return personas


def as_tuples(found):
    return [(item.skill_id, pytest.approx(item.score), item.reason) for item in found]


def test_co_usage_recommends_what_the_users_of_my_skills_use(world):
    found = recommend("me", WINDOW, org=world.org)
    assert as_tuples(found) == [
        # 2 of parse_json's 3 neighbours use csv_tools: 2 / (3 + 1).
        ("csv_tools", 0.5, "used by 2 of 3 users who use parse_json"),
        # regex: 1 of 3 via parse_json (0.25), or 1 of 1 via fetch_url (0.5): the better anchor is named.
        ("regex", 0.5, "used by 1 of 1 users who use fetch_url"),
    ]
    assert {item.strategy for item in found} == {"co_usage"}
    assert (found[0].used_by, found[0].out_of, found[0].anchor) == (2, 3, "parse_json")


def test_a_popular_skill_is_not_recommended_when_my_neighbours_never_use_it(world):
    recommended = {item.skill_id for item in recommend("me", WINDOW, org=world.org, limit=100)}
    assert "web_search" not in recommended  # used by six users, none of whom uses parse_json or fetch_url
    assert "old_thing" not in recommended  # deprecated, though a neighbour uses it
    assert not recommended & {"parse_json", "fetch_url"}  # I use them already
    assert "secret_skill" not in recommended  # another org's co-usage


def test_a_user_with_history_but_no_co_users_gets_nothing_rather_than_popularity(world):
    assert recommend("loner", WINDOW, org=world.org) == []


def test_a_user_without_history_gets_the_most_widely_used_skills(world):
    found = recommend("newbie", WINDOW, org=world.org, limit=4)
    # 12 active users in the window: me, n1-n4, p1-p6, loner. Scores c / (12 + 1).
    assert as_tuples(found) == [
        ("web_search", 6 / 13, "used by 6 of 12 active users"),
        ("parse_json", 4 / 13, "used by 4 of 12 active users"),
        ("csv_tools", 2 / 13, "used by 2 of 12 active users"),  # ties: by skill id
        ("fetch_url", 2 / 13, "used by 2 of 12 active users"),
    ]
    assert {item.strategy for item in found} == {"popularity"}
    # History older than the window is no history.
    assert recommend("returning", WINDOW, org=world.org, limit=1)[0].strategy == "popularity"
    assert "old_thing" not in {item.skill_id for item in recommend("newbie", WINDOW, org=world.org, limit=100)}


def test_over_all_orgs_the_user_is_seen_in_every_org(world):
    found = recommend("me", WINDOW, limit=100)
    # Now me also uses secret_skill (in globex), and parse_json's neighbours include globex's g1.
    assert ("csv_tools", pytest.approx(2 / 5), "used by 2 of 4 users who use parse_json") in as_tuples(found)
    assert "secret_skill" not in {item.skill_id for item in found}


def test_every_recommendation_served_is_logged(world):
    found = serve_recommendations("me", WINDOW, org=world.org, now=NOW)
    rows = list(RecommendationLog.objects.order_by("skill_id"))
    assert [(row.org_id, row.user_id, row.skill_id, row.score, row.reason, row.strategy, row.timestamp)
            for row in rows] == [
        (world.org.id, "me", "csv_tools", 0.5, "used by 2 of 3 users who use parse_json", "co_usage", NOW),
        (world.org.id, "me", "regex", 0.5, "used by 1 of 1 users who use fetch_url", "co_usage", NOW),
    ]
    assert len(found) == 2
    serve_recommendations("newbie", WINDOW, org=world.org, limit=3, now=NOW)
    serve_recommendations("loner", WINDOW, org=world.org, now=NOW)  # nothing served, nothing logged
    assert RecommendationLog.objects.count() == 5


# --- Effectiveness ------------------------------------------------------------------------

T0 = NOW - timedelta(days=10)


def log(org, user_id, skill_id, at=T0):
    return RecommendationLog.objects.create(org=org, user_id=user_id, skill_id=skill_id, score=0.5, reason="r",
                                            strategy="co_usage", timestamp=at)


@pytest.fixture
def followed_world(personas):
    org, other = personas.org, personas.other_org
    record_executions(org, [
        run("s1", "u1", T0 + timedelta(days=3)),  # L1 followed
        run("s2", "u1", T0 + timedelta(days=7, minutes=1)),  # L2 one minute too late
        run("s1", "u2", T0 + timedelta(days=7)),  # L3 followed, on the last moment
        run("s2", "u2", T0 - timedelta(hours=1)),  # L4 used before, not after
        run("s1", "u4", T0 + timedelta(days=1)),  # L5 someone else used it
        run("s1", "u5", T0 + timedelta(days=1)),  # L7 (globex's u5) is not acme's u5; L8 (all orgs) is
    ])
    logs = {
        "L1": log(org, "u1", "s1"), "L2": log(org, "u1", "s2"), "L3": log(org, "u2", "s1"),
        "L4": log(org, "u2", "s2"), "L5": log(org, "u3", "s1"),
        "L6": log(org, "u3", "s2", at=T0 + timedelta(days=8)),  # 2 days old at NOW: pending
        "L7": log(other, "u5", "s1"), "L8": log(None, "u5", "s1"),
    }
    return personas, logs


def test_a_recommendation_is_followed_only_by_that_users_use_within_7_days(followed_world):
    _, logs = followed_world
    rows = {row.pk: row for row in with_outcome(RecommendationLog.objects.all())}
    outcomes = {name: outcome(rows[row.pk], now=NOW) for name, row in logs.items()}
    assert outcomes == {"L1": "followed", "L2": "not followed", "L3": "followed", "L4": "not followed",
                        "L5": "not followed", "L6": "pending", "L7": "not followed", "L8": "followed"}
    assert rows[logs["L1"].pk].followed_at == T0 + timedelta(days=3)


def test_effectiveness_overall_and_per_skill(followed_world):
    personas, _ = followed_world
    acme = effectiveness(org=personas.org, now=NOW)
    # 6 logged: followed L1 L3, pending L6, not followed L2 L4 L5 → 2 / 5.
    assert acme["overall"] == {"logged": 6, "followed": 2, "pending": 1, "not_followed": 3, "effectiveness": 0.4}
    assert acme["per_skill"] == [
        {"skill_id": "s1", "logged": 3, "followed": 2, "pending": 0, "not_followed": 1,
         "effectiveness": pytest.approx(2 / 3)},
        {"skill_id": "s2", "logged": 3, "followed": 0, "pending": 1, "not_followed": 2, "effectiveness": 0.0},
    ]
    everything = effectiveness(now=NOW)  # staff: every org, and the all-orgs rows
    assert everything["overall"] == {"logged": 8, "followed": 3, "pending": 1, "not_followed": 4,
                                     "effectiveness": pytest.approx(3 / 7)}
    assert everything["per_skill"][0] == {"skill_id": "s1", "logged": 5, "followed": 3, "pending": 0,
                                          "not_followed": 2, "effectiveness": 0.6}
    # Ten days on, L6's week is over: it counts as not followed.
    later = effectiveness(org=personas.org, now=NOW + timedelta(days=10))["overall"]
    assert (later["pending"], later["not_followed"], later["effectiveness"]) == (0, 4, pytest.approx(2 / 6))
    assert effectiveness(org=personas.other_org, now=NOW)["overall"]["effectiveness"] == 0.0


def test_old_log_rows_go_with_the_raw_executions(personas, settings):
    from analytics import retention

    settings.ANALYTICS_DB_RETENTION_DAYS = 10
    Skill.objects.create(skill_id="s1")
    log(personas.org, "u1", "s1", at=NOW - timedelta(days=11))
    kept = log(personas.org, "u1", "s1", at=NOW - timedelta(days=9))
    assert retention.cleanup(NOW)["recommendation log"] == 1
    assert list(RecommendationLog.objects.values_list("pk", flat=True)) == [kept.pk]

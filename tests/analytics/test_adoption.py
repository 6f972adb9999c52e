"""Adoption figures in a hand-built world (docs/leaderboards.md), at a fixed NOW.

NOW is 2026-03-11 15:30 UTC. The org "acme":

    user  runs (days before NOW)                        skills      UTC days of the last 7 (from 03-05)
    u1    a @0, b @1, c @2                              a b c (3)   11, 10, 09          → engaged
    u2    a @0, a @1, b @8                              a b   (2)   11, 10              → not (2 days)
    u3    a @3 three times                              a     (1)   08                  → not (1 day)
    u4    a @6, z @3, a @0   (z is deprecated)          a z   (2)   05, 08, 11          → engaged
    u5    c @6 days 16 hours (03-04 23:30)              c     (1)   before 03-05        → not active in them
    u6    a @10 twice                                   a     (1)   —
    —     a @1 twice, without a user

Catalogue: a b c d e z, z deprecated. Globex: its own u1 uses d.
"""

from datetime import UTC, datetime, timedelta

import pytest

from analytics.models import Skill
from analytics.platform.windows import Window
from analytics.services.adoption import adoption, skill_adoption
from analytics.services.skills import ExecutionItem, RatingItem, record_executions, record_ratings

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 11, 15, 30, tzinfo=UTC)
WINDOW = Window(NOW - timedelta(days=30), NOW)


def run(skill_id, user_id, days_ago, hours_ago=0):
    return ExecutionItem(skill_id=skill_id, success=True, latency_ms=10.0, user_id=user_id,
                         timestamp=NOW - timedelta(days=days_ago, hours=hours_ago))


@pytest.fixture
def world(personas):
    record_executions(personas.org, [
        run("a", "u1", 0), run("b", "u1", 1), run("c", "u1", 2),
        run("a", "u2", 0), run("a", "u2", 1), run("b", "u2", 8),
        run("a", "u3", 3), run("a", "u3", 3), run("a", "u3", 3),
        run("a", "u4", 6), run("z", "u4", 3), run("a", "u4", 0),
        run("c", "u5", 6, hours_ago=16),
        run("a", "u6", 10), run("a", "u6", 10),
        run("a", None, 1), run("a", None, 1),
    ])
    record_executions(personas.other_org, [run("d", "u1", 1)])
    record_ratings(personas.other_org, [RatingItem("e", 4, NOW)])  # e is in the catalogue, never run
    Skill.objects.filter(skill_id="z").update(deprecated=True)
    return personas


def test_skills_per_user_is_a_distribution_over_the_window(world):
    body = adoption(WINDOW, org=world.org).render()
    assert body["skills_per_user"] == {
        "users": 6, "mean": pytest.approx(10 / 6), "median": 1.5, "max": 3,  # sorted 1 1 1 2 2 3
        "histogram": {"1": 3, "2": 2, "3": 1},
    }
    assert (body["start"], body["end"]) == ("2026-02-09T15:30:00Z", "2026-03-11T15:30:00Z")
    short = adoption(Window(NOW - timedelta(days=2, hours=1), NOW), org=world.org).render()["skills_per_user"]
    assert short["histogram"] == {"1": 2, "3": 1}  # u1 a b c; u2 a; u4 a


def test_the_adoption_rate_is_the_share_of_the_non_deprecated_catalogue_used(world):
    body = adoption(WINDOW, org=world.org).render()
    # Used a b c (and deprecated z) of the catalogue a b c d e: 3 / 5.
    assert (body["org_adoption_rate"], body["skills_used"], body["catalogue_size"]) == (0.6, 3, 5)
    assert "orgs" not in body  # a token's view is its own org


def test_weekly_growth_compares_the_week_ending_at_the_window_end_with_the_one_before(world):
    growth = adoption(WINDOW, org=world.org).render()["weekly_growth"]
    # This week (03-04 15:30 .. 03-11 15:30): u1 3, u2 2, u3 3, u4 3, u5 1, no user 2 = 14 runs by 5 users.
    # Last week: u2's b @8 and u6's two @10 = 3 runs by 2 users.
    assert growth["this_week"] == {"start": "2026-03-04T15:30:00Z", "end": "2026-03-11T15:30:00Z",
                                   "executions": 14, "active_users": 5}
    assert (growth["last_week"]["executions"], growth["last_week"]["active_users"]) == (3, 2)
    assert growth["executions_growth"] == pytest.approx((14 - 3) / 3)
    assert growth["active_users_growth"] == pytest.approx((5 - 2) / 2)


def test_engaged_users_were_active_on_at_least_3_of_the_last_7_days(world):
    body = adoption(WINDOW, org=world.org).render()
    assert body["engaged_users"] == 2  # u1 and u4
    assert body["active_users_last_7_days"] == 4  # u1 to u4; u5's run was on 03-04, before the 7 days
    assert body["engagement_rate"] == 0.5
    assert body["engagement_since"] == "2026-03-05T00:00:00Z"
    # A day later, u4's first day (03-05) drops out of the 7: two days left, no longer engaged.
    later = adoption(Window(NOW - timedelta(days=29), NOW + timedelta(days=1)), org=world.org)
    assert later["engaged_users"] == 1


def test_over_all_orgs_a_user_is_a_user_of_one_org_and_each_org_has_its_rate(world):
    body = adoption(WINDOW).render()
    # Globex's u1 is not acme's u1: 7 users, one more with a single skill.
    assert body["skills_per_user"]["users"] == 7
    assert body["skills_per_user"]["histogram"] == {"1": 4, "2": 2, "3": 1}
    assert (body["org_adoption_rate"], body["skills_used"]) == (0.8, 4)  # a b c d of 5
    assert body["orgs"] == [
        {"org": "acme", "org_adoption_rate": 0.6, "skills_used": 3, "catalogue_size": 5, "active_users": 6},
        {"org": "globex", "org_adoption_rate": 0.2, "skills_used": 1, "catalogue_size": 5, "active_users": 1},
    ]
    assert body["weekly_growth"]["this_week"]["executions"] == 15


def test_an_org_without_data_has_empty_figures(personas):
    body = adoption(WINDOW, org=personas.org).render()
    assert body["skills_per_user"] == {"users": 0, "mean": None, "median": None, "max": None, "histogram": {}}
    assert body["org_adoption_rate"] is None and body["catalogue_size"] == 0
    assert body["weekly_growth"]["executions_growth"] is None
    assert (body["engaged_users"], body["engagement_rate"]) == (0, None)


def test_a_skills_adoption_counts_its_users_among_the_active_ones(world):
    figures = skill_adoption("a", WINDOW)
    # a: acme u1 u2 u3 u4 u6 (5) of 7 active users (acme's 6 and globex's u1), in one org.
    assert (figures["users"], figures["active_users"], figures["orgs"]) == (5, 7, 1)
    assert figures["user_share"] == pytest.approx(5 / 7)

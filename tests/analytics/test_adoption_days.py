"""skill_usage_day: who used which skill on which UTC day, kept with the executions, and the adoption figures
read from it for whole days and from skill_usage for the part days at a window's edges; skill_user_day (who was
active on which day) and skill_user_last_use (each user's last day with each skill) beside it."""

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from importlib import import_module

import pytest
from django.apps import apps

from analytics import retention
from analytics.models import SkillUsageDay, SkillUserDay, SkillUserLastUse
from analytics.platform.scope import as_scope
from analytics.platform.windows import Window
from analytics.services import adoption as service
from analytics.services.skills import ExecutionItem, record_executions

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 11, 15, 30, tzinfo=UTC)


def run(skill_id, user_id, at, event_id=None):
    return ExecutionItem(skill_id=skill_id, success=True, latency_ms=10.0, user_id=user_id, timestamp=at,
                         event_id=event_id)


def days(org):
    return {(row.day, row.user_id, row.skill_id): row.executions for row in SkillUsageDay.objects.filter(org=org)}


def user_days(org):
    return {(row.day, row.user_id): row.executions for row in SkillUserDay.objects.filter(org=org)}


def last_uses(org):
    return {(row.user_id, row.skill_id): row.last_day for row in SkillUserLastUse.objects.filter(org=org)}


class Editor:  # what RunPython hands a migration's function: its execute() runs SQL
    @staticmethod
    def execute(sql, params):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def test_each_batch_adds_its_executions_to_their_users_days(personas):
    record_executions(personas.org, [
        run("a", "u1", NOW, "e1"), run("a", "u1", NOW - timedelta(hours=1), "e2"),
        run("a", "u1", NOW - timedelta(hours=16)),  # 03-10 23:30: the day before
        run("b", "u2", NOW), run("b", None, NOW),  # without a user: no row
    ])
    record_executions(personas.org, [run("a", "u1", NOW, "e1"),  # a retried execution: not counted again
                                     run("a", "u1", NOW + timedelta(hours=1))])
    record_executions(personas.other_org, [run("a", "u1", NOW)])
    assert days(personas.org) == {
        (date(2026, 3, 11), "u1", "a"): 3, (date(2026, 3, 10), "u1", "a"): 1, (date(2026, 3, 11), "u2", "b"): 1,
    }
    assert days(personas.other_org) == {(date(2026, 3, 11), "u1", "a"): 1}


def test_the_migration_counts_the_executions_stored_before_the_table(personas):
    record_executions(personas.org, [run("a", "u1", NOW), run("a", "u1", NOW - timedelta(hours=1)),
                                     run("a", "u1", NOW - timedelta(hours=16)), run("b", None, NOW)])
    record_executions(personas.other_org, [run("c", "u9", NOW - timedelta(days=3))])
    expected = {org.pk: days(org) for org in (personas.org, personas.other_org)}
    SkillUsageDay.objects.all().delete()
    import_module("analytics.migrations.0010_skill_usage_day").count_stored_usage(apps, Editor)
    assert {org.pk: days(org) for org in (personas.org, personas.other_org)} == expected


def test_each_batch_adds_its_executions_to_their_users_active_days_whatever_the_skill(personas):
    record_executions(personas.org, [
        run("a", "u1", NOW, "e1"), run("b", "u1", NOW - timedelta(hours=1), "e2"),
        run("a", "u1", NOW - timedelta(hours=16)),  # 03-10 23:30: the day before
        run("b", "u2", NOW), run("b", None, NOW),  # without a user: no row
    ])
    record_executions(personas.org, [run("a", "u1", NOW, "e1"),  # a retried execution: not counted again
                                     run("c", "u1", NOW + timedelta(hours=1))])
    record_executions(personas.other_org, [run("a", "u1", NOW)])
    assert user_days(personas.org) == {(date(2026, 3, 11), "u1"): 3, (date(2026, 3, 10), "u1"): 1,
                                       (date(2026, 3, 11), "u2"): 1}
    assert user_days(personas.other_org) == {(date(2026, 3, 11), "u1"): 1}


def test_the_migration_counts_the_active_days_of_the_day_rows_stored_before_the_table(personas):
    record_executions(personas.org, [run("a", "u1", NOW), run("b", "u1", NOW - timedelta(hours=1)),
                                     run("a", "u1", NOW - timedelta(hours=16)), run("b", None, NOW)])
    record_executions(personas.other_org, [run("c", "u9", NOW - timedelta(days=3))])
    expected = {org.pk: user_days(org) for org in (personas.org, personas.other_org)}
    SkillUserDay.objects.all().delete()
    import_module("analytics.migrations.0014_skill_user_day").count_user_days(apps, Editor)
    assert {org.pk: user_days(org) for org in (personas.org, personas.other_org)} == expected


def test_each_batch_moves_its_users_last_day_of_a_skill_forward_never_back(personas):
    record_executions(personas.org, [run("a", "u1", NOW), run("a", "u1", NOW - timedelta(days=3)),
                                     run("b", "u1", NOW - timedelta(days=2)), run("b", None, NOW)])
    record_executions(personas.org, [run("a", "u1", NOW - timedelta(days=5))])  # history sent late
    record_executions(personas.other_org, [run("a", "u1", NOW - timedelta(days=1))])
    assert last_uses(personas.org) == {("u1", "a"): date(2026, 3, 11), ("u1", "b"): date(2026, 3, 9)}
    record_executions(personas.org, [run("b", "u1", NOW + timedelta(hours=9))])  # 03-12 00:30
    assert last_uses(personas.org) == {("u1", "a"): date(2026, 3, 11), ("u1", "b"): date(2026, 3, 12)}
    assert last_uses(personas.other_org) == {("u1", "a"): date(2026, 3, 10)}


def test_the_migration_finds_the_last_days_of_the_day_rows_stored_before_the_table(personas):
    record_executions(personas.org, [run("a", "u1", NOW), run("a", "u1", NOW - timedelta(days=4)),
                                     run("b", "u2", NOW - timedelta(days=2)), run("b", None, NOW)])
    record_executions(personas.other_org, [run("c", "u9", NOW - timedelta(days=3))])
    expected = {org.pk: last_uses(org) for org in (personas.org, personas.other_org)}
    SkillUserLastUse.objects.all().delete()
    import_module("analytics.migrations.0012_skill_user_last_use").find_last_days(apps, Editor)
    assert {org.pk: last_uses(org) for org in (personas.org, personas.other_org)} == expected


def test_a_window_no_execution_is_later_than_reads_the_last_days(personas):
    record_executions(personas.org, [run("a", "u1", NOW - timedelta(days=2)), run("b", "u1", NOW - timedelta(hours=1)),
                                     run("c", "u2", NOW - timedelta(days=3, hours=1))])
    scope = as_scope(personas.org)
    window = Window(NOW - timedelta(days=3), NOW)  # 03-08 15:30: a part day at the start
    parts = service._recent_pairs(scope, window)
    assert parts is not None and len(parts) == 2  # the last days, and the part day at the start from skill_usage
    assert service.skills_per_user(window, org=personas.org).histogram == {"2": 1}  # u1: a and b; not u2's c
    assert service._recent_pairs(scope, Window(NOW.replace(hour=0, minute=0), NOW)) is not None
    record_executions(personas.org, [run("d", "u3", NOW + timedelta(minutes=1))])
    assert service._recent_pairs(scope, window) is None  # an execution later than its end: the day rows
    assert service.skills_per_user(window, org=personas.org).histogram == {"2": 1}


def test_retention_removes_the_days_before_its_cutoff_and_keeps_the_cutoffs_day(personas, settings):
    settings.ANALYTICS_DB_RETENTION_DAYS = 10
    cutoff = NOW - timedelta(days=10)  # 03-01 15:30
    record_executions(personas.org, [run("a", "u1", cutoff - timedelta(days=1)),  # 02-28
                                     run("a", "u1", cutoff - timedelta(hours=1)),  # 03-01, before the cutoff
                                     run("a", "u1", cutoff + timedelta(hours=1))])
    record_executions(personas.org, [run("b", "u1", cutoff - timedelta(days=1)),  # b: last used on 02-28
                                     run("c", "u1", cutoff - timedelta(hours=1))])  # c: on 03-01
    removed = retention.cleanup(NOW)
    assert removed["skill usage days"] == 2
    assert days(personas.org) == {(date(2026, 3, 1), "u1", "a"): 2, (date(2026, 3, 1), "u1", "c"): 1}
    assert removed["skill last uses"] == 1
    assert last_uses(personas.org) == {("u1", "a"): date(2026, 3, 1), ("u1", "c"): date(2026, 3, 1)}
    assert removed["skill user days"] == 1
    assert user_days(personas.org) == {(date(2026, 3, 1), "u1"): 3}


@pytest.fixture
def scattered(personas):
    """300 executions of 4 skills by 6 users (and some by none) over 6 days, two orgs."""
    rng = random.Random(7)
    items = {personas.org: [], personas.other_org: []}
    for index in range(300):
        org = personas.org if index % 3 else personas.other_org
        at = NOW - timedelta(minutes=rng.randrange(6 * 24 * 60))
        user = rng.choice(["u1", "u2", "u3", "u4", "u5", "u6", None])
        items[org].append(run(rng.choice("abcd"), user, at))
    for org, runs in items.items():
        record_executions(org, runs)
    return personas, items


def by_hand(items, scope_org, window):
    """The distinct counts, straight from the executions: {user: skills}, {user: days}."""
    skills, active_days = defaultdict(set), defaultdict(set)
    for org, runs in items.items():
        if scope_org is not None and org != scope_org:
            continue
        for item in runs:
            if item.user_id is None or not window.start <= item.timestamp <= window.end:
                continue
            user = (item.user_id,) if scope_org is not None else (org.pk, item.user_id)
            skills[user].add(item.skill_id)
            active_days[user].add(item.timestamp.date())
    return skills, active_days


@pytest.mark.parametrize("over_all_orgs", [False, True])
def test_any_window_counts_exactly_what_the_executions_say(scattered, over_all_orgs):
    """Windows starting and ending at any minute: whole days, part days read raw, and part days whose
    other executions all lie inside the window."""
    personas, items = scattered
    org = None if over_all_orgs else personas.org
    scope = as_scope(service.ALL_ORGS if org is None else org)
    rng = random.Random(11)
    ends = [NOW, NOW + timedelta(hours=3), NOW - timedelta(hours=7, minutes=13),
            NOW.replace(hour=0, minute=0), NOW - timedelta(days=2, hours=15, minutes=30)]
    windows = [Window(end - timedelta(minutes=rng.randrange(10, 7 * 24 * 60)), end) for end in ends for _ in range(4)]
    windows.append(Window(NOW - timedelta(days=3, hours=15, minutes=30), NOW - timedelta(hours=15, minutes=30)))
    def answer(window, distinct, per_skill=True):
        rows = service._distinct_per(service._usage(scope, window, per_skill=per_skill), service._user(scope),
                                     [distinct])
        return {tuple(row[:-1]): row[-1] for row in rows}

    for window in windows:
        skills, active_days = by_hand(items, org, window)
        assert answer(window, "skill_id") == {user: len(used) for user, used in skills.items()}, window
        assert answer(window, "day") == {user: len(on) for user, on in active_days.items()}, window
        assert answer(window, "day", per_skill=False) == {user: len(on) for user, on in active_days.items()}, window
        assert {tuple(row[:-1]): row[-1] for row in service._skills_per_user(scope, window)} == {
            user: len(used) for user, used in skills.items()}, window
        assert service._active_users(scope, window) == len(skills), window


def test_a_window_ending_before_the_days_last_executions_reads_that_day_from_the_executions(personas):
    window = Window(NOW - timedelta(days=3), NOW)
    record_executions(personas.org, [
        run("d", "u1", window.start - timedelta(hours=1)),  # earlier on the window's first day
        run("a", "u1", NOW - timedelta(days=2)), run("b", "u1", NOW - timedelta(hours=1)),
        run("c", "u1", NOW + timedelta(hours=2)),  # later on its last day
    ])
    parts = service._usage(as_scope(personas.org), window)
    assert len(parts) == 3  # the whole days, the part day at the start, the part day at the end
    assert service.skills_per_user(window, org=personas.org).histogram == {"2": 1}  # a and b, not c or d

"""Health snapshots (analytics/services/health_snapshots.py): the job's scores are what the dashboards show while
fresh; what the snapshot lacks or has let go stale is computed on read; explicit scores apply at once."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from analytics import tasks
from analytics.models import Skill, SkillHealthSnapshot
from analytics.platform.scope import ALL_ORGS, PLATFORM
from analytics.platform.windows import isoformat
from analytics.schedule import PERIODIC_JOBS
from analytics.services.health_score import health_scores
from analytics.services.health_snapshots import (
    SNAPSHOT_INTERVAL,
    SNAPSHOT_MAX_AGE,
    compute_health_snapshots,
    current_health_scores,
)
from analytics.services.skills import ExecutionItem, record_executions, set_health_score

pytestmark = pytest.mark.django_db

SKILL = "parse_json"


def put(org, runs, skill_id=SKILL, now=None):
    """runs: (hours ago, success, latency_ms)."""
    now = now or timezone.now()
    record_executions(org, [
        ExecutionItem(skill_id=skill_id, success=success, latency_ms=latency, timestamp=now - timedelta(hours=hours))
        for hours, success, latency in runs
    ])


def figures(health):
    return health.score, health.computed, health.components


@pytest.fixture
def executed(personas):
    """parse_json succeeds in acme and fails half the time in globex; web_search runs in acme only."""
    put(personas.org, [(hours, True, 40.0 + hours) for hours in range(1, 30)])
    put(personas.other_org, [(hours, hours % 2 == 0, 80.0) for hours in range(1, 30)])
    put(personas.org, [(hours, True, 300.0) for hours in range(2, 12)], skill_id="web_search")
    return personas


def test_the_job_stores_every_catalogue_skill_over_all_orgs_and_per_org(executed):
    now = timezone.now()
    assert compute_health_snapshots(now) == {"scopes": 3, "rows": 6}
    for org, scope in ((None, ALL_ORGS), (executed.org, executed.org), (executed.other_org, executed.other_org)):
        stored = {row.skill_id: row for row in SkillHealthSnapshot.objects.filter(org=org)}
        live = health_scores(["parse_json", "web_search"], org=scope, now=now)
        assert sorted(stored) == ["parse_json", "web_search"]
        for skill_id, row in stored.items():
            assert row.as_of == now
            assert (row.computed, row.components) == (live[skill_id].computed, {
                name: part for name, part in live[skill_id].components.items()
                if name not in ("computed_score", "explicit", "as_of")})
        assert {skill_id: figures(health) for skill_id, health in current_health_scores(
            ["parse_json", "web_search"], org=scope, now=now).items()} == {
            skill_id: figures(health) for skill_id, health in live.items()}
    assert SkillHealthSnapshot.objects.get(org=executed.other_org, skill_id="web_search").computed is None


def test_a_fresh_snapshot_is_shown_and_a_stale_one_computed_again(executed):
    taken = timezone.now()
    compute_health_snapshots(taken)
    before = health_scores([SKILL], org=executed.org, now=taken)[SKILL]
    put(executed.org, [(0.01, False, 5.0)] * 20)  # a burst of failures after the snapshot
    later = taken + SNAPSHOT_INTERVAL
    live = health_scores([SKILL], org=executed.org, now=later)[SKILL]
    assert live.computed < before.computed

    shown = current_health_scores([SKILL], org=executed.org, now=later)[SKILL]
    assert (shown.score, shown.computed) == (before.score, before.computed)
    assert shown.components["as_of"] == isoformat(taken)

    stale = taken + SNAPSHOT_MAX_AGE + timedelta(seconds=1)
    again = current_health_scores([SKILL], org=executed.org, now=stale)[SKILL]
    assert figures(again) == figures(health_scores([SKILL], org=executed.org, now=stale)[SKILL])
    assert again.computed < before.computed


def test_a_skill_the_snapshot_lacks_is_computed_on_read(executed):
    now = timezone.now()
    compute_health_snapshots(now)
    put(executed.org, [(1, True, 10.0)] * 5, skill_id="brand_new")  # catalogued after the job ran
    shown = current_health_scores([SKILL, "brand_new"], org=executed.org, now=now)
    assert list(shown) == [SKILL, "brand_new"]
    assert shown["brand_new"].score is not None
    assert figures(shown["brand_new"]) == figures(health_scores(["brand_new"], org=executed.org, now=now)["brand_new"])


def test_an_explicit_score_set_after_the_snapshot_is_in_effect_at_once(executed):
    compute_health_snapshots()
    computed = SkillHealthSnapshot.objects.get(org=executed.org, skill_id=SKILL).computed
    set_health_score(executed.org, SKILL, 12.5)
    shown = current_health_scores([SKILL], org=executed.org)[SKILL]
    assert (shown.score, shown.computed) == (12.5, computed)
    assert shown.components["explicit"]["in_effect"] is True


def test_the_platform_scope_has_no_snapshot_and_is_computed_on_read(executed):
    now = timezone.now()
    compute_health_snapshots(now)
    shown = current_health_scores([SKILL], org=PLATFORM, now=now)
    assert figures(shown[SKILL]) == figures(health_scores([SKILL], org=PLATFORM, now=now)[SKILL])


def test_a_second_run_replaces_the_rows_and_drops_orgs_without_skill_data(executed):
    compute_health_snapshots(timezone.now() - timedelta(seconds=30))
    SkillHealthSnapshot.objects.filter(org=executed.other_org).update(computed=1.0)
    now = timezone.now()
    assert compute_health_snapshots(now)["rows"] == 6
    assert set(SkillHealthSnapshot.objects.values_list("as_of", flat=True)) == {now}
    assert SkillHealthSnapshot.objects.get(org=executed.other_org, skill_id=SKILL).computed != 1.0


def test_the_job_is_scheduled_every_minute_and_has_a_task_and_a_command(executed, capsys):
    job = next(job for job in PERIODIC_JOBS if job.task == "analytics.compute_health_snapshots")
    assert job.every == SNAPSHOT_INTERVAL == timedelta(minutes=1) and SNAPSHOT_MAX_AGE == 2 * job.every
    assert tasks.compute_health_snapshots()["scopes"] == 3
    assert SkillHealthSnapshot.objects.count() == 6
    SkillHealthSnapshot.objects.all().delete()
    call_command("compute_health_snapshots")
    assert capsys.readouterr().out.strip() == "scopes: 3, rows: 6"
    assert SkillHealthSnapshot.objects.count() == 6


def test_deleting_a_skill_or_an_org_takes_its_snapshot_rows_along(executed):
    compute_health_snapshots()
    Skill.objects.get(skill_id="web_search").delete()
    assert not SkillHealthSnapshot.objects.filter(skill_id="web_search").exists()
    executed.other_org.delete()
    assert SkillHealthSnapshot.objects.filter(org__isnull=False).count() == 1


def test_the_health_page_and_the_ops_home_show_the_snapshot(client, executed):
    taken = timezone.now()
    compute_health_snapshots(taken)
    snapshot = SkillHealthSnapshot.objects.get(org=None, skill_id=SKILL).computed
    put(executed.org, [(0.01, False, 5.0)] * 20)
    assert health_scores([SKILL], org=ALL_ORGS)[SKILL].computed != snapshot
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))

    health = client.get("/admin/dashboards/health/")
    assert health.status_code == 200
    assert {row["health"].skill_id: row["health"].computed for row in health.context["health_rows"]}[SKILL] == snapshot
    assert f"as of {taken:%Y-%m-%d %H:%M:%S} UTC" in health.content.decode()

    home = client.get("/admin/")
    assert {each["row"].skill_id: each["score"] for each in home.context["ops"]["top_skills"]}[SKILL] == snapshot

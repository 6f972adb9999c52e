"""The ``rollup_metrics`` and ``sync_schedules`` management commands themselves (cron users run these).

Each is called as ``manage.py`` would call it: its effect is checked in the database and its one line of
output word for word; an unknown argument exits with status 2 and says which.
"""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command, execute_from_command_line
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from analytics.models import MetricRollup, RollupTier
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items

# The jobs the apps declare (analytics/, monitoring/ and alerts/schedule.py), the OTLP push aside (off by default).
DECLARED = {"rollup metrics", "cleanup old data", "compute leaderboards", "compute health scores", "track analytics",
            "run health checks", "roll up daily SLA", "check alerts", "send notifications", "back up database"}


def run(command, *args) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue().strip()


def from_the_command_line(capsys, *argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", *argv])
    return exited.value.code, capsys.readouterr().err


# --- rollup_metrics -------------------------------------------------------------------------------------


def rows(tier):
    """{host or "name row": (count, sum, min, max)} of the one bucket of this tier."""
    found = {}
    for row in MetricRollup.objects.filter(tier=tier, name="queue.depth").select_related("series"):
        key = row.series.tags["host"] if row.series_id else "name row"
        found[key] = (row.count, row.sum, row.min, row.max)
    return found


@pytest.mark.django_db
def test_rollup_metrics_builds_each_tier_once_and_rebuilds_a_late_minute(personas):
    # Seven days ago, inside one minute: host a 1.0 and 3.0, host b 5.0. That minute, its hour, its day and
    # its week (weeks start on Mondays: a week ago is always in one that has ended) are all closed, so the
    # first run builds one row per series and one for the name, in each tier.
    minute = datetime.fromtimestamp((timezone.now() - timedelta(days=7)).timestamp() // 60 * 60, UTC)
    ingest_metric_items(personas.org, [
        MetricItem("queue.depth", 1.0, "gauge", "", "", {"host": "a"}, minute + timedelta(seconds=10)),
        MetricItem("queue.depth", 3.0, "gauge", "", "", {"host": "a"}, minute + timedelta(seconds=20)),
        MetricItem("queue.depth", 5.0, "gauge", "", "", {"host": "b"}, minute + timedelta(seconds=30)),
    ])
    assert run("rollup_metrics") == "minute_rows: 3, hour_rows: 3, day_rows: 3, week_rows: 3, dirty_minutes: 0"
    expected = {"a": (2, 4.0, 1.0, 3.0), "b": (1, 5.0, 5.0, 5.0), "name row": (3, 9.0, 1.0, 5.0)}
    for tier in RollupTier.values:
        assert rows(tier) == expected, tier
    assert MetricRollup.objects.filter(tier=RollupTier.MINUTE).get(series=None).bucket_start == minute

    # Nothing new has closed: a second run writes nothing and changes nothing.
    assert run("rollup_metrics") == "minute_rows: 0, hour_rows: 0, day_rows: 0, week_rows: 0, dirty_minutes: 0"
    assert rows(RollupTier.WEEK) == expected

    # A late event in that minute marks it dirty; the next run rebuilds the minute, its hour, day and week.
    ingest_metric_items(personas.org, [
        MetricItem("queue.depth", 2.0, "gauge", "", "", {"host": "a"}, minute + timedelta(seconds=40)),
    ])
    assert run("rollup_metrics") == "minute_rows: 3, hour_rows: 3, day_rows: 3, week_rows: 3, dirty_minutes: 1"
    expected = {"a": (3, 6.0, 1.0, 3.0), "b": (1, 5.0, 5.0, 5.0), "name row": (4, 11.0, 1.0, 5.0)}
    for tier in RollupTier.values:
        assert rows(tier) == expected, tier


@pytest.mark.django_db
def test_rollup_metrics_with_nothing_recorded_writes_nothing():
    assert run("rollup_metrics") == "minute_rows: 0, hour_rows: 0, day_rows: 0, week_rows: 0, dirty_minutes: 0"
    assert not MetricRollup.objects.exists()


def test_rollup_metrics_refuses_an_unknown_argument(capsys):
    status, err = from_the_command_line(capsys, "rollup_metrics", "--since", "yesterday")
    assert status == 2
    assert "rollup_metrics: error: unrecognized arguments: --since yesterday" in err


# --- sync_schedules -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sync_schedules_creates_what_is_missing_and_keeps_what_the_admin_changed():
    run("sync_schedules")  # every declared job present, whatever the database held before
    assert DECLARED <= set(PeriodicTask.objects.values_list("name", flat=True))
    PeriodicTask.objects.filter(name="rollup metrics").delete()
    cleanup = PeriodicTask.objects.get(name="cleanup old data")  # declared daily at 03:17 UTC
    cleanup.crontab = CrontabSchedule.objects.create(minute="0", hour="5", timezone="UTC")
    cleanup.save()
    PeriodicTask.objects.filter(name="compute leaderboards").update(enabled=False)

    assert run("sync_schedules") == "periodic tasks: 1 created, 0 updated"
    rollup = PeriodicTask.objects.get(name="rollup metrics")
    assert (rollup.task, rollup.interval.every, rollup.interval.period, rollup.enabled) == (
        "analytics.rollup_metrics", 60, "seconds", True)
    # An operator's changes stand.
    assert PeriodicTask.objects.get(name="cleanup old data").crontab.hour == "5"
    assert PeriodicTask.objects.get(name="compute leaderboards").enabled is False

    # A job whose task path moved in the code gets the new path, and keeps its edited schedule.
    PeriodicTask.objects.filter(name="cleanup old data").update(task="analytics.old_cleanup_name")
    assert run("sync_schedules") == "periodic tasks: 0 created, 1 updated"
    cleanup = PeriodicTask.objects.get(name="cleanup old data")
    assert (cleanup.task, cleanup.crontab.hour) == ("analytics.cleanup_old_data", "5")


@pytest.mark.django_db
def test_sync_schedules_reset_puts_every_declared_job_back():
    run("sync_schedules")
    cleanup = PeriodicTask.objects.get(name="cleanup old data")
    cleanup.crontab = CrontabSchedule.objects.create(minute="0", hour="5", timezone="UTC")
    cleanup.save()
    PeriodicTask.objects.filter(name="compute leaderboards").update(enabled=False)

    assert run("sync_schedules", "--reset") == f"periodic tasks: 0 created, {len(DECLARED)} updated"
    cleanup = PeriodicTask.objects.get(name="cleanup old data")
    assert (cleanup.crontab.minute, cleanup.crontab.hour) == ("17", "3")
    assert PeriodicTask.objects.get(name="compute leaderboards").enabled is True


def test_sync_schedules_refuses_an_unknown_argument(capsys):
    status, err = from_the_command_line(capsys, "sync_schedules", "--dry-run")
    assert status == 2
    assert "sync_schedules: error: unrecognized arguments: --dry-run" in err

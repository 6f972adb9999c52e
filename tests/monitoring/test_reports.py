"""SLA reports from the stored history, daily summaries, and retention that keeps them."""

from datetime import timedelta

import pytest

from analytics.platform.collectors import cleanup_old_data
from monitoring import retention
from monitoring.models import HealthCheck, ServiceDailySLA
from monitoring.services.reports import roll_up_daily_sla, service_sla
from tests.monitoring.factories import T0, history, make_service

pytestmark = pytest.mark.django_db

# Interval 60 s, so a result holds 120 s at most. An outage runs over midnight (T0 + 86400 s).
OUTAGE_OVER_MIDNIGHT = [
    (86100, "healthy", 100.0),  # 23:55
    (86220, "unhealthy", None),  # 23:57
    (86280, "unhealthy", None),
    (86340, "unhealthy", None),  # holds until the next result at 00:01
    (86460, "unhealthy", None),  # 00:01
    (86520, "healthy", 200.0),  # 00:02, holds until 00:04, then nothing
]


def at(seconds):
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def service():
    service = make_service(sla_target=99.0)
    history(service, OUTAGE_OVER_MIDNIGHT)
    return service


def test_window_and_daily_figures_equal_the_hand_computed_ones(service):
    report = service_sla(service, at(86000), at(86700), now=at(86700))
    overall = report.overall
    # unknown 100 s, healthy 120, unhealthy 300 (one outage over midnight), healthy 120, unknown 60
    assert overall.seconds == {"unknown": 160, "healthy": 240, "unhealthy": 300, "degraded": 0}
    assert overall.uptime_percentage == pytest.approx(100 * 240 / 540)
    assert overall.downtime_incidents == 1
    assert overall.downtime_minutes == pytest.approx(5)
    assert overall.error_budget_remaining_minutes(99.0) == pytest.approx(0.01 * 9 - 5)
    assert overall.avg_response_time_ms == pytest.approx(150)
    assert overall.p95_response_time_ms == pytest.approx(195)
    first_day, second_day = report.daily
    assert (first_day.uptime_percentage, first_day.downtime_incidents, first_day.downtime_minutes) == (
        pytest.approx(40.0), 1, pytest.approx(3))
    assert (second_day.uptime_percentage, second_day.downtime_incidents, second_day.downtime_minutes) == (
        pytest.approx(50.0), 1, pytest.approx(2))
    assert [month.start for month in report.monthly] == [at(86000)]


def test_only_closed_days_are_summarised_once(service):
    assert roll_up_daily_sla(now=at(86700)) == 1  # 10 March is closed, 11 March is not
    assert roll_up_daily_sla(now=at(86700)) == 0
    row = ServiceDailySLA.objects.get()
    assert row.day == T0.date()
    assert (row.healthy_seconds, row.unhealthy_seconds, row.unknown_seconds) == (120, 180, 86100)
    assert row.ends_unhealthy and not row.starts_unhealthy
    assert row.uptime_percentage == pytest.approx(40.0)
    assert (row.response_count, row.avg_response_time_ms, row.p95_response_time_ms) == (1, 100, 100)


def test_cleanup_removes_old_checks_but_the_daily_figures_survive(service, settings):
    settings.ANALYTICS_DB_RETENTION_DAYS = 1
    now = at(2 * 86400 + 3600)
    before = service_sla(service, T0, at(2 * 86400), now=now)
    assert before.overall.source == "raw"

    assert retention.cleanup(now) == {"health checks": 6}
    assert HealthCheck.objects.count() == 0
    assert ServiceDailySLA.objects.count() == 2

    after = service_sla(service, T0, at(2 * 86400), now=now)
    assert after.overall.seconds == before.overall.seconds
    assert after.overall.downtime_incidents == before.overall.downtime_incidents == 1  # still one, over midnight
    assert after.overall.avg_response_time_ms == pytest.approx(before.overall.avg_response_time_ms)
    assert [day.source for day in after.daily] == ["rollup", "rollup"]
    for old, new in zip(before.daily, after.daily, strict=True):
        assert new.uptime_percentage == pytest.approx(old.uptime_percentage)
        assert new.p95_response_time_ms == pytest.approx(old.p95_response_time_ms)
    assert after.overall.p95_response_time_ms is None  # a percentile does not merge from summaries


def test_cleanup_keeps_checks_within_retention_and_deletes_in_batches(service, settings, monkeypatch):
    settings.ANALYTICS_DB_RETENTION_DAYS = 1
    monkeypatch.setattr(retention, "BATCH_SIZE", 4)
    history(service, [(86400 * 3, "healthy", 5.0)])
    removed = cleanup_old_data(now=at(86400 * 3 + 60))
    assert removed["health checks"] == 6
    assert HealthCheck.objects.count() == 1


def test_admin_uptime_may_read_summaries(service):
    from monitoring.services.reports import uptime_percentage

    roll_up_daily_sla(now=at(86700))
    ServiceDailySLA.objects.update(healthy_seconds=0)  # make the summary distinguishable from the raw history
    assert service_sla(service, T0, at(86400), now=at(86700)).overall.uptime_percentage == pytest.approx(40.0)
    assert uptime_percentage(service, timedelta(days=1), now=at(86400)) == pytest.approx(0.0)

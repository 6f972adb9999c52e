"""The service list computes its uptime columns for the whole page at once, and they are right."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.models import HealthCheck, ServiceDailySLA
from monitoring.services.reports import roll_up_daily_sla, service_sla, uptime_percentages
from monitoring.services.sla import day_start
from tests.monitoring.factories import make_service

pytestmark = pytest.mark.django_db
PERIODS = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def add_services(first, last, now):
    """Services with ten days of checks every 10 minutes, unhealthy a different share of the time each."""
    made = []
    for index in range(first, last):
        service = make_service(f"svc-{index}", interval_seconds=600)
        start = now - timedelta(days=10)
        checks = []
        for step in range(int((now - start).total_seconds() // 600)):
            unhealthy = step % (index + 2) == 0
            checks.append(HealthCheck(service=service, checked_at=start + timedelta(seconds=600 * step),
                                      status="unhealthy" if unhealthy else "healthy",
                                      response_time_ms=None if unhealthy else 20.0 + index,
                                      consecutive_failures=1 if unhealthy else 0))
        HealthCheck.objects.bulk_create(checks)
        made.append(service)
    # Summaries for all closed days but yesterday, as if the roll-up had not run since.
    roll_up_daily_sla(now, services=made)
    ServiceDailySLA.objects.filter(service__in=made, day=(day_start(now) - timedelta(days=1)).date()).delete()
    return made


def page_queries(client) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/monitoring/service/")
    assert response.status_code == 200
    return len(queries.captured_queries), response


def test_uptime_columns_cost_the_same_queries_for_two_rows_as_for_six(admin_client):
    now = timezone.now()
    add_services(0, 2, now)
    with_two, _ = page_queries(admin_client)
    add_services(2, 6, now)
    with_six, response = page_queries(admin_client)
    assert with_six == with_two
    services = list(response.context["cl"].result_list)
    assert len(services) == 6
    html = response.content.decode()
    for service in services:
        for label, period in PERIODS.items():
            expected = service_sla(service, now - period, now, now=now, exact=False).overall.uptime_percentage
            # The page computed at its own moment, a fraction of a second after ``now``.
            assert service.uptimes[label] == pytest.approx(expected, abs=0.05), (service.name, label)
        assert f"{service.uptimes['30d']:.3f}%" in html


def test_batched_uptimes_equal_the_report_of_each_service():
    now = timezone.now()
    services = add_services(0, 3, now)
    batched = uptime_percentages(services, list(PERIODS.values()), now=now)
    for service in services:
        expected = [service_sla(service, now - period, now, now=now, exact=False).overall.uptime_percentage
                    for period in PERIODS.values()]
        assert batched[service.pk] == pytest.approx(expected, rel=1e-12)
        assert 0 < expected[0] < 100


def test_uptimes_in_two_queries_whatever_the_number_of_services():
    now = timezone.now()
    services = add_services(0, 4, now) + [make_service("never-checked")]
    with CaptureQueriesContext(connection) as queries:
        uptimes = uptime_percentages(services, list(PERIODS.values()), now=now)
    assert len(queries.captured_queries) == 2
    assert uptimes[services[-1].pk] == [None, None, None]

"""GET monitoring/health, monitoring/health/{service}, monitoring/sla/{service} (API.md, Monitoring)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import CheckOutcome
from monitoring.services.health import HealthSummary, ServiceHealth
from monitoring.services.reports import SlaReportBody
from monitoring.services.sla import day_start
from tests.monitoring.factories import history, make_service

pytestmark = pytest.mark.django_db


def checked(service, ok=True, response=20.0, ago=timedelta(seconds=10)):
    service.record(CheckOutcome(ok, response, "" if ok else "refused"), checked_at=timezone.now() - ago)
    return service


@pytest.fixture
def services():
    return {
        "api": checked(make_service("api")),
        "slow": checked(make_service("slow", degraded_response_time_ms=10), response=50.0),
        "down": checked(make_service("down", failures_before_unhealthy=1), ok=False),
        "never": make_service("never"),
    }


def test_health_summary_has_the_seeds_shape_plus_unknown(personas, services):
    make_service("switched-off", enabled=False)
    response = personas.member.get("monitoring/health")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(HealthSummary.model_fields)
    assert (body["overall_status"], body["total_services"]) == ("unhealthy", 4)
    assert (body["healthy"], body["degraded"], body["unhealthy"], body["unknown"]) == (1, 1, 1, 1)
    by_name = {s["service_name"]: s for s in body["services"]}
    assert by_name["api"]["status"] == "healthy"
    assert by_name["api"]["response_time_ms"] == 20.0
    assert by_name["api"]["consecutive_failures"] == 0
    assert by_name["api"]["last_checked"].endswith("Z")
    assert by_name["down"]["consecutive_failures"] == 1
    assert by_name["never"] == {"service_name": "never", "service_type": "api", "status": "unknown",
                                "response_time_ms": None, "consecutive_failures": 0, "last_checked": None}


def test_overall_status_is_the_worst(personas, services):
    services["down"].delete()
    assert personas.member.get("monitoring/health").json()["overall_status"] == "unknown"
    services["never"].delete()
    assert personas.member.get("monitoring/health").json()["overall_status"] == "degraded"
    services["slow"].delete()
    assert personas.member.get("monitoring/health").json()["overall_status"] == "healthy"
    services["api"].delete()
    body = personas.member.get("monitoring/health").json()
    assert (body["overall_status"], body["total_services"], body["services"]) == ("unknown", 0, [])


def test_services_are_platform_wide_any_valid_token_reads_them(personas, services):
    for persona in (personas.member, personas.reader, personas.outsider, personas.staff):
        assert persona.get("monitoring/health").status_code == 200
        assert persona.get("monitoring/health/api").status_code == 200
        assert persona.get("monitoring/sla/api/").status_code == 200
    assert personas.anonymous.get("monitoring/health").status_code == 401
    assert personas.anonymous.get("monitoring/sla/api").status_code == 401


def test_service_health_shows_status_and_recent_checks_newest_first(personas, services):
    service = services["down"]
    checked(service, ok=True, ago=timedelta(seconds=1))
    body = personas.member.get("monitoring/health/down").json()
    assert set(body) == set(ServiceHealth.model_fields)
    assert (body["status"], body["health"], body["consecutive_failures"]) == ("healthy", 1.0, 0)
    assert [c["status"] for c in body["recent_checks"]] == ["healthy", "unhealthy"]
    assert body["recent_checks"][1]["error"] == "refused"
    assert "target" not in body  # may hold credentials
    assert len(personas.member.get("monitoring/health/down", {"limit": 1}).json()["recent_checks"]) == 1
    assert personas.member.get("monitoring/health/down", {"limit": "0"}).json() == {
        "errors": {"limit": ["Must be an integer from 1 to 100."]}}


def test_an_unknown_service_answers_404_json(personas):
    for path in ("monitoring/health/nope", "monitoring/sla/nope"):
        response = personas.member.get(path)
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")


def test_sla_over_a_hand_built_history(personas):
    service = make_service("db", sla_target=99.0)
    base = day_start(timezone.now()) - timedelta(days=2)
    # a healthy check, an outage of 5 minutes over midnight, a healthy check, then nothing
    history(service, [(86100, "healthy", 100.0), (86220, "unhealthy", None), (86280, "unhealthy", None),
                      (86340, "unhealthy", None), (86460, "unhealthy", None), (86520, "healthy", 200.0)], start=base)
    start, end = base + timedelta(seconds=86000), base + timedelta(seconds=86700)
    response = personas.member.get("monitoring/sla/db", {"start": start.isoformat(), "end": end.isoformat()})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(SlaReportBody.model_fields)
    assert body["service_name"] == "db"
    assert body["start"].endswith("Z") and body["end"].endswith("Z")
    assert body["uptime_percentage"] == 44.4444  # 240 s up of 540 s known; 160 s unknown
    assert body["sla_target"] == 99.0
    assert body["compliant"] is False
    assert body["error_budget_remaining_minutes"] == -4.91  # 1% of 9 known minutes, minus 5 down
    assert (body["avg_response_time_ms"], body["p95_response_time_ms"]) == (150.0, 195.0)
    assert (body["downtime_incidents"], body["downtime_minutes"]) == (1, 5.0)
    assert (body["monitored_minutes"], body["unknown_minutes"]) == (9.0, 2.67)
    assert [day["uptime_percentage"] for day in body["daily"]] == [40.0, 50.0]
    assert len(body["monthly"]) in (1, 2)


def test_sla_defaults_to_30_days_and_rejects_bad_windows(personas):
    make_service("db")
    body = personas.member.get("monitoring/sla/db").json()
    assert 30 <= len(body["daily"]) <= 31
    assert body["uptime_percentage"] is None and body["compliant"] is None  # no results: unknown, not 100 %
    assert personas.member.get("monitoring/sla/db", {"days": "7"}).status_code == 200
    response = personas.member.get("monitoring/sla/db", {"days": "-1"})
    assert response.status_code == 400 and "days" in response.json()["errors"]
    assert personas.member.get("monitoring/sla/db", {"days": "1", "hours": "1"}).status_code == 400

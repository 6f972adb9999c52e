"""``GET dashboard?days=7`` (seed 003): the seed's keys, with values worked out by hand from a few events."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from analytics.models import ActivityEvent
from analytics.services.activity_periods import compute_periods
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items
from monitoring.models import CheckOutcome
from tests.monitoring.factories import make_service

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 18, 15, 30, tzinfo=UTC)  # the 7-day window starts 2026-03-11 15:30


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def pinned_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def event(org, type, moment, **columns):
    return ActivityEvent(org=org, type=type, timestamp=moment, **columns)


@pytest.fixture
def activity(personas, pinned_now):
    acme = personas.org
    ActivityEvent.objects.bulk_create([
        # Before the window: a user and an agent who count in the totals only.
        event(acme, "signup", at(5, 9), user_id="u_old"),
        event(acme, "session", at(5, 10), user_id="u_old", value=60.0),
        event(acme, "agent_registered", at(1, 9), agent_id="a_old"),
        # 12 March: u1 signs up, a1 registers; u1 opens contract c1 with a1 and calls a1.
        event(acme, "signup", at(12, 10), user_id="u1"),
        event(acme, "session", at(12, 10), user_id="u1", value=300.0),
        event(acme, "agent_registered", at(12, 9), agent_id="a1"),
        event(acme, "contract_created", at(12, 11), user_id="u1", agent_id="a1", contract_id="c1", value=100.0),
        event(acme, "agent_call", at(12, 12), user_id="u1", agent_id="a1", value=200.0, success=True),
        # 13 March: c1 completes and u1 pays a1 100, of which 15 is the platform's.
        event(acme, "contract_completed", at(13, 9), user_id="u1", agent_id="a1", contract_id="c1"),
        event(acme, "payment", at(13, 10), user_id="u1", agent_id="a1", contract_id="c1", value=100.0, fee=15.0),
        # Today: u2, never signed up, is first seen; their contract c2 is still open.
        event(acme, "session", at(18, 14), user_id="u2", value=120.0),
        event(acme, "contract_created", at(18, 15), user_id="u2", contract_id="c2"),
        # Another org's payment: not acme's revenue.
        event(personas.other_org, "payment", at(18, 10), user_id="g1", agent_id="ga", value=999.0, fee=99.0),
    ])
    compute_periods("day", at(11, 0), at(19, 0), org=acme, now=NOW)
    # Three API requests by acme's tokens, one answered 500; and one by the other org.
    ingest_metric_items(acme, [
        MetricItem("api.response_time", ms, "timer", "ms", "", {"endpoint": "skill-detail", "method": "GET",
                                                                "status": status}, NOW - timedelta(hours=1))
        for ms, status in ((10.0, "200"), (20.0, "500"), (30.0, "200"))
    ])
    ingest_metric_items(personas.other_org, [MetricItem("api.response_time", 5.0, "timer", "ms", "", {
        "endpoint": "me", "method": "GET", "status": "200"}, NOW - timedelta(hours=1))])
    make_service("api").record(CheckOutcome(True, 25.5, ""), checked_at=NOW - timedelta(seconds=10))
    make_service("db", degraded_response_time_ms=10).record(CheckOutcome(True, 50.0, ""),
                                                             checked_at=NOW - timedelta(seconds=10))


def zero_day(day: int) -> dict:
    return {"period_start": f"2026-03-{day:02d}T00:00:00Z", "users_active": 0, "users_new": 0, "agents_active": 0,
            "contracts_total": 0, "contracts_completed": 0, "revenue": 0.0, "platform_fees": 0.0}


def test_the_seeds_dashboard_example_with_figures_worked_out_by_hand(personas, activity):
    response = personas.member.get("dashboard", {"days": 7})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"current_metrics", "trends", "performance", "monitoring", "start", "end"}
    assert (body["start"], body["end"]) == ("2026-03-11T15:30:00Z", "2026-03-18T15:30:00Z")
    assert body["current_metrics"] == {
        "users": {"total": 3, "active": 2, "new": 2},  # u_old, u1, u2; u1 and u2 active, both new
        "agents": {"total": 2, "active": 1, "new": 1},  # a_old, a1; a1 active and new
        "contracts": {"total": 2, "active": 1, "completed": 1},  # c1 and c2; c2 open; c1 completed
        "financial": {"revenue": 100.0, "platform_fees": 15.0},
    }
    assert body["trends"] == [
        zero_day(11),
        {**zero_day(12), "users_active": 1, "users_new": 1, "agents_active": 1, "contracts_total": 1},
        {**zero_day(13), "users_active": 1, "agents_active": 1, "contracts_completed": 1, "revenue": 100.0,
         "platform_fees": 15.0},
        *[zero_day(day) for day in (14, 15, 16, 17)],
        {**zero_day(18), "users_active": 1, "users_new": 1, "contracts_total": 1},
    ]
    [requests] = body["performance"]["results"]
    assert (requests["endpoint"], requests["requests"], requests["p50"]) == ("skill-detail", 3, 20.0)
    assert requests["error_rate"] == pytest.approx(1 / 3)
    monitoring = body["monitoring"]
    assert (monitoring["overall_status"], monitoring["healthy"], monitoring["degraded"]) == ("degraded", 1, 1)
    assert {service["service_name"]: service["status"] for service in monitoring["services"]} == {
        "api": "healthy", "db": "degraded"}


def test_the_default_window_is_seven_days_and_another_window_moves_the_figures(personas, activity):
    default = personas.member.get("dashboard").json()
    assert (default["start"], default["end"]) == ("2026-03-11T15:30:00Z", "2026-03-18T15:30:00Z")
    today = personas.member.get("dashboard", {"hours": 2}).json()
    assert today["current_metrics"]["users"] == {"total": 3, "active": 1, "new": 1}  # u2 only
    assert today["current_metrics"]["financial"] == {"revenue": 0.0, "platform_fees": 0.0}
    assert [point["period_start"] for point in today["trends"]] == ["2026-03-18T00:00:00Z"]


def test_another_org_sees_its_own_figures_and_staff_name_the_org(personas, activity):
    outsider = personas.outsider.get("dashboard").json()
    assert outsider["current_metrics"]["financial"] == {"revenue": 999.0, "platform_fees": 99.0}
    assert [row["endpoint"] for row in outsider["performance"]["results"]] == ["me"]
    assert personas.anonymous.get("dashboard").status_code == 401
    staff = personas.staff.get("dashboard")
    assert staff.status_code == 400
    assert list(staff.json()["errors"]) == ["org"]
    assert personas.staff.get("dashboard", {"org": "acme"}).json() == personas.member.get("dashboard").json()


@pytest.mark.parametrize("params, field", [({"days": 0}, "days"), ({"days": 7, "hours": 2}, "days"),
                                           ({"start": "not a time"}, "start")])
def test_a_bad_window_is_a_400_naming_it(personas, pinned_now, params, field):
    response = personas.member.get("dashboard", params)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]

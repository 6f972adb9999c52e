"""Activity in and out (seed 003): POST events, a user's and an agent's stored period, and the trends of a user,
an agent and the platform, computed by hand from rows created here."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from analytics.models import ActivityEvent, AgentAnalytics, PlatformMetrics, UserAnalytics
from analytics.services.periods import period_end

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 18, 15, 30, tzinfo=UTC)  # a Wednesday
TODAY = datetime(2026, 3, 18, tzinfo=UTC)


def day(days_ago: int) -> datetime:
    return TODAY - timedelta(days=days_ago)


def z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def pinned_now(monkeypatch):
    """The reads' "current period" is NOW's, whenever the test runs."""
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def user_row(org, start, period_type="day", user_id="u1", **figures):
    return UserAnalytics.objects.create(org=org, user_id=user_id, period_type=period_type, period_start=start,
                                        period_end=period_end(start, period_type), **figures)


def agent_row(org, start, period_type="day", agent_id="a1", **figures):
    return AgentAnalytics.objects.create(org=org, agent_id=agent_id, period_type=period_type, period_start=start,
                                         period_end=period_end(start, period_type), **figures)


def platform_row(org, start, period_type="day", **figures):
    return PlatformMetrics.objects.create(org=org, period_type=period_type, period_start=start,
                                          period_end=period_end(start, period_type), **figures)


# --- POST events -------------------------------------------------------------------------------------


def test_one_event_is_stored_with_its_measure_in_the_value_column(personas):
    response = personas.member.post("events", {"type": "session", "user_id": "u1", "active_seconds": 120})
    assert response.status_code == 201, response.json()
    assert response.json() == {"accepted": 1, "duplicates": 0}
    event = ActivityEvent.objects.get()
    assert (event.org, event.type, event.user_id, event.value) == (personas.org, "session", "u1", 120.0)


def test_a_batch_of_several_types_is_stored_whole(personas):
    batch = [
        {"type": "page_view", "user_id": "u1", "path": "/agents"},
        {"type": "payment", "agent_id": "a1", "user_id": "u1", "amount": 50, "platform_fee": 7.5},
        {"type": "agent_call", "agent_id": "a1", "success": False, "response_time_ms": 80},
    ]
    response = personas.member.post("events", {"events": batch})
    assert response.status_code == 201, response.json()
    assert response.json() == {"accepted": 3, "duplicates": 0}
    stored = {event.type: event for event in ActivityEvent.objects.filter(org=personas.org)}
    assert stored["page_view"].detail == {"path": "/agents"}
    assert (stored["payment"].value, stored["payment"].fee, stored["payment"].user_id) == (50.0, 7.5, "u1")
    assert (stored["agent_call"].value, stored["agent_call"].success) == (80.0, False)


def test_an_unknown_type_is_a_400_naming_type_with_the_item_index_and_nothing_is_stored(personas):
    batch = [{"type": "session", "user_id": "u1"}, {"type": "teleport", "user_id": "u1"}]
    response = personas.member.post("events", batch)
    assert response.status_code == 400
    [problem] = response.json()["errors"]
    assert problem["index"] == 1 and problem["type"][0].startswith("Unknown type; one of: signup, session")
    assert not ActivityEvent.objects.exists()


def test_a_missing_field_of_the_type_is_named_with_the_item_index_and_nothing_is_stored(personas):
    batch = [{"type": "session", "user_id": "u1"}, {"type": "bid", "agent_id": "a1", "contract_id": "c1"}]
    response = personas.member.post("events", batch)
    assert response.status_code == 400
    assert response.json() == {"errors": [{"index": 1, "price": ["This field is required."]}]}
    assert not ActivityEvent.objects.exists()


def test_durations_are_bounded_so_the_sums_of_a_period_stay_finite(personas):
    # 1e300 was accepted once: the sum of a few made PostgreSQL refuse the period's figures (a float overflow).
    batch = [{"type": "session", "user_id": "u1", "active_seconds": 1e12},
             {"type": "agent_call", "agent_id": "a1", "success": True, "response_time_ms": 1e300}]
    response = personas.member.post("events", batch)
    assert response.status_code == 400
    assert response.json() == {"errors": [{"index": 1, "response_time_ms": ["Must be at most 1e+12."]}]}


def test_a_repeated_event_id_is_counted_as_a_duplicate_and_stored_once(personas):
    batch = [{"type": "action", "user_id": "u1", "event_id": f"e{i}"} for i in range(3)]
    assert personas.member.post("events", batch).json() == {"accepted": 3, "duplicates": 0}
    again = [*batch[1:], {"type": "action", "user_id": "u1", "event_id": "e3"}]
    assert personas.member.post("events", again).json() == {"accepted": 1, "duplicates": 2}
    assert ActivityEvent.objects.count() == 4


def test_writing_events_needs_a_writing_token(personas):
    event = {"type": "signup", "user_id": "u1"}
    assert personas.anonymous.post("events", event).status_code == 401
    assert personas.reader.post("events", event).status_code == 403
    assert not ActivityEvent.objects.exists()


# --- A user's and an agent's period ------------------------------------------------------------------

USER_FIGURES = {"sessions": 5, "page_views": 50, "actions": 12, "active_seconds": 1800.0, "contracts_created": 3,
                "contracts_completed": 2, "contracts_cancelled": 1, "credits_purchased": 200.0,
                "credits_spent": 150.0, "total_spent": 75.5, "agents_used": 5, "orchestrations_run": 2}


def test_a_user_reads_as_the_seed_shows_the_most_recent_stored_day(personas, pinned_now):
    user_row(personas.org, day(1), sessions=1)
    user_row(personas.org, day(0), **USER_FIGURES, agent_ids=["a1", "a2", "a3", "a4", "a5"])
    user_row(personas.org, NOW.replace(minute=0), period_type="hour", sessions=9)
    response = personas.member.get("user/u1", {"period_type": "day"})
    assert response.status_code == 200, response.json()
    assert response.json() == {"user_id": "u1", "period_type": "day", "period_start": "2026-03-18T00:00:00Z",
                               "period_end": "2026-03-19T00:00:00Z", **USER_FIGURES}
    assert personas.member.get("user/u1/").json()["sessions"] == 5  # day is the default
    hour = personas.member.get("user/u1", {"period_type": "hour"}).json()
    assert (hour["period_start"], hour["period_end"], hour["sessions"]) == (
        "2026-03-18T15:00:00Z", "2026-03-18T16:00:00Z", 9)


def test_start_picks_the_period_containing_it(personas, pinned_now):
    user_row(personas.org, day(1), sessions=1)
    user_row(personas.org, day(0), sessions=5)
    body = personas.member.get("user/u1", {"start": "2026-03-17T23:59:59"}).json()  # naive: UTC
    assert (body["period_start"], body["sessions"]) == ("2026-03-17T00:00:00Z", 1)
    assert personas.member.get("user/u1", {"start": "2026-03-16T12:00:00Z"}).status_code == 404


def test_a_user_without_a_stored_period_of_the_type_or_of_another_org_is_a_404(personas, pinned_now):
    user_row(personas.org, day(0), sessions=5)
    assert personas.member.get("user/u2").status_code == 404
    assert personas.member.get("user/u1", {"period_type": "week"}).status_code == 404
    assert personas.outsider.get("user/u1").status_code == 404
    assert personas.outsider.get("user/u1/trends").status_code == 404


def test_an_agent_reads_with_every_agent_figure(personas, pinned_now):
    figures = {"calls": 10, "successful_calls": 9, "failed_calls": 1, "success_rate": 0.9,
               "avg_response_time_ms": 120.0, "p50_response_time_ms": 100.0, "p95_response_time_ms": 300.0,
               "p99_response_time_ms": 450.0, "uptime_seconds": 82800.0, "downtime_seconds": 3600.0,
               "uptime_percentage": 95.83, "bids": 4, "contracts_won": 2, "contracts_completed": 1,
               "contracts_failed": 0, "revenue": 250.0, "avg_bid_price": 62.5, "validation_score": 88.0,
               "reputation_score": 91.0}
    agent_row(personas.org, day(0), **figures)
    response = personas.reader.get("agent/a1")
    assert response.status_code == 200, response.json()
    assert response.json() == {"agent_id": "a1", "period_type": "day", "period_start": "2026-03-18T00:00:00Z",
                               "period_end": "2026-03-19T00:00:00Z", **figures}
    assert personas.reader.get("agent/a2").status_code == 404
    assert personas.outsider.get("agent/a1").status_code == 404


def test_a_period_without_calls_or_heartbeats_reads_its_rates_as_null(personas, pinned_now):
    agent_row(personas.org, day(0), bids=2)
    body = personas.member.get("agent/a1").json()
    assert (body["bids"], body["calls"], body["success_rate"], body["uptime_percentage"]) == (2, 0, None, None)


# --- Trends --------------------------------------------------------------------------------------------


def test_a_user_trend_sums_the_last_n_days_and_compares_them_with_the_n_before(personas, pinned_now):
    # The last 3 days: 2 (day 2 missing: 0), 2, 4 = 6; the 3 before: 3, 1, (day 5 missing) = 4 → +50 %.
    for days_ago, sessions in ((0, 4), (1, 2), (3, 1), (4, 3)):
        user_row(personas.org, day(days_ago), sessions=sessions)
    user_row(personas.org, day(6), sessions=100)  # before both spans
    user_row(personas.org, day(0), user_id="u2", sessions=50)  # another user
    response = personas.member.get("user/u1/trends", {"periods": 3})
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "user_id": "u1", "period_type": "day", "metric": "sessions", "total_is": "sum",
        "points": [{"period_start": "2026-03-16T00:00:00Z", "value": 0},
                   {"period_start": "2026-03-17T00:00:00Z", "value": 2},
                   {"period_start": "2026-03-18T00:00:00Z", "value": 4}],
        "total": 6, "previous_total": 4, "change_percent": 50.0,
    }


def test_a_trend_defaults_to_seven_periods_and_follows_the_metric_asked_for(personas, pinned_now):
    user_row(personas.org, day(0), sessions=1, credits_spent=12.5)
    user_row(personas.org, day(9), credits_spent=5.0)
    body = personas.member.get("user/u1/trends", {"metric": "credits_spent"}).json()
    assert [point["period_start"] for point in body["points"]] == [z(day(n)) for n in range(6, -1, -1)]
    assert [point["value"] for point in body["points"]] == [0, 0, 0, 0, 0, 0, 12.5]
    assert (body["metric"], body["total"], body["previous_total"], body["change_percent"]) == (
        "credits_spent", 12.5, 5.0, 150.0)


def test_change_percent_is_null_when_the_periods_before_had_nothing(personas, pinned_now):
    user_row(personas.org, day(0), sessions=3)
    body = personas.member.get("user/u1/trends", {"periods": 2}).json()
    assert (body["total"], body["previous_total"], body["change_percent"]) == (3, 0, None)


def test_weeks_are_iso_weeks_ending_with_the_current_one(personas, pinned_now):
    monday = datetime(2026, 3, 16, tzinfo=UTC)
    user_row(personas.org, monday, period_type="week", sessions=7)
    user_row(personas.org, monday - timedelta(weeks=1), period_type="week", sessions=14)
    body = personas.member.get("user/u1/trends", {"period_type": "week", "periods": 1}).json()
    assert body["points"] == [{"period_start": "2026-03-16T00:00:00Z", "value": 7}]
    assert (body["total"], body["previous_total"], body["change_percent"]) == (7, 14, -50.0)


def test_an_agent_rate_trend_averages_the_periods_that_have_one(personas, pinned_now):
    # Last 2 days: 0.9 and a day without calls (null) → 0.9; the 2 before: 0.5, 0.7 → 0.6; +50 %.
    agent_row(personas.org, day(0), calls=10, success_rate=0.9)
    agent_row(personas.org, day(2), calls=2, success_rate=0.5)
    agent_row(personas.org, day(3), calls=10, success_rate=0.7)
    body = personas.member.get("agent/a1/trends", {"metric": "success_rate", "periods": 2}).json()
    assert body["points"] == [{"period_start": "2026-03-17T00:00:00Z", "value": None},
                              {"period_start": "2026-03-18T00:00:00Z", "value": 0.9}]
    assert body["total_is"] == "mean"
    assert body["total"] == pytest.approx(0.9)
    assert body["previous_total"] == pytest.approx(0.6)
    assert body["change_percent"] == pytest.approx(50.0)
    calls = personas.member.get("agent/a1/trends", {"periods": 2}).json()  # calls by default
    assert (calls["metric"], calls["total_is"], calls["total"], calls["previous_total"]) == ("calls", "sum", 10, 12)


def test_a_trend_of_a_rate_with_no_value_anywhere_is_null(personas, pinned_now):
    agent_row(personas.org, day(0), bids=1)
    body = personas.member.get("agent/a1/trends", {"metric": "uptime_percentage", "periods": 2}).json()
    assert (body["total"], body["previous_total"], body["change_percent"]) == (None, None, None)


def test_platform_trends_read_the_orgs_platform_metrics(personas, pinned_now):
    # users_active (default; mean): last 2 days 20, 10 → 15; the 2 before: 5 and a missing day (0) → 2.5.
    platform_row(personas.org, day(0), users_active=10, revenue=100.0)
    platform_row(personas.org, day(1), users_active=20, revenue=50.0)
    platform_row(personas.org, day(2), users_active=5, revenue=25.0)
    platform_row(personas.other_org, day(0), users_active=999, revenue=999.0)
    body = personas.member.get("platform/trends", {"periods": 2}).json()
    assert body == {
        "period_type": "day", "metric": "users_active", "total_is": "mean",
        "points": [{"period_start": "2026-03-17T00:00:00Z", "value": 20},
                   {"period_start": "2026-03-18T00:00:00Z", "value": 10}],
        "total": 15.0, "previous_total": 2.5, "change_percent": 500.0,
    }
    revenue = personas.member.get("platform/trends", {"periods": 2, "metric": "revenue"}).json()
    assert (revenue["total_is"], revenue["total"], revenue["previous_total"], revenue["change_percent"]) == (
        "sum", 150.0, 25.0, 500.0)
    outsider = personas.outsider.get("platform/trends", {"periods": 1}).json()
    assert outsider["points"] == [{"period_start": "2026-03-18T00:00:00Z", "value": 999}]


@pytest.mark.parametrize("path, params, field", [
    ("user/u1/trends", {"metric": "calls"}, "metric"),  # an agent's figure, not a user's
    ("agent/a1/trends", {"metric": "sessions"}, "metric"),
    ("platform/trends", {"metric": "nonsense"}, "metric"),
    ("user/u1/trends", {"periods": 0}, "periods"),
    ("user/u1/trends", {"periods": 367}, "periods"),
    ("agent/a1/trends", {"periods": "seven"}, "periods"),
    ("user/u1", {"period_type": "year"}, "period_type"),
    ("user/u1", {"start": "yesterday"}, "start"),
    ("platform/trends", {"period_type": ""}, "period_type"),
])
def test_bad_parameters_are_a_400_naming_them(personas, pinned_now, path, params, field):
    user_row(personas.org, day(0))
    agent_row(personas.org, day(0))
    response = personas.member.get(path, params)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


@pytest.mark.parametrize("path", ["user/u1", "user/u1/trends", "agent/a1", "agent/a1/trends", "platform/trends"])
def test_staff_name_the_org_and_nobody_reads_without_a_token(personas, pinned_now, path):
    user_row(personas.org, day(0), sessions=5)
    agent_row(personas.org, day(0), calls=3)
    platform_row(personas.org, day(0), users_active=4)
    assert personas.anonymous.get(path).status_code == 401
    response = personas.staff.get(path)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["org"]
    assert personas.staff.get(path, {"org": "initech"}).status_code == 400
    as_staff = personas.staff.get(path, {"org": "acme"})
    assert as_staff.status_code == 200
    assert as_staff.json() == personas.member.get(path).json()


# --- The admin -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_path, search", [("activityevent", "u1"), ("useranalytics", "u1"),
                                                ("agentanalytics", "a1"), ("platformmetrics", "")])
def test_the_admin_lists_the_rows_read_only_by_day_and_finds_an_id(admin_client, personas, pinned_now, model_path,
                                                                  search):
    ActivityEvent.objects.create(org=personas.org, type="session", timestamp=NOW, user_id="u1", value=30.0)
    user_row(personas.org, day(0), sessions=1)
    agent_row(personas.org, day(0), calls=1)
    platform_row(personas.org, day(0), users_active=1)
    url = f"/admin/analytics/{model_path}/"
    page = admin_client.get(url, {"q": search, "period_type": "day"} if model_path != "activityevent" else
                            {"q": search, "timestamp__day": 18, "timestamp__month": 3, "timestamp__year": 2026})
    assert page.status_code == 200
    assert len(page.context["cl"].result_list) == 1
    nothing = admin_client.get(url, {"q": "nobody"} if search else {"period_type": "hour"})
    assert len(nothing.context["cl"].result_list) == 0
    assert admin_client.get(url + "add/").status_code == 403

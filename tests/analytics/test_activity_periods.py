"""The period analytics (docs/activity.md, "Period analytics"): every figure of a hand-made set of events,
compared with the value worked out by hand; uptime with carried-over states and silences; churn; late events;
idempotence; the command and the scheduled job."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict
from pydantic import TypeAdapter

from analytics.models import (
    ActivityDirtyPeriod,
    AgentAnalytics,
    Organization,
    PeriodType,
    PlatformMetrics,
    UserAnalytics,
)
from analytics.platform.scope import Scope
from analytics.services import activity_periods
from analytics.services.activity import ActivityEventItem, record_activity
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 10, tzinfo=UTC)  # a Tuesday; the day before is in the same ISO week
BEFORE = DAY - timedelta(days=1)
LONG_BEFORE = DAY - timedelta(days=2)
AFTER_THE_DAY = DAY + timedelta(days=2)
ITEM = TypeAdapter(ActivityEventItem)


def at(hours: float = 0, minutes: float = 0, *, day: datetime = DAY) -> datetime:
    return day + timedelta(hours=hours, minutes=minutes)


def event(event_type: str, moment: datetime, **fields) -> ActivityEventItem:
    return ITEM.validate_python({"type": event_type, "timestamp": moment, **fields})


def heartbeat(agent_id: str, moment: datetime, available: bool = True) -> ActivityEventItem:
    return event("agent_heartbeat", moment, agent_id=agent_id, available=available)


def call(agent_id: str, moment: datetime, response_time_ms: float, success: bool = True, **fields):
    return event("agent_call", moment, agent_id=agent_id, response_time_ms=response_time_ms, success=success,
                 **fields)


@pytest.fixture
def org() -> Organization:
    return Organization.objects.create(slug="acme", name="Acme")


@pytest.fixture
def activity(org):
    """The hand-made events. Heartbeat timeout: the default 300 s.

    Users: u1 signs up and does everything on DAY; u2 was seen the day before; u3 only the day before
    (churned); u4 was seen long before and signs up on DAY (new all the same). Agents: a1 (registered the day
    before) answers five calls and has heartbeats with a carried state, an outage and a long silence; a2 first
    appears on DAY; a3 only has a heartbeat just before DAY (its state is carried in); a4 went silent long
    before DAY; a5 registers on DAY.
    """
    events = [
        # Before DAY
        event("session", at(-48), user_id="u4", active_seconds=10.0),
        event("contract_created", at(-47), contract_id="c0", user_id="u4", amount=10.0),
        heartbeat("a4", at(-46)),
        event("agent_registered", at(9, day=BEFORE), agent_id="a1"),
        event("session", at(10, day=BEFORE), user_id="u2", active_seconds=60.0),
        event("page_view", at(12, day=BEFORE), user_id="u3", path="/"),
        event("contract_created", at(13, day=BEFORE), contract_id="cf", user_id="u3"),
        heartbeat("a3", at(-0, -3)),  # 23:57 the day before
        heartbeat("a1", at(0, -2)),  # 23:58 the day before
        # u1
        event("signup", at(1), user_id="u1"),
        event("session", at(1, 5), user_id="u1", active_seconds=300.0),
        event("session", at(2), user_id="u1", active_seconds=120.5),
        event("page_view", at(2, 1), user_id="u1", path="/a"),
        event("page_view", at(2, 2), user_id="u1", path="/b"),
        event("action", at(2, 3), user_id="u1", name="click"),
        event("contract_created", at(3), contract_id="c1", user_id="u1", agent_id="a1", amount=50.0),
        event("credits_purchased", at(3, 30), user_id="u1", credits=100.0),
        event("credits_spent", at(4), user_id="u1", credits=30.0, agent_id="a1"),
        event("contract_completed", at(5), contract_id="c1", user_id="u1", agent_id="a1"),
        event("payment", at(5, 10), agent_id="a1", user_id="u1", amount=50.0, platform_fee=5.0),
        event("orchestration", at(6), user_id="u1", success=True, duration_ms=900.0),
        # u2
        event("contract_created", at(6), contract_id="c2", user_id="u2", agent_id="a2"),
        event("contract_cancelled", at(7), contract_id="c2", user_id="u2"),
        event("contract_created", at(8), contract_id="c3", user_id="u2"),
        event("credits_spent", at(8, 30), user_id="u2", credits=10.0),
        event("payment", at(9), agent_id="a2", user_id="u2", amount=20.0, platform_fee=2.0),
        # u4
        event("signup", at(9), user_id="u4"),
        # a1: five calls, one failed
        call("a1", at(2, 0), 100.0, user_id="u1"),
        call("a1", at(2, 1), 200.0),
        call("a1", at(2, 2), 300.0),
        call("a1", at(2, 3), 400.0, success=False),
        call("a1", at(2, 4), 1000.0),
        heartbeat("a1", at(0, 2)),
        heartbeat("a1", at(0, 5), available=False),
        heartbeat("a1", at(0, 8)),
        heartbeat("a1", at(0, 40)),  # 32 minutes after the last: a silence longer than the timeout
        heartbeat("a1", at(1, 0)),  # the last one of DAY
        # a2
        call("a2", at(3), 50.0, user_id="u1"),
        heartbeat("a2", at(0, 30)),
        heartbeat("a2", at(0, 33), available=False),
        event("bid", at(5, 30), agent_id="a2", contract_id="c2", price=40.0),
        event("bid", at(5, 40), agent_id="a2", contract_id="c3", price=60.0),
        event("contract_won", at(5, 50), agent_id="a2", contract_id="c2"),
        event("contract_failed", at(10), contract_id="cf", agent_id="a2"),
        event("validation_score", at(10), agent_id="a2", score=80.0),
        event("validation_score", at(11), agent_id="a2", score=90.0),
        event("reputation_score", at(12), agent_id="a2", score=75.0),
        event("reputation_score", at(10), agent_id="a2", score=70.0),  # sent late, but earlier: not the last
        # a4: silent since long before; a call, then a heartbeat
        call("a4", at(0, 20), 250.0, success=False),
        heartbeat("a4", at(0, 50)),
        # a5
        event("agent_registered", at(11), agent_id="a5"),
        # The platform
        event("fraud_alert", at(12), reason="card"),
        event("security_event", at(13), kind="login"),
        event("security_event", at(14), kind="login"),
    ]
    record_activity(org, events)
    requests = [at(1), at(5), at(23, 59), at(23, day=BEFORE)]
    ingest_metric_items(Scope.of(org), [MetricItem("api.response_time", 12.0, "timer", "ms", "", {"endpoint": "x"},
                                                   moment) for moment in requests])
    return events


def compute(period_type: str, start: datetime, *, now: datetime = AFTER_THE_DAY, org=None):
    end = activity_periods.period_end(start, period_type)
    return activity_periods.compute_periods(period_type, start, end, org=org, now=now)


def figures(row, names) -> dict:
    return {name: getattr(row, name) for name in names}


def test_the_user_figures_of_a_day(org, activity):
    summary = compute("day", DAY)
    assert (summary.periods, summary.users, summary.platform_rows) == (1, 3, 1)
    rows = {row.user_id: row for row in UserAnalytics.objects.filter(period_type="day", period_start=DAY)}
    assert sorted(rows) == ["u1", "u2", "u4"]
    assert figures(rows["u1"], activity_periods.USER_FIGURES) == {
        "sessions": 2, "page_views": 2, "actions": 1, "active_seconds": 420.5, "contracts_created": 1,
        "contracts_completed": 1, "contracts_cancelled": 0, "credits_purchased": 100.0, "credits_spent": 30.0,
        "total_spent": 50.0, "agents_used": 2, "agent_ids": ["a1", "a2"], "orchestrations_run": 1,
    }
    assert figures(rows["u2"], activity_periods.USER_FIGURES) == {
        "sessions": 0, "page_views": 0, "actions": 0, "active_seconds": 0.0, "contracts_created": 2,
        "contracts_completed": 0, "contracts_cancelled": 1, "credits_purchased": 0.0, "credits_spent": 10.0,
        "total_spent": 20.0, "agents_used": 0, "agent_ids": [], "orchestrations_run": 0,
    }
    assert rows["u4"].sessions == 0 and rows["u4"].agent_ids == []
    assert rows["u1"].period_end == DAY + timedelta(days=1)


def test_the_agent_figures_of_a_day(org, activity):
    compute("day", DAY)
    rows = {row.agent_id: row for row in AgentAnalytics.objects.filter(period_type="day", period_start=DAY)}
    assert sorted(rows) == ["a1", "a2", "a3", "a4", "a5"]  # a3 only by its carried-in heartbeat
    a1 = rows["a1"]
    assert figures(a1, ["calls", "successful_calls", "failed_calls", "success_rate", "avg_response_time_ms"]) == {
        "calls": 5, "successful_calls": 4, "failed_calls": 1, "success_rate": 0.8, "avg_response_time_ms": 400.0}
    # Sorted 100, 200, 300, 400, 1000: p50 is the middle one; p95 at rank 0.95 * 4 = 3.8 is
    # 400 + 0.8 * (1000 - 400); p99 at rank 3.96 is 400 + 0.96 * 600.
    assert a1.p50_response_time_ms == 300.0
    assert a1.p95_response_time_ms == pytest.approx(880.0)
    assert a1.p99_response_time_ms == pytest.approx(976.0)
    assert (a1.contracts_completed, a1.revenue, a1.bids, a1.avg_bid_price) == (1, 50.0, 0, None)
    # Up: 00:00-00:02 (carried from 23:58), 00:02-00:05, 00:08-00:13, 00:40-00:45, 01:00-01:05 = 1,200 s;
    # the rest of the day is down: 00:05-00:08 (unavailable), the silences after 00:13, 00:45 and 01:05.
    assert (a1.uptime_seconds, a1.downtime_seconds) == (1200.0, 86400.0 - 1200.0)
    assert a1.uptime_percentage == pytest.approx(100 * 1200 / 86400)

    a2 = rows["a2"]
    assert figures(a2, activity_periods.AGENT_FIGURES) == {
        "calls": 1, "successful_calls": 1, "failed_calls": 0, "success_rate": 1.0, "avg_response_time_ms": 50.0,
        "p50_response_time_ms": 50.0, "p95_response_time_ms": 50.0, "p99_response_time_ms": 50.0,
        # Not counted before its first heartbeat at 00:30: up 00:30-00:33, then down to the end of the day.
        "uptime_seconds": 180.0, "downtime_seconds": 86400.0 - 1800.0 - 180.0,
        "uptime_percentage": pytest.approx(100 * 180 / (86400 - 1800)),
        "bids": 2, "contracts_won": 1, "contracts_completed": 0, "contracts_failed": 1, "revenue": 20.0,
        "avg_bid_price": 50.0, "validation_score": 85.0, "reputation_score": 75.0,
    }
    a3 = rows["a3"]
    assert (a3.calls, a3.success_rate, a3.p50_response_time_ms) == (0, None, None)
    assert (a3.uptime_seconds, a3.downtime_seconds) == (120.0, 86400.0 - 120.0)  # carried until 00:02
    a5 = rows["a5"]
    assert (a5.uptime_seconds, a5.downtime_seconds, a5.uptime_percentage) == (0.0, 0.0, None)  # no heartbeat


def test_uptime_of_an_hour_with_a_carried_state_a_silence_and_a_silent_agent(org, activity):
    compute("hour", DAY)
    rows = {row.agent_id: row for row in AgentAnalytics.objects.filter(period_type="hour", period_start=DAY)}
    assert sorted(rows) == ["a1", "a2", "a3", "a4"]
    # a1: up 120 (carried) + 180 + 300 + 300 = 900; down 180 (unavailable) + 1,620 (00:13-00:40) + 900
    # (00:45-01:00; the heartbeat at 01:00 belongs to the next hour).
    assert (rows["a1"].uptime_seconds, rows["a1"].downtime_seconds, rows["a1"].uptime_percentage) == (
        900.0, 2700.0, 25.0)
    # a2: counted from its first heartbeat at 00:30: up 180, then unavailable 300 and silent 1,320.
    assert (rows["a2"].uptime_seconds, rows["a2"].downtime_seconds) == (180.0, 1620.0)
    assert rows["a2"].uptime_percentage == pytest.approx(10.0)
    # a3: carried from 23:57 until 00:02, then silent.
    assert rows["a3"].uptime_percentage == pytest.approx(100 * 120 / 3600)
    # a4: its last heartbeat was long before: down until 00:50, up until 00:55, down again.
    assert (rows["a4"].uptime_seconds, rows["a4"].downtime_seconds) == (300.0, 3300.0)


def test_the_current_period_counts_up_to_now(org, activity):
    compute("hour", DAY, now=at(0, 30))
    a1 = AgentAnalytics.objects.get(agent_id="a1", period_type="hour", period_start=DAY)
    # Up 120 + 180 + 300; down 180 + 00:13-00:30.
    assert (a1.uptime_seconds, a1.downtime_seconds) == (600.0, 180.0 + 1020.0)
    platform = PlatformMetrics.objects.get(period_type="hour", period_start=DAY)
    assert platform.throughput_per_minute == pytest.approx(1 / 30)  # a4's call at 00:20, over 30 minutes


def test_the_platform_figures_of_a_day(org, activity):
    compute("day", DAY)
    platform = PlatformMetrics.objects.get(org=org, period_type="day", period_start=DAY)
    # Calls: 50, 100, 200, 250, 300, 400, 1000 (two failed); p95 at rank 0.95 * 6 = 5.7: 400 + 0.7 * 600.
    assert figures(platform, activity_periods.PLATFORM_FIGURES) == {
        "users_total": 4, "users_active": 3, "users_new": 2, "users_churned": 1,
        "agents_total": 5, "agents_active": 4, "agents_new": 2,
        "contracts_total": 3, "contracts_active": 2, "contracts_completed": 1, "contracts_failed": 1,
        "revenue": 70.0, "platform_fees": 7.0, "credits_purchased": 100.0, "credits_spent": 40.0,
        "avg_response_time_ms": pytest.approx(2300 / 7), "p95_response_time_ms": pytest.approx(820.0),
        "error_rate": pytest.approx(2 / 7), "throughput_per_minute": pytest.approx(7 / 1440),
        "api_calls": 3, "orchestrations": 1, "fraud_alerts": 1, "security_events": 2,
    }


def test_platform_figures_answers_any_window_with_the_same_definitions(org, activity):
    compute("day", DAY)
    row = PlatformMetrics.objects.get(period_type="day", period_start=DAY)
    same = activity_periods.platform_figures(org, DAY, DAY + timedelta(days=1), now=AFTER_THE_DAY)
    assert same == pytest.approx(figures(row, activity_periods.PLATFORM_FIGURES))
    morning = activity_periods.platform_figures(org, DAY, at(6), now=AFTER_THE_DAY)
    assert sorted(morning) == sorted(activity_periods.PLATFORM_FIGURES)
    # In the six hours before: u2 and u3 were active (the day before, 18:00-24:00: nobody) → no churn.
    assert (morning["users_active"], morning["users_churned"], morning["contracts_total"]) == (1, 0, 1)
    assert morning["throughput_per_minute"] == pytest.approx(7 / 360)


def test_a_week_and_a_month_cover_every_day_in_them(org, activity):
    compute("week", DAY - timedelta(days=1))
    week = PlatformMetrics.objects.get(period_type="week")
    assert week.period_start == BEFORE and week.period_end == BEFORE + timedelta(weeks=1)
    # u2, u3 (first seen the day before), u1 (signed up), u4 (seen the week before, on Sunday, but signed up).
    assert (week.users_active, week.users_new, week.contracts_total) == (4, 4, 4)
    compute("month", datetime(2026, 3, 1, tzinfo=UTC))
    month = PlatformMetrics.objects.get(period_type="month")
    assert month.period_end == datetime(2026, 4, 1, tzinfo=UTC)
    assert (month.users_active, month.users_new, month.agents_new) == (4, 4, 5)


def test_computing_again_gives_the_same_rows(org, activity):
    def snapshot():
        rows = []
        for model in (UserAnalytics, AgentAnalytics, PlatformMetrics):
            for row in model.objects.order_by("pk"):
                rows.append({key: value for key, value in model_to_dict(row).items()
                             if key not in ("id", "computed_at")})
        return rows

    compute("day", BEFORE)
    compute("day", DAY)
    first = snapshot()
    counts = (UserAnalytics.objects.count(), AgentAnalytics.objects.count(), PlatformMetrics.objects.count())
    compute("day", DAY)
    activity_periods.compute_periods("day", BEFORE, DAY + timedelta(days=1), now=AFTER_THE_DAY)
    assert snapshot() == first
    assert (UserAnalytics.objects.count(), AgentAnalytics.objects.count(), PlatformMetrics.objects.count()) == counts


def test_a_late_event_recomputes_only_its_periods(org, activity):
    activity_periods.compute_dirty(now=AFTER_THE_DAY)
    assert not ActivityDirtyPeriod.objects.exists()
    day_rows = {(type(row).__name__, row.pk): (row.computed_at, model_to_dict(row))
                for model in (UserAnalytics, AgentAnalytics, PlatformMetrics)
                for row in model.objects.filter(period_type="day", period_start=DAY)}
    before = PlatformMetrics.objects.get(period_type="day", period_start=BEFORE)

    record_activity(org, [event("session", at(15, day=BEFORE), user_id="u9", active_seconds=5.0)])
    assert set(ActivityDirtyPeriod.objects.values_list("period_type", "period_start")) == {
        ("hour", at(15, day=BEFORE)), ("day", BEFORE), ("week", BEFORE), ("month", datetime(2026, 3, 1, tzinfo=UTC))}
    summary = activity_periods.compute_dirty(now=AFTER_THE_DAY)
    assert summary.periods == 4
    assert not ActivityDirtyPeriod.objects.exists()

    after = PlatformMetrics.objects.get(period_type="day", period_start=BEFORE)
    assert after.computed_at > before.computed_at
    assert (before.users_active, after.users_active) == (2, 3)
    assert UserAnalytics.objects.get(user_id="u9", period_type="day").period_start == BEFORE
    assert {(type(row).__name__, row.pk): (row.computed_at, model_to_dict(row))
            for model in (UserAnalytics, AgentAnalytics, PlatformMetrics)
            for row in model.objects.filter(period_type="day", period_start=DAY)} == day_rows


def test_a_mark_made_after_the_pass_read_the_marks_survives(org, activity, monkeypatch):
    compute_period = activity_periods.compute_period

    def compute_and_meanwhile_receive_an_event(*args, **kwargs):
        if not ActivityDirtyPeriod.objects.filter(period_type="hour", period_start=at(20)).exists():
            record_activity(org, [event("page_view", at(20), user_id="u1")])
        return compute_period(*args, **kwargs)

    monkeypatch.setattr(activity_periods, "compute_period", compute_and_meanwhile_receive_an_event)
    activity_periods.compute_dirty(now=AFTER_THE_DAY)
    assert set(ActivityDirtyPeriod.objects.values_list("period_type", "period_start")) == {
        ("hour", at(20)), ("day", DAY), ("week", BEFORE), ("month", datetime(2026, 3, 1, tzinfo=UTC))}


def test_the_scheduled_job_computes_the_dirty_periods_and_the_current_hour_and_day(org, activity):
    marked = ActivityDirtyPeriod.objects.count()
    assert not ActivityDirtyPeriod.objects.filter(period_type="hour", period_start=at(16)).exists()
    summary = activity_periods.track_due(now=at(16, 30))
    assert summary.periods == marked + 1 == PlatformMetrics.objects.count()  # the day is marked already
    assert PlatformMetrics.objects.get(period_type="hour", period_start=at(16)).throughput_per_minute == 0.0
    assert not ActivityDirtyPeriod.objects.exists()


def test_orgs_are_computed_apart(org, activity):
    other = Organization.objects.create(slug="globex", name="Globex")
    record_activity(other, [event("session", at(1), user_id="u1", active_seconds=1.0)])
    compute("day", DAY, org=other)
    assert list(UserAnalytics.objects.values_list("org__slug", "user_id", "active_seconds")) == [
        ("globex", "u1", 1.0)]
    summary = compute("day", DAY)
    assert summary.platform_rows == 2
    assert UserAnalytics.objects.get(org=org, user_id="u1", period_type="day").active_seconds == 420.5


@pytest.mark.parametrize(("heartbeats", "silent_before", "expected"), [
    ([], False, (0.0, 0.0)),
    ([], True, (0.0, 600.0)),
    ([(-100, True)], False, (200.0, 400.0)),  # carried in, held 300 s from 100 s before
    ([(-400, True), (100, False)], False, (0.0, 600.0)),  # expired before the start; the gap is downtime
    ([(0, True), (60, True), (120, False)], False, (120.0, 480.0)),
    ([(50, True)], True, (300.0, 300.0)),
])
def test_availability_over_ten_minutes(heartbeats, silent_before, expected):
    start = datetime(2026, 3, 10, tzinfo=UTC)
    beats = [(start + timedelta(seconds=seconds), available) for seconds, available in heartbeats]
    assert activity_periods.availability(beats, start, start + timedelta(minutes=10), timedelta(seconds=300),
                                         silent_before=silent_before) == expected


def test_resolve_range_defaults_and_limits():
    now = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
    assert activity_periods.resolve_range("day", now=now) == (DAY, DAY + timedelta(days=1))
    assert activity_periods.resolve_range("hour", DAY, now=now) == (DAY, at(13))
    for arguments, field in [(("year",), "period_type"), (("day", None, DAY), "start"),
                             (("day", DAY, DAY), "end"), (("hour", DAY - timedelta(days=42), DAY), "start"),
                             (("day", DAY - timedelta(days=91), DAY), "start"),  # retention: 90 days
                             (("day", DAY, DAY + timedelta(days=2)), "end")]:  # after the current day
        with pytest.raises(activity_periods.TrackRangeError) as error:
            activity_periods.resolve_range(*arguments, now=now)
        assert error.value.field == field
    assert activity_periods.resolve_range("hour", at(-988), at(12), now=now)[0] == at(-988)  # 1,000 hours
    assert activity_periods.resolve_range("day", DAY - timedelta(days=90), now=now)[0] == DAY - timedelta(days=90)


def test_the_command_computes_a_range_and_the_dirty_marks(org, activity, capsys, settings):
    settings.ANALYTICS_DB_RETENTION_DAYS = 3660  # DAY is older than the default 90 days
    call_command("track_analytics", "--period", "day", "--start", "2026-03-09", "--end", "2026-03-11",
                 "--org", "acme")
    assert "2 periods, 5 user rows" in capsys.readouterr().out
    assert PlatformMetrics.objects.filter(period_type="day").count() == 2
    call_command("track_analytics", "--dirty")
    assert "dirty periods:" in capsys.readouterr().out
    assert not ActivityDirtyPeriod.objects.exists()
    call_command("track_analytics", "--period", "hour")
    assert "1 periods" in capsys.readouterr().out


@pytest.mark.parametrize(("arguments", "message"), [
    (["--period", "day", "--start", "yesterday"], "--start:"),
    (["--period", "day", "--start", "2026-03-10", "--end", "2026-03-09"], "--end: Must be after start."),
    (["--period", "hour", "--start", "2020-01-01", "--end", "2026-01-01"], "--start: At most 1000"),
    (["--period", "day", "--org", "nobody"], "--org: no organisation"),
    ([], "--period"),
    (["--dirty", "--period", "day"], "--dirty"),
])
def test_the_command_refuses_bad_input(org, arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("track_analytics", *arguments)


def test_the_job_is_scheduled_and_its_task_is_thin(org, activity):
    from analytics.schedule import PERIODIC_JOBS
    from analytics.tasks import track_analytics

    job = next(job for job in PERIODIC_JOBS if job.task == "analytics.track_analytics")
    assert job.every == timedelta(minutes=5)
    result = track_analytics()
    assert result["periods"] >= 2 and set(result) == {"periods", "users", "agents", "platform_rows", "seconds"}
    assert PeriodType.HOUR in set(PlatformMetrics.objects.values_list("period_type", flat=True))

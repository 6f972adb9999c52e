"""The ops pages of the admin (toolweaver_site/dashboards.py): the home and the five dashboards, on a few
executions, requests, checks and incidents recorded through the services, at a pinned "now" (hh:30 UTC of the
current hour, so that every bucket below is known in advance).

The data, by when it happened (NOW - ...):
    acme    10 min  parse_json (u1, ok)  + an API request GET /api/search 200
    acme    20 min  parse_json (u1, failed) + an API request GET /api/search 500
    acme    5 h     web_search (u1)
    acme    10 h    web_search (u2)
    globex  15 h    render_report (u9)
    globex  3 days  render_report (u9)
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import AlertIncident
from analytics.models import MetricType
from analytics.platform.charts import point_count
from analytics.platform.windows import Window
from analytics.services.metrics_ingest import MetricItem, ingest_metric_items
from analytics.services.skills import ExecutionItem, record_executions
from monitoring.models import CheckOutcome
from tests.monitoring.factories import history, make_service
from toolweaver_site.dashboards import DASHBOARDS, bucket_interval

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


def ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


@pytest.fixture(autouse=True)
def pinned_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def execution(skill_id, moment, user_id, success=True, latency_ms=100.0):
    return ExecutionItem(skill_id=skill_id, success=success, latency_ms=latency_ms, timestamp=moment,
                         user_id=user_id)


@pytest.fixture
def recorded(personas):
    acme, globex = personas.org, personas.other_org
    record_executions(acme, [
        execution("parse_json", ago(minutes=10), "u1", latency_ms=40.0),
        execution("parse_json", ago(minutes=20), "u1", success=False, latency_ms=60.0),
        execution("web_search", ago(hours=5), "u1", latency_ms=300.0),
        execution("web_search", ago(hours=10), "u2", latency_ms=500.0),
    ])
    record_executions(globex, [execution("render_report", ago(hours=15), "u9", latency_ms=900.0),
                               execution("render_report", ago(days=3), "u9", latency_ms=800.0)])
    ingest_metric_items(acme, [
        MetricItem("api.response_time", 80.0, MetricType.TIMER, "ms", "test",
                   {"endpoint": "/api/search", "method": "GET", "status": "200"}, ago(minutes=10)),
        MetricItem("api.response_time", 120.0, MetricType.TIMER, "ms", "test",
                   {"endpoint": "/api/search", "method": "GET", "status": "500"}, ago(minutes=20)),
    ])
    # A service checked every 10 minutes for 30 hours, healthy now.
    service = make_service("search-api", interval_seconds=600)
    history(service, [(600 * step, "healthy", 20.0) for step in range(180)], start=ago(hours=30))
    service.record(CheckOutcome(ok=True, response_time_ms=20.0), ago(minutes=1))
    # Incidents: a critical one of acme open for 2 hours, a platform warning acknowledged (30 hours), an old
    # resolved one.
    incident = {"threshold": 1.0, "condition": "x > 1"}
    AlertIncident.objects.create(rule_name="search slow", org=acme, severity="critical", triggered_at=ago(hours=2),
                                 **incident)
    AlertIncident.objects.create(rule_name="disk filling", severity="warning", status="acknowledged",
                                 triggered_at=ago(hours=30), **incident)
    AlertIncident.objects.create(rule_name="old trouble", org=acme, severity="error", status="resolved",
                                 triggered_at=ago(days=3), resolved_at=ago(days=3) + timedelta(hours=1), **incident)
    return personas


@pytest.fixture
def staff(client, personas):
    client.force_login(get_user_model().objects.get(username="ops"))  # is_staff, not a superuser
    return client


def page(client, slug, **params):
    response = client.get(f"/admin/dashboards/{slug}/", params)
    assert response.status_code == 200, response.content[:500]
    return response


def points(response, name) -> int:
    return point_count(response.context[name])


def chart_specs(response) -> dict[str, dict]:
    """Every chart spec of a page's context (the leaderboards' list of boards included)."""
    context = response.context_data
    specs = {}
    for key, value in context.items():
        if isinstance(value, dict) and "series" in value and "empty" in value:
            specs[key] = value
    for board in context.get("boards", []):
        specs[board["chart_id"]] = board["chart"]
    return specs


# --- The filters ---------------------------------------------------------------------------------


def test_each_preset_range_has_a_bucket_giving_a_few_dozen_points():
    assert [bucket_interval(Window(NOW - timedelta(hours=hours), NOW)) for hours in (1, 24, 24 * 7, 24 * 30)] == [
        "1m", "1h", "6h", "1d"]


def test_the_range_picker_changes_the_points(staff, recorded):
    hour, day = page(staff, "usage", range="1h"), page(staff, "usage", range="24h")
    # 1h: the two parse_json minutes; 24h: the hours 10-20 min, 5 h, 10 h and 15 h ago.
    assert (points(hour, "executions_chart"), points(day, "executions_chart")) == (2, 4)
    assert (hour.context["total_executions"], day.context["total_executions"]) == (2, 5)
    assert page(staff, "usage", range="7d").context["total_executions"] == 6
    assert [point[1] for point in hour.context["success_chart"]["series"][0]["points"] if point[1] is not None] \
        == [0.0, 100.0]  # 20 min ago failed, 10 min ago succeeded
    assert (points(hour, "top_chart"), points(day, "top_chart")) == (1, 3)
    assert "?range=24h" in hour.content.decode()  # the picker's links
    assert 'class="selected"' in hour.content.decode()


def test_no_range_is_the_last_24_hours_and_a_custom_range_reads_start_and_end(staff, recorded):
    default = page(staff, "usage")
    assert (default.context["filters"].range, points(default, "executions_chart")) == ("24h", 4)
    start = f"{ago(hours=1):%Y-%m-%dT%H:%M}"  # as the form's datetime-local input sends it (UTC)
    custom = page(staff, "usage", start=start, end=f"{NOW:%Y-%m-%dT%H:%M}")
    assert custom.context["filters"].range == "custom"
    assert points(custom, "executions_chart") == 2
    assert page(staff, "usage", hours="6").context["total_executions"] == 3  # the API's ?hours= too


def test_a_preset_range_starts_at_its_first_buckets_start_and_a_custom_one_where_asked(staff, recorded):
    # NOW is hh:30:00 UTC. Each preset ends now and starts where its first bucket does (1m, 1h, 6h, 1d), so
    # the first point of every chart covers a whole bucket, as a Prometheus range query aligned to its step.
    def window(**params):
        filters = page(staff, "usage", **params).context["filters"]
        return filters.window.start, filters.window.end

    midnight = NOW.replace(hour=0, minute=0)
    assert window(range="1h") == (ago(hours=1), NOW)
    assert window(range="24h") == (ago(hours=24, minutes=30), NOW)
    assert window(range="7d") == (ago(days=7) - timedelta(hours=NOW.hour % 6, minutes=30), NOW)
    assert window(range="30d") == (midnight - timedelta(days=30), NOW)
    assert window(hours="24") == (ago(hours=24), NOW)  # the API's window parameters: a custom range, as given
    record_executions(recorded.org, [execution("web_search", ago(hours=24, minutes=20), "u3")])
    assert page(staff, "usage", range="24h").context["total_executions"] == 6  # in the first hour's bucket
    assert page(staff, "usage", hours="24").context["total_executions"] == 5


@pytest.mark.parametrize(("params", "message"), [
    ({"range": "2y"}, "Unknown range"),
    ({"range": "custom"}, "needs a start"),
    ({"start": "yesterday"}, "start: Must be an ISO-8601 date-time."),
    ({"start": "2026-12-01T10:00", "end": "2026-11-01T10:00"}, "end: must be after start."),
    ({"end": "2026-12-01T10:00"}, "start: is required when end is given."),
    ({"hours": "1", "days": "2"}, "use one window form"),
    ({"hours": "-3"}, "hours: Must be at least"),
    ({"org": "nobody"}, "No organisation"),
    ({"skill": "a\x00b"}, "skill: must be printable"),
])
def test_a_bad_filter_says_so_on_the_page_and_shows_the_default(staff, recorded, params, message):
    slug = "performance" if "skill" in params else "usage"
    response = page(staff, slug, **params)
    assert message in response.content.decode().replace("&#x27;", "'")
    assert response.context["filters"].range == "24h"


def test_the_org_filter_narrows_the_data(staff, recorded):
    assert points(page(staff, "usage", org="acme"), "executions_chart") == 3
    globex = page(staff, "usage", org="globex")
    assert (points(globex, "executions_chart"), globex.context["total_executions"]) == (1, 1)
    boards = {board["type"]: board for board in page(staff, "leaderboards", org="globex").context["boards"]}
    assert [row.skill_id for row in boards["usage"]["rows"]] == ["render_report"]
    health = page(staff, "health", org="acme", range="7d").context
    assert [each["incident"].rule_name for each in health["incidents"]] == ["search slow", "old trouble"]


# --- The dashboards -------------------------------------------------------------------------------


def test_every_dashboard_opens_and_every_chart_says_what_to_do_when_empty(staff, recorded):
    index = staff.get("/admin/dashboards/")
    assert index.status_code == 200
    for dashboard in DASHBOARDS.values():
        assert dashboard.url in index.content.decode()
        for range_name in ("1h", "24h", "7d", "30d"):
            response = page(staff, dashboard.slug, range=range_name)
            page_text = response.content.decode()
            assert f"Dashboards</a> &rsaquo; {dashboard.title}" in page_text  # the breadcrumbs
            assert "toolweaver/charts.js" in page_text and "vendor/plotly/plotly.min.js" in page_text
            specs = chart_specs(response)
            assert specs, dashboard.slug
            for name, spec in specs.items():
                assert spec["empty"].strip(), (dashboard.slug, name)
    assert staff.get("/admin/dashboards/nothing-here/").status_code == 404


def test_leaderboards_show_the_four_boards(staff, recorded):
    boards = {board["type"]: board for board in page(staff, "leaderboards").context["boards"]}
    assert list(boards) == ["usage", "rating", "most_improved", "trending_new"]
    assert point_count(boards["usage"]["chart"]) == 3  # three skills ran in the last 24 hours
    assert point_count(page(staff, "leaderboards", range="1h").context["boards"][0]["chart"]) == 1
    assert point_count(boards["rating"]["chart"]) == 0  # no ratings: the empty text says where to send them
    assert "skills/ratings" in boards["rating"]["chart"]["empty"]
    assert point_count(boards["trending_new"]["chart"]) == 3  # all three are new and growing


def test_performance_charts_latency_per_skill_and_endpoint_and_the_error_rate(staff, recorded):
    hour = page(staff, "performance", range="1h")
    assert points(hour, "skill_latency_chart") == 2 * 3  # two minutes, p50/p95/p99
    assert points(hour, "endpoint_latency_chart") == 2 * 3
    errors = [point[1] for point in hour.context["endpoint_errors_chart"]["series"][0]["points"]
              if point[1] is not None]
    assert errors == [100.0, 0.0]  # 20 minutes ago a 500, 10 minutes ago a 200
    day = page(staff, "performance")
    assert points(day, "skill_latency_chart") == 4 * 3
    assert points(day, "slowest_chart") == 3
    assert [row["skill_id"] for row in day.context["skill_rows"]] == ["render_report", "web_search", "parse_json"]
    one_skill = page(staff, "performance", skill="web_search")
    assert points(one_skill, "skill_latency_chart") == 2 * 3  # web_search ran in two hours
    assert "skill=web_search" in one_skill.context["filters"].link()
    assert 'name="skill" value="web_search"' in one_skill.content.decode()  # kept by the filters form
    assert points(page(staff, "performance", endpoint="/api/other"), "endpoint_latency_chart") == 0


def test_adoption_shows_skills_per_user_org_adoption_and_growth(staff, recorded):
    day = page(staff, "adoption")
    # u1 used two skills, u2 and globex's u9 one each.
    assert day.context["skills_per_user_chart"]["series"][0]["points"] == [["1", 2], ["2", 1]]
    assert [point[0] for point in day.context["org_adoption_chart"]["series"][0]["points"]] == ["acme", "globex"]
    assert points(day, "org_adoption_chart") == 2
    assert points(page(staff, "adoption", org="acme"), "org_adoption_chart") == 1
    assert points(day, "growth_chart") == 0  # nothing the week before: no growth to show
    assert "two weeks" in day.context["growth_chart"]["empty"]


def test_health_shows_scores_services_uptime_and_incidents(staff, recorded):
    day = page(staff, "health")
    assert points(day, "health_chart") == 3
    assert [row["badge"] for row in day.context["health_rows"]] != []
    assert [each["service"].name for each in day.context["services"]] == ["search-api"]
    assert day.context["services"][0]["status"] == "healthy"
    assert points(day, "uptime_chart") == 2  # two UTC days in any 24 hours ending at hh:30, both checked
    assert [band["label"] for band in day.context["uptime_chart"]["bands"]] == ["search slow", "disk filling"]
    assert points(day, "incidents_chart") == 1  # opened in the range: the critical one
    assert points(page(staff, "health", range="7d"), "incidents_chart") == 3


# --- The admin's home ----------------------------------------------------------------------------


def test_the_admin_home_is_the_ops_home(client, recorded):
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/")
    assert response.status_code == 200
    assert len(queries) < 40, len(queries)
    ops, text = response.context["ops"], response.content.decode()
    assert {each["severity"]: each["count"] for each in ops["severities"]} == {
        "critical": 1, "error": 0, "warning": 1, "info": 0}
    assert [each["incident"].rule_name for each in ops["incidents"]] == ["search slow", "disk filling"]
    critical = AlertIncident.objects.get(rule_name="search slow")
    assert f"/admin/alerts/alertincident/{critical.pk}/change/" in text
    assert [(tile["state"].service_name, tile["state"].status) for tile in ops["services"]] == [
        ("search-api", "healthy")]
    assert ops["services"][0]["uptime_24h"] == 100.0
    assert [each["row"].skill_id for each in ops["top_skills"]] == ["parse_json", "render_report", "web_search"]
    assert all(each["badge"] in ("good", "fair", "poor", "none") for each in ops["top_skills"])
    # Executions and requests per minute of the last hour (61 buckets, NOW being hh:30:00): 2 of each, quiet
    # minutes drawn as 0.
    ingest = {line["name"]: [value for _, value in line["points"]] for line in ops["ingest_chart"]["series"]}
    assert {name: (len(values), sum(values)) for name, values in ingest.items()} == {
        "skill executions/min": (61, 2), "API requests/min": (61, 2)}
    for dashboard in DASHBOARDS.values():
        assert dashboard.url in text
    assert 'class="app-analytics module' in text and "Recent actions" in text  # Django's index is still there


def test_non_staff_are_sent_to_the_login_page(client, personas, recorded):
    user = get_user_model().objects.create_user("visitor", "visitor@example.com", "pw")  # not staff
    for path in ("/admin/", "/admin/dashboards/", "/admin/dashboards/usage/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), path
    client.force_login(user)
    response = client.get("/admin/dashboards/health/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")

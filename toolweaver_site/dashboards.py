"""The ops pages of the admin: its home, and five dashboards with charts (issue 16).

    ops_home(request)                   the admin index: Django's app list under the ops home (ops_home_context)
    dashboard_index(request)            admin/dashboards/: the five dashboards
    dashboard_page(request, slug)       admin/dashboards/<slug>/: one dashboard (DASHBOARDS[slug])

Every figure comes from the service functions the API calls (analytics, monitoring and alerts), so a chart and
its endpoint cannot disagree: this module picks the window, the bucket size and the org (``read_filters``), asks
the services, and turns their answers into chart specs (analytics/platform/charts.py) and table rows. No SQL and
no aggregation of its own here: beside the services it only reads rows as the API's views do (the incidents, the
services, the orgs and the skill catalogue).

A dashboard is a function from ``Filters`` to its template's context; ``DASHBOARDS`` lists them. Every chart
says what to do when it is empty (``empty=``). The pages live in the site, not in an app, because they read
all three apps (DESIGN.md: analytics ← monitoring ← alerts; the site wires them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Q
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from pydantic import ValidationError

from alerts.models import SEVERITY_RANK, AlertIncident
from analytics.models import Organization, Skill
from analytics.models.skills import EXECUTIONS_METRIC, LATENCY_METRIC
from analytics.platform.charts import chart, series
from analytics.platform.contracts import InvalidParameter, WindowQuery, field_messages
from analytics.platform.scope import ALL_ORGS, Scope
from analytics.platform.windows import Window
from analytics.services import adoption, leaderboards, skills
from analytics.services import metrics_query as query
from analytics.services.health_score import RECENT
from analytics.services.health_snapshots import current_health_scores
from analytics.services.performance import RESPONSE_TIME_METRIC, performance_summary
from monitoring.models import Service
from monitoring.services.health import health_summary
from monitoring.services.reports import service_sla, uptime_percentages

# --- What to do when a chart is empty ------------------------------------------------------------

API = "/api/v1/analytics/"
NO_EXECUTIONS = (f"No skill executions in this range: widen it, or send executions to POST {API}skills/executions "
                 "(docs/api.md).")
NO_REQUESTS = (f"No API requests in this range: widen it, or send {RESPONSE_TIME_METRIC} events to POST "
               f"{API}metrics/batch (the platform records its own API requests).")
NO_RATINGS = f"No ratings yet: send them to POST {API}skills/ratings."
NO_USERS = (f"No executions with a user_id in this range: widen it, or send user_id with each execution to POST "
            f"{API}skills/executions.")
NO_CHECKS = ("No service checks in this range: widen it, add a service in Monitoring › Services, or run the checks "
             "(the scheduler, or the service list's \"Run check now\" action).")
NO_INCIDENTS = "No incident opened in this range: widen it, or add alert rules in Alerts › Alert rules."
NO_HEALTH = (f"No skill has a health score: send executions to POST {API}skills/executions "
             "(a score needs executions in the last 7 days).")

# --- The filters of every dashboard: a time range and an org ----------------------------------------

RANGES: dict[str, dict[str, str]] = {"1h": {"hours": "1"}, "24h": {"hours": "24"}, "7d": {"days": "7"},
                                     "30d": {"days": "30"}}
DEFAULT_RANGE = "24h"
CUSTOM = "custom"
WINDOW_FIELDS = ("hours", "days", "start", "end")  # the API's window parameters (WindowQuery), for custom
MAX_BUCKETS = 60  # a chart over time has at most about this many points
MAX_PARAM_LENGTH = 200
TOP = 10  # rows of a top list
INCIDENT_ROWS = 50  # the health dashboard's incidents (the newest), its table, chart and shaded bands


def bucket_interval(window: Window) -> str:
    """The finest interval of the query layer with at most MAX_BUCKETS buckets over the window:
    1h → 1m, 24h → 1h, 7d → 6h, 30d → 1d."""
    seconds = window.duration.total_seconds()
    return next((name for name, size in query.INTERVALS.items() if seconds / size <= MAX_BUCKETS), "1w")


@dataclass(frozen=True)
class Filters:
    """A dashboard's time range, bucket size and org, read from its query string by ``read_filters``."""

    window: Window
    interval: str  # a query-layer interval (query.INTERVALS)
    range: str  # a key of RANGES, or CUSTOM
    scope: Scope
    org: str = ""  # the org's slug; "" for all orgs
    custom: dict[str, str] = field(default_factory=dict)  # the window parameters of a custom range, as given
    extra: dict[str, str] = field(default_factory=dict)  # the dashboard's own parameters (e.g. ?skill=)
    errors: tuple[str, ...] = ()  # what was wrong with the query string (the page shows it, with the default)

    def link(self, **changes: str | None) -> str:
        """This page's query string with ``changes``; a None or "" value drops the parameter."""
        window_params = self.custom if self.range == CUSTOM else {"range": self.range}
        params = {**window_params, "org": self.org, **self.extra, **changes}
        return urlencode({name: value for name, value in params.items() if value})

    @property
    def common_query(self) -> str:
        """The range and org alone, for links to the other dashboards."""
        return self.link(**dict.fromkeys(self.extra))

    def range_links(self) -> list[dict]:
        """The picker's presets: {name, query, selected}."""
        no_window = dict.fromkeys(WINDOW_FIELDS)
        return [{"name": name, "query": self.link(**no_window, range=name), "selected": name == self.range}
                for name in RANGES]

    @property
    def start_input(self) -> str:
        """The custom form's start (a datetime-local value, UTC): the window shown."""
        return f"{self.window.start.astimezone(UTC):%Y-%m-%dT%H:%M}"

    @property
    def end_input(self) -> str:
        return f"{self.window.end.astimezone(UTC):%Y-%m-%dT%H:%M}"

    @property
    def scope_label(self) -> str:
        return self.org or "all orgs"


def _window(fields: dict[str, str]) -> tuple[Window | None, list[str]]:
    """The window of the API's parameters (WindowQuery: hours, days, or start and end), or the problems."""
    try:
        return WindowQuery.model_validate(fields).window(), []
    except ValidationError as error:
        return None, [f"{name}: {' '.join(messages)}" for name, messages in field_messages(error).items()]
    except InvalidParameter as error:
        return None, [f"{error.field}: {error.message}"]


def _text_param(request, name: str) -> tuple[str, str | None]:
    """(value, problem) of a free-text parameter: printable, at most MAX_PARAM_LENGTH characters."""
    value = request.GET.get(name, "").strip()
    if value and (not value.isprintable() or len(value) > MAX_PARAM_LENGTH):
        return "", f"{name}: must be printable, at most {MAX_PARAM_LENGTH} characters; ignored."
    return value, None


def read_filters(request, extra: tuple[str, ...] = ()) -> Filters:
    """The range (``?range=1h|24h|7d|30d``, or custom ``?start=&end=``, or the API's ``?hours=``/``?days=``), the
    org (``?org=<slug>``; default all orgs) and the dashboard's ``extra`` parameters. A bad value is reported in
    ``errors`` and replaced by the default: the page still opens."""
    errors: list[str] = []
    given = {name: request.GET[name].strip() for name in WINDOW_FIELDS if request.GET.get(name, "").strip()}
    choice = request.GET.get("range", "").strip() or DEFAULT_RANGE
    if given:
        choice = CUSTOM
    elif choice == CUSTOM:
        errors.append("A custom range needs a start (UTC), and optionally an end.")
        choice = DEFAULT_RANGE
    elif choice not in RANGES:
        errors.append(f"Unknown range {choice[:MAX_PARAM_LENGTH]!r}: pick 1h, 24h, 7d, 30d, or a custom start and "
                      "end.")
        choice = DEFAULT_RANGE
    window, problems = _window(given if choice == CUSTOM else RANGES[choice])
    if window is None:
        errors += problems
        choice, given = DEFAULT_RANGE, {}
        window, _ = _window(RANGES[DEFAULT_RANGE])
    assert window is not None  # the default range is always valid

    scope, slug = ALL_ORGS, request.GET.get("org", "").strip()
    if slug:
        org = Organization.objects.filter(slug=slug[:MAX_PARAM_LENGTH]).first()
        if org is None:
            errors.append(f"No organisation {slug[:MAX_PARAM_LENGTH]!r}: showing all orgs.")
            slug = ""
        else:
            scope = Scope.of(org)

    values = {}
    for name in extra:
        value, problem = _text_param(request, name)
        if problem:
            errors.append(problem)
        if value:
            values[name] = value
    interval = bucket_interval(window)
    if choice != CUSTOM:  # a preset range starts where its first bucket does: every bucket of its charts is whole
        seconds = query.INTERVALS[interval]
        window = Window(datetime.fromtimestamp(query.bucket_of(int(window.start.timestamp()), seconds), UTC),
                        window.end)
    return Filters(window=window, interval=interval, range=choice, scope=scope, org=slug,
                   custom=given, extra=values, errors=tuple(errors))


# --- Small helpers turning service answers into chart points ----------------------------------------


def _ratio_points(part: list, whole: list, scale: float = 100.0) -> list:
    """Per bucket, ``scale · part / whole`` of two series' points; None where ``whole`` is empty."""
    return [(moment, scale * (numerator or 0) / total if total else None)
            for (moment, numerator), (_, total) in zip(part, whole, strict=True)]


def _percentiles_chart(metric: str, filters: Filters, tags: dict | None, empty: str) -> dict:
    """p50, p95 and p99 of a timer per bucket (ms)."""
    lines = query.time_series_of(metric, filters.window, interval=filters.interval, aggregates=["p50", "p95", "p99"],
                                 org=filters.scope, tags=tags)
    return chart(*(series(name, line.points) for name, line in lines.items()), unit="ms", empty=empty)


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def health_badge(score: float | None) -> str:
    """The class of a health score's badge (charts.css ``.tw-badge``): good ≥ 80, fair ≥ 50, poor, none."""
    if score is None:
        return "none"
    return "good" if score >= 80 else "fair" if score >= 50 else "poor"


BADGE_COLOURS = {"good": "#2e7d32", "fair": "#f9a825", "poor": "#c62828", "none": "#777777"}


def _incident_url(incident: AlertIncident) -> str:
    return reverse("admin:alerts_alertincident_change", args=[incident.pk])


def _incidents_overlapping(window: Window, scope: Scope):
    """Incidents open at any moment of the window (the incident list's rows, in the org's scope)."""
    rows = AlertIncident.objects.filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=window.start),
                                        triggered_at__lte=window.end)
    return scope.filter(rows).order_by("-triggered_at", "-id")


# --- The five dashboards -------------------------------------------------------------------------


def usage_trends(filters: Filters) -> dict:
    """Executions and success rate over time, the top skills of the range and the skills growing most."""
    window, scope = filters.window, filters.scope
    executions = query.time_series(EXECUTIONS_METRIC, window, interval=filters.interval, aggregate="sum", org=scope)
    successes = query.time_series(EXECUTIONS_METRIC, window, interval=filters.interval, aggregate="sum", org=scope,
                                  tags={"success": "true"})
    counts = skills.execution_counts(window, org=scope)  # for both the top skills and the trending ones
    top = leaderboards.window_board(window, org=scope, limit=TOP, counts=counts)  # skills/leaderboard?days=…
    trending = trending_skills(window, scope, counts)
    return {
        "total_executions": round(sum(value or 0 for _, value in executions.points)),
        "executions_chart": chart(series("executions", executions.points), kind="bar", unit="executions",
                                  empty=NO_EXECUTIONS),
        "success_chart": chart(series("success rate", _ratio_points(successes.points, executions.points)),
                               unit="%",
                               empty=NO_EXECUTIONS),
        "top_rows": top.results,
        "top_chart": chart(series("executions", [(row.skill_id, row.score) for row in top.results]), kind="bar",
                           categories=True, unit="executions", empty=NO_EXECUTIONS),
        "trending_rows": trending,
        "trending_chart": chart(
            series("the range before", [(row["skill_id"], row["before"]) for row in trending]),
            series("this range", [(row["skill_id"], row["executions"]) for row in trending]),
            kind="bar", categories=True, unit="executions",
            empty="No skill ran more often in this range than in the one before it: try another range."),
    }


def trending_skills(window: Window, scope: Scope, now_counts: dict[str, dict], limit: int = TOP) -> list[dict]:
    """The skills whose executions grew most against the range of the same length just before (``now_counts``:
    ``execution_counts`` over the window)."""
    before = Window(window.start - window.duration, window.start - timedelta(microseconds=1))
    before_counts = skills.execution_counts(before, org=scope)
    rows = []
    for skill_id, figures in now_counts.items():
        current = figures["execution_count"]
        previous = before_counts.get(skill_id, {}).get("execution_count", 0)
        if current > previous:
            rows.append({"skill_id": skill_id, "executions": current, "before": previous,
                         "change": current - previous,
                         "growth_percent": 100 * (current - previous) / previous if previous else None})
    return sorted(rows, key=lambda row: (-row["change"], row["skill_id"]))[:limit]


BOARDS = [  # (board type, title, the score's unit, empty text); each board's description says what it ranks by
    ("usage", "Top by usage", "executions", NO_EXECUTIONS),
    ("rating", "Top by rating", "stars", NO_RATINGS),
    ("most_improved", "Most improved", "points", f"No skill improved this week against last with "
                                                 f"{leaderboards.MIN_WEEKLY_EXECUTIONS} executions in each week: "
                                                 "keep sending executions."),
    ("trending_new", "Trending new", "% growth",
     "No new skill is growing: a skill first used in the last 14 days shows here."),
]


def leaderboards_page(filters: Filters) -> dict:
    """The four boards of GET skills/leaderboard: usage over the range; the others over their own periods."""
    boards = []
    for board_type, title, unit, empty in BOARDS:
        if board_type == "usage":
            board = leaderboards.window_board(filters.window, org=filters.scope, limit=TOP)
        else:
            board = leaderboards.get_board(board_type, org=filters.scope, limit=TOP)
        scale = 100 if board_type == "trending_new" else 1
        boards.append({
            "type": board_type, "title": title, "description": board.description,
            "computed_at": board.computed_at, "rows": board.results,
            "chart_id": f"board-{board_type.replace('_', '-')}",
            "chart": chart(series(title, [(row.skill_id, scale * row.score) for row in board.results]), kind="bar",
                           categories=True, unit=unit, empty=empty),
        })
    return {"boards": boards}


def performance_page(filters: Filters) -> dict:
    """Latency p50/p95/p99 over time of skills and of API endpoints (all, or ?skill= / ?endpoint=), the slowest
    skills, and error rates."""
    window, scope = filters.window, filters.scope
    skill, endpoint = filters.extra.get("skill"), filters.extra.get("endpoint")
    skill_tags = {"skill_id": skill} if skill else None
    endpoint_tags = {"endpoint": endpoint} if endpoint else None

    counts = skills.execution_counts(window, org=scope)
    per_skill = []
    for group in query.grouped_statistics(LATENCY_METRIC, window, ["skill_id"], org=scope):
        skill_id = skills.skill_id_of(group)
        figures = counts.get(skill_id, skills.EMPTY_EXECUTIONS)
        success_rate = figures["success_rate"]
        per_skill.append({"skill_id": skill_id, "executions": figures["execution_count"], "p50": group.p50,
                          "p95": group.p95, "p99": group.p99,
                          "error_percent": None if success_rate is None else 100 * (1 - success_rate),
                          "query": filters.link(skill=skill_id)})
    slowest = sorted((row for row in per_skill if row["p95"] is not None), key=lambda row: -row["p95"])[:TOP]

    endpoints = performance_summary(window, org=scope).results  # GET performance
    requests = query.time_series(RESPONSE_TIME_METRIC, window, interval=filters.interval, aggregate="count",
                                 org=scope, tags=endpoint_tags)
    return {
        "skill": skill, "endpoint": endpoint,
        "all_skills_query": filters.link(skill=None), "all_endpoints_query": filters.link(endpoint=None),
        "skill_latency_chart": _percentiles_chart(LATENCY_METRIC, filters, skill_tags, NO_EXECUTIONS),
        "slowest_chart": chart(series("p95", [(row["skill_id"], row["p95"]) for row in slowest]), kind="bar",
                               categories=True, unit="ms", empty=NO_EXECUTIONS),
        "skill_rows": sorted(per_skill, key=lambda row: -(row["p95"] or 0)),
        "endpoint_latency_chart": _percentiles_chart(RESPONSE_TIME_METRIC, filters, endpoint_tags, NO_REQUESTS),
        "endpoint_errors_chart": chart(series("5xx share", _ratio_points(_server_errors(filters, endpoint_tags),
                                                                         requests.points)),
                                       unit="%", empty=NO_REQUESTS),
        "endpoint_rows": [{"row": row, "error_percent": 100 * row.error_rate, "query": filters.link(
            endpoint=row.endpoint)} for row in sorted(endpoints, key=lambda row: -row.requests)],
    }


def _server_errors(filters: Filters, tags: dict | None) -> list:
    """API requests answered with a 5xx status, per bucket (what performance_summary counts as errors)."""
    window, scope = filters.window, filters.scope
    statuses = [group.tags["status"] for group in query.grouped_statistics(
        RESPONSE_TIME_METRIC, window, ["status"], org=scope, tags=tags, with_percentiles=False)
        if (group.tags["status"] or "").startswith("5")]
    errors: Counter[datetime] = Counter()
    for status in statuses:
        answered = query.time_series(RESPONSE_TIME_METRIC, window, interval=filters.interval, aggregate="count",
                                     org=scope, tags={**(tags or {}), "status": status})
        errors.update({moment: count for moment, count in answered.points if count})
    buckets = query.bucket_starts(window, query.INTERVALS[filters.interval])
    return [(moment, errors.get(moment, 0)) for moment in buckets]


def adoption_page(filters: Filters) -> dict:
    """GET skills/adoption: skills per user, the orgs' adoption of the catalogue, weekly growth."""
    body = adoption.adoption(filters.window, org=filters.scope)
    histogram = body.skills_per_user.histogram
    if body.orgs is not None:  # all orgs: each org's rate
        rates = [(each.org, _percent(each.org_adoption_rate)) for each in body.orgs]
    else:
        rates = [(filters.org, _percent(body.org_adoption_rate))]
    growth = body.weekly_growth
    return {
        "body": body,
        "adoption_percent": _percent(body.org_adoption_rate),
        "engagement_percent": _percent(body.engagement_rate),
        "skills_per_user_chart": chart(
            series("users", list(histogram.items())),  # x: the number of skills a user used
            kind="bar", categories=True, unit="users", empty=NO_USERS),
        "org_adoption_chart": chart(series("catalogue used", rates), kind="bar", categories=True, unit="%",
                                    empty=NO_EXECUTIONS),
        "growth_chart": chart(
            series("growth", [("executions", _percent(growth.executions_growth)),
                              ("active users", _percent(growth.active_users_growth))]),
            kind="bar", categories=True, unit="%",
            empty="No executions in the week before this range's end to grow from: growth needs two weeks of "
                  f"executions (send them to POST {API}skills/executions)."),
    }


def health_page(filters: Filters) -> dict:
    """Skills' health scores (now), the services' status, uptime and SLA over the range, and the incidents."""
    window, scope = filters.window, filters.scope
    catalogue = Skill.catalogue_ids()
    scores = current_health_scores(catalogue, org=scope)
    scored = sorted((health for health in scores.values() if health.score is not None),
                    key=lambda health: (health.score, health.skill_id))
    badges = Counter(health_badge(health.score) for health in scores.values())
    worst = scored[:2 * TOP]

    states = {state.service_name: state for state in health_summary().services}  # GET monitoring/health
    services = []
    uptime_lines = []
    targets = set()
    for service in Service.objects.filter(enabled=True).order_by("name"):
        # The SLA report of GET monitoring/sla/<service>, from the daily summaries where there are some (as the
        # service list's uptime columns): a month of raw checks per service is not read for a page.
        report = service_sla(service, window.start, window.end, exact=False).body()
        targets.add(service.sla_target)
        state = states.get(service.name)
        services.append({"service": service, "status": state.status if state else "unknown", "report": report,
                         "url": reverse("admin:monitoring_service_change", args=[service.pk])})
        uptime_lines.append(series(service.name, [(day.start, day.uptime_percentage) for day in report.daily]))

    incidents = list(_incidents_overlapping(window, scope)[:INCIDENT_ROWS])
    opened: Counter[datetime] = Counter()
    seconds = query.INTERVALS[filters.interval]
    for incident in incidents:
        if incident.triggered_at >= window.start:
            opened[datetime.fromtimestamp(query.bucket_of(int(incident.triggered_at.timestamp()), seconds), UTC)] += 1
    buckets = query.bucket_starts(window, seconds)
    return {
        "health_rows": [{"health": health, "badge": health_badge(health.score)} for health in worst],
        "health_as_of": min((datetime.fromisoformat(health.components["as_of"]) for health in scores.values()),
                            default=None),
        "badge_counts": [(badge, badges.get(badge, 0)) for badge in ("good", "fair", "poor", "none")],
        "health_chart": chart(series("health score", [(health.skill_id, health.score) for health in worst],
                                     colors=[BADGE_COLOURS[health_badge(health.score)] for health in worst]),
                              kind="bar", categories=True, empty=NO_HEALTH, thresholds=[("fair", 50), ("good", 80)]),
        "services": services,
        "uptime_chart": chart(*uptime_lines, unit="%", empty=NO_CHECKS, now=window.end,
                              thresholds=[(f"SLA {target:g}%", target) for target in sorted(targets)],
                              bands=[(incident.triggered_at, incident.resolved_at, incident.rule_name)
                                     for incident in incidents]),
        "incidents": [{"incident": incident, "url": _incident_url(incident)} for incident in incidents],
        "incidents_chart": chart(series("incidents opened", [(moment, opened.get(moment)) for moment in buckets]),
                                 kind="bar", unit="incidents", empty=NO_INCIDENTS),
    }


@dataclass(frozen=True)
class Dashboard:
    slug: str
    title: str
    summary: str
    build: Callable[[Filters], dict]
    params: tuple[str, ...] = ()  # its own query parameters, kept by the range picker's links

    @property
    def template(self) -> str:
        return f"admin/dashboards/{self.slug}.html"

    @property
    def url(self) -> str:
        return reverse("ops-dashboard", args=[self.slug])


DASHBOARDS: dict[str, Dashboard] = {dashboard.slug: dashboard for dashboard in [
    Dashboard("usage", "Usage trends", "Executions and success rate over time, top and trending skills.",
              usage_trends),
    Dashboard("leaderboards", "Leaderboards", "Top by usage and by rating, most improved, trending new.",
              leaderboards_page),
    Dashboard("performance", "Performance", "Latency p50/p95/p99 over time per skill and endpoint, error rates.",
              performance_page, params=("skill", "endpoint")),
    Dashboard("adoption", "Adoption", "Skills per user, the orgs' adoption of the catalogue, weekly growth.",
              adoption_page),
    Dashboard("health", "Health", "Skill health scores, service status, uptime and SLA, incidents.", health_page),
]}


# --- The admin's home -----------------------------------------------------------------------------

HOME_INCIDENTS = 10
INGEST_WINDOW = timedelta(hours=1)
TOP_SKILLS_WINDOW = timedelta(days=7)


def ops_home_context(now: datetime | None = None) -> dict[str, Any]:
    """Open incidents by severity, the service health grid, the top skills with their health, the ingest rate of
    the last hour, and the dashboards; over all orgs."""
    now = now or timezone.now()
    unresolved = AlertIncident.objects.unresolved()  # the API's default incident list
    counts = Counter(unresolved.values_list("severity", flat=True))
    newest = list(unresolved.order_by("-triggered_at", "-id")[:HOME_INCIDENTS])

    services = {service.name: service for service in Service.objects.filter(enabled=True)}
    uptimes = uptime_percentages(list(services.values()), [timedelta(days=1)], now)
    service_tiles = [  # the states of GET monitoring/health, each with its uptime and admin page
        {"state": state, "uptime_24h": uptimes[services[state.service_name].pk][0],
         "url": reverse("admin:monitoring_service_change", args=[services[state.service_name].pk])}
        for state in health_summary(now).services if state.service_name in services]

    top = leaderboards.usage_board(Window(now - TOP_SKILLS_WINDOW, now), org=ALL_ORGS, limit=TOP)
    health = current_health_scores([row.skill_id for row in top], org=ALL_ORGS, now=now)
    skill_pks = dict(Skill.objects.filter(skill_id__in=[row.skill_id for row in top]).values_list("skill_id", "pk"))
    top_skills = [{"row": row, "score": health[row.skill_id].score, "badge": health_badge(health[row.skill_id].score),
                   "url": reverse("admin:analytics_skill_change", args=[skill_pks[row.skill_id]])
                   if row.skill_id in skill_pks else ""}  # (a board lists catalogue skills, unless just deleted)
                  for row in top]

    last_hour = Window(now - INGEST_WINDOW, now)
    executions = query.time_series(EXECUTIONS_METRIC, last_hour, interval="1m", aggregate="sum")
    requests = query.time_series(RESPONSE_TIME_METRIC, last_hour, interval="1m", aggregate="count")
    events = sum(value or 0 for ts in (executions, requests) for _, value in ts.points)
    # A quiet minute received 0 (a line without gaps), unless nothing came at all (the chart's empty text).
    ingest = [series(name, [(moment, value or 0) for moment, value in ts.points] if events else ts.points)
              for name, ts in (("skill executions/min", executions), ("API requests/min", requests))]
    return {
        "severities": [{"severity": severity, "count": counts.get(severity, 0),
                        "query": urlencode({"severity__exact": severity})}
                       for severity in sorted(SEVERITY_RANK, key=SEVERITY_RANK.__getitem__, reverse=True)],
        "open_incidents": sum(counts.values()),
        "incidents": [{"incident": incident, "url": _incident_url(incident)} for incident in newest],
        "services": service_tiles,
        "top_skills": top_skills,
        "top_skills_days": TOP_SKILLS_WINDOW.days,
        "health_days": RECENT.days,
        "events_per_minute": events / (INGEST_WINDOW.total_seconds() / 60),
        "ingest_chart": chart(*ingest, unit="per minute", height=200,
                              empty=f"Nothing received in the last hour: send executions to POST "
                                    f"{API}skills/executions or metrics to POST {API}metrics/batch."),
        "dashboards": DASHBOARDS.values(),
    }


# --- The views ------------------------------------------------------------------------------------


@admin.site.admin_view
def ops_home(request):
    """The admin's index (routed ahead of admin.site.urls), with the ops home above Django's app list."""
    return admin.site.index(request, extra_context={"ops": ops_home_context()})


@admin.site.admin_view
def dashboard_index(request):
    context = {**admin.site.each_context(request), "title": "Dashboards", "dashboards": DASHBOARDS.values()}
    return TemplateResponse(request, "admin/dashboards/index.html", context)


@admin.site.admin_view
def dashboard_page(request, slug: str):
    dashboard = DASHBOARDS.get(slug)
    if dashboard is None:
        raise Http404(f"No dashboard {slug!r}.")
    filters = read_filters(request, dashboard.params)
    context = {
        **admin.site.each_context(request),
        "title": dashboard.title,
        "dashboard": dashboard,
        "dashboards": DASHBOARDS.values(),
        "filters": filters,
        "orgs": Organization.objects.order_by("slug").values_list("slug", flat=True),
        **dashboard.build(filters),
    }
    return TemplateResponse(request, dashboard.template, context)

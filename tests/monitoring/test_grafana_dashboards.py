"""The dashboards of grafana/dashboards load, validate, and query only metrics the platform exposes."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from monitoring.grafana import (
    GRAFANA_DASHBOARDS_DIR,
    DashboardFileError,
    dashboard_metric_names,
    expression_metric_names,
    load_dashboards,
)
from tests.servers import find_binary, missing_server

EXPECTED = {  # file → (uid, title)
    "usage-trends.json": ("toolweaver-usage", "ToolWeaver: Usage trends"),
    "leaderboards.json": ("toolweaver-leaderboards", "ToolWeaver: Leaderboards"),
    "performance.json": ("toolweaver-performance", "ToolWeaver: Performance"),
    "adoption.json": ("toolweaver-adoption", "ToolWeaver: Adoption"),
    "health.json": ("toolweaver-health", "ToolWeaver: Health"),
}

# What the platform's /metrics exposes (the lead's scrape test checks the dashboards against a real scrape).
EXPOSED_METRIC_NAMES = {
    "toolweaver_skill_executions_total", "toolweaver_skill_success_total", "toolweaver_skill_failures_total",
    "toolweaver_skill_latency_milliseconds_bucket", "toolweaver_skill_latency_milliseconds_sum",
    "toolweaver_skill_latency_milliseconds_count",
    "toolweaver_skill_rating", "toolweaver_skill_ratings", "toolweaver_skill_installs_total",
    "toolweaver_skill_health_score", "toolweaver_skill_deprecated",
    "toolweaver_platform_users", "toolweaver_platform_active_users", "toolweaver_platform_new_users",
    "toolweaver_platform_agents", "toolweaver_platform_active_agents",
    "toolweaver_ingest_items_total", "toolweaver_ingest_rejected_total", "toolweaver_rollup_lag_seconds",
    "toolweaver_service_up", "toolweaver_service_status", "toolweaver_service_consecutive_failures",
    "toolweaver_service_response_time_seconds", "toolweaver_service_uptime_ratio",
    "toolweaver_service_sla_target_ratio", "toolweaver_service_sla_met",
    "toolweaver_alert_incidents_open", "toolweaver_alert_rules", "toolweaver_notifications_pending",
    "toolweaver_notifications_failed",
    # django-prometheus
    "django_http_requests_total_by_view_transport_method_total",
    "django_http_responses_total_by_status_view_method_total",
    "django_http_requests_latency_seconds_by_view_method_bucket",
}
# Families labelled with org_id: every selector of one of them filters by the dashboard's org_id variable.
ORG_LABELLED = re.compile(r"\b(toolweaver_(?:skill|platform)_(?!deprecated\b)\w+)\s*(\{[^}]*\})?")
GRAFANA_INTERVALS = {"$__rate_interval": "2m", "$__range": "7d", "$__interval": "1m"}


@pytest.fixture(scope="module")
def dashboards():
    return {dashboard["uid"]: dashboard for dashboard in load_dashboards()}


def panels_of(dashboards):
    return [(dashboard, panel) for dashboard in dashboards.values() for panel in dashboard["panels"]]


def targets_of(dashboards):
    return [(dashboard, panel, target) for dashboard, panel in panels_of(dashboards) for target in panel["targets"]]


def test_the_five_dashboards_load_with_their_uid_and_title(dashboards):
    assert sorted(path.name for path in GRAFANA_DASHBOARDS_DIR.glob("*.json")) == sorted(EXPECTED)
    for file_name, (uid, title) in EXPECTED.items():
        dashboard = json.loads((GRAFANA_DASHBOARDS_DIR / file_name).read_text())
        assert (dashboard["uid"], dashboard["title"]) == (uid, title), file_name
    assert {dashboard["title"] for dashboard in dashboards.values()} == {title for _, title in EXPECTED.values()}


def test_the_files_are_pretty_printed_with_two_spaces():
    for path in GRAFANA_DASHBOARDS_DIR.glob("*.json"):
        text = path.read_text()
        assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n", path.name


def test_each_dashboard_has_the_common_settings(dashboards):
    for uid, dashboard in dashboards.items():
        assert dashboard["tags"] == ["toolweaver"], uid
        assert 36 <= dashboard["schemaVersion"] <= 41, uid
        assert dashboard["time"] == {"from": "now-7d", "to": "now"}, uid
        variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        org = variables["org_id"]
        assert org["query"]["query"] == "label_values(toolweaver_skill_executions_total, org_id)", uid
        assert org["multi"] and org["includeAll"] and org["datasource"]["uid"] == "${datasource}", uid
        assert [item["name"] for item in dashboard["__inputs"]] == ["DS_PROMETHEUS"], uid


def test_every_panel_has_a_title_a_unit_a_type_and_the_datasource_variable(dashboards):
    for dashboard, panel in panels_of(dashboards):
        where = f"{dashboard['uid']}: {panel.get('title')}"
        assert panel["title"].strip(), where
        assert panel["fieldConfig"]["defaults"]["unit"].strip(), where
        assert panel["type"] in {"timeseries", "stat", "table", "bargauge"}, where
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert panel["targets"], where
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert target["expr"].strip() and target["refId"], where
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"]), where


def test_panels_have_unique_ids_and_do_not_overlap(dashboards):
    for uid, dashboard in dashboards.items():
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), uid
        cells: dict[tuple[int, int], str] = {}
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, f"{uid}: {panel['title']}"
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in cells, f"{uid}: {panel['title']} overlaps {cells[(x, y)]}"
                    cells[(x, y)] = panel["title"]


def test_the_panels_cover_seed_001(dashboards):
    titles = {uid: " | ".join(panel["title"] for panel in dashboard["panels"]).lower()
              for uid, dashboard in dashboards.items()}
    expected = {
        "toolweaver-usage": ["skill usage over time", "success rate by day", "adoption curves", "trending skills"],
        "toolweaver-leaderboards": ["top 10 skills by usage", "top 10 skills by rating", "most improved",
                                    "trending new"],
        "toolweaver-performance": ["execution time by skill", "success rate", "error rate", "latency percentiles"],
        "toolweaver-adoption": ["skills per user", "org adoption", "usage growth", "user engagement"],
        "toolweaver-health": ["skill health", "dependency (service) health", "deprecated skills", "incidents"],
    }
    for uid, words in expected.items():
        for word in words:
            assert word in titles[uid], f"{uid} has no panel about {word!r}"


def test_the_queries_name_only_exposed_metrics(dashboards):
    used = dashboard_metric_names(dashboards.values())
    assert used - EXPOSED_METRIC_NAMES == set()
    assert "toolweaver_skill_executions_total" in used  # the org_id variable's and many panels'


def test_org_labelled_selectors_filter_by_the_org_variable(dashboards):
    for dashboard, panel, target in targets_of(dashboards):
        for match in ORG_LABELLED.finditer(target["expr"]):
            assert match.group(2) and 'org_id=~"$org_id"' in match.group(2), (
                f"{dashboard['uid']}: {panel['title']}: {match.group(1)} without the org_id filter")


def test_every_query_is_valid_promql(dashboards, tmp_path):
    """promtool parses each expression, with Grafana's interval variables given values."""
    promtool = find_binary("promtool")
    if not promtool:
        missing_server("promtool is not installed (apt-get install prometheus)")
    rules = []
    for number, (_, _, target) in enumerate(targets_of(dashboards), start=1):
        expression = target["expr"]
        for variable, value in GRAFANA_INTERVALS.items():
            expression = expression.replace(variable, value)
        rules.append({"record": f"dashboard:query_{number}", "expr": expression})
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))  # JSON is YAML
    checked = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_the_example_scrape_config_is_valid():
    promtool = find_binary("promtool")
    if not promtool:
        missing_server("promtool is not installed (apt-get install prometheus)")
    config = GRAFANA_DASHBOARDS_DIR.parent / "prometheus.yml"
    checked = subprocess.run([promtool, "check", "config", "--syntax-only", str(config)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    assert "job_name: toolweaver" in text and "metrics_path: /metrics" in text
    assert "#   credentials_file:" in text and "PROMETHEUS_METRICS_TOKEN" in text


@pytest.mark.parametrize(("expression", "names"), [
    ('sum(rate(toolweaver_skill_executions_total{org_id=~"$org_id"}[$__rate_interval]))',
     {"toolweaver_skill_executions_total"}),
    ('histogram_quantile(0.95, sum by (skill_id, le) (rate(x_latency_bucket{job="a"}[5m])))', {"x_latency_bucket"}),
    ("sum(rate(x_sum[5m])) by (le) / sum(rate(x_count[5m])) without (instance)", {"x_sum", "x_count"}),
    ("a / on (skill_id) group_left (org_id) b", {"a", "b"}),
    ("a * ignoring(job) group_right b", {"a", "b"}),
    ("increase(c_total[7d] offset 7d) > bool 3 unless d or vector(0)", {"c_total", "d"}),
    ("topk(10, e @ end()) and f offset -1h", {"e", "f"}),
    ("max_over_time(g[1h:5m]) # h is in a comment", {"g"}),
    ('count_values("le", w) + Inf - NaN', {"w"}),
    ('label_replace(v, "dst", "$1", "src", "(by|on) {x}")', {"v"}),
    ('{__name__="named", job="x"}', {"named"}),
    ("recorded:rule_name:rate5m", {"recorded:rule_name:rate5m"}),
    ("sum without (skill_id) (s) / count(t) * 1e3 + 0x1f", {"s", "t"}),
    ("time() - process_start_time_seconds", {"process_start_time_seconds"}),
])
def test_expression_metric_names(expression, names):
    assert expression_metric_names(expression) == names


def test_dashboard_metric_names_reads_targets_nested_rows_and_query_variables():
    dashboard = {
        "panels": [{"title": "a", "targets": [{"expr": "rate(one_total[5m])"}]},
                   {"type": "row", "title": "b", "panels": [{"title": "c", "targets": [{"expr": "two"}]}]}],
        "templating": {"list": [
            {"type": "query", "query": {"query": "label_values(three{a=\"b\"}, org_id)"}},
            {"type": "query", "query": "label_values(job)"},
            {"type": "query", "query": "query_result(topk(5, four))"},
            {"type": "query", "query": "metrics(toolweaver_.*)"},
            {"type": "datasource", "query": "prometheus"},
        ]},
    }
    assert dashboard_metric_names([dashboard]) == {"one_total", "two", "three", "four"}


# --- The loader names the file and what is wrong ----------------------------------------------------------


def write(directory, name, dashboard):
    path = directory / name
    path.write_text(dashboard if isinstance(dashboard, str) else json.dumps(dashboard))
    return path


def good_dashboard(uid="u1", **changes):
    dashboard = {"uid": uid, "title": f"Dashboard {uid}", "panels": [
        {"id": 1, "title": "Panel", "fieldConfig": {"defaults": {"unit": "short"}}, "targets": [{"expr": "up"}]}]}
    dashboard.update(changes)
    return dashboard


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "broken.json: not valid JSON"),
    ("[1, 2]", "broken.json: a dashboard is a JSON object"),
    (good_dashboard(uid=""), "broken.json: the dashboard has no uid"),
    ({"uid": "x", "panels": []}, "broken.json: the dashboard has no title"),
    (good_dashboard(panels=[]), "broken.json: the dashboard has no panels"),
    (good_dashboard(panels=[{"id": 7, "fieldConfig": {"defaults": {"unit": "s"}}, "targets": [{"expr": "up"}]}]),
     r"broken.json: panel 1 \(id 7\) has no title"),
    (good_dashboard(panels=[{"title": "Latency", "fieldConfig": {"defaults": {}}, "targets": [{"expr": "up"}]}]),
     "broken.json: panel 'Latency' has no unit"),
    (good_dashboard(panels=[{"title": "Latency", "fieldConfig": {"defaults": {"unit": "ms"}}}]),
     "broken.json: panel 'Latency' has no queries"),
    (good_dashboard(panels=[{"title": "Rows", "type": "row", "fieldConfig": {"defaults": {"unit": "ms"}},
                             "targets": [{"expr": "up"}],
                             "panels": [{"title": "Inner", "targets": [{"expr": "up"}]}]}]),
     "broken.json: panel 'Inner' has no unit"),
    (good_dashboard(panels=[{"title": "Q", "fieldConfig": {"defaults": {"unit": "ms"}}, "targets": [{"refId": "A"}]}]),
     "broken.json: panel 'Q' has a query without a PromQL expression"),
])
def test_load_dashboards_names_the_file_and_the_problem(tmp_path, content, message):
    write(tmp_path, "a-good.json", good_dashboard())
    write(tmp_path, "broken.json", content)
    with pytest.raises(DashboardFileError, match=message):
        load_dashboards(tmp_path)


def test_load_dashboards_refuses_a_repeated_uid_and_an_empty_directory(tmp_path):
    with pytest.raises(DashboardFileError, match="no dashboard files"):
        load_dashboards(tmp_path)
    write(tmp_path, "one.json", good_dashboard("same"))
    write(tmp_path, "two.json", good_dashboard("same"))
    with pytest.raises(DashboardFileError, match="two.json: uid 'same' is already the uid of one.json"):
        load_dashboards(tmp_path)

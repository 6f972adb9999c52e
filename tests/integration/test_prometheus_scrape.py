"""A real Prometheus scrapes the platform's /metrics and the standalone client's endpoint; promtool lints the
exposition; several gunicorn workers answer a scrape with the same values."""

import json
import subprocess
import sys
import tempfile
import textwrap
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from analytics.models import Organization
from analytics.platform.tenancy import ApiToken
from tests.integration.test_client_fresh_process import fresh_env
from tests.servers import find_binary, free_port, missing_server, stop_pid, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def start_prometheus(base: Path, targets: list[str], bearer: str | None = None) -> tuple[str, int]:
    """Prometheus scraping ``targets`` (host:port) every second; returns (its URL, its pid)."""
    binary = find_binary("prometheus")
    if not binary:
        missing_server("prometheus is not installed (apt-get install prometheus)")
    authorization = f"    authorization: {{credentials: '{bearer}'}}\n" if bearer else ""
    (base / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: toolweaver\n{authorization}"
        f"    static_configs: [{{targets: {json.dumps(targets)}}}]\n"
    )
    port = free_port()
    log = open(base / "prometheus.log", "w")  # noqa: SIM115 - handed to the server
    process = subprocess.Popen(
        [binary, f"--config.file={base / 'prometheus.yml'}", f"--storage.tsdb.path={base / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()
    return f"http://127.0.0.1:{port}", process.pid


@pytest.fixture
def prometheus():
    """``prometheus(targets, bearer=None)`` starts one; each is stopped by its pid after the test."""
    pids = []

    def start(targets, bearer=None):
        url, pid = start_prometheus(Path(tempfile.mkdtemp(prefix="tw-prometheus-")), targets, bearer)
        pids.append(pid)
        return url

    yield start
    for pid in pids:
        stop_pid(pid)


def query(prometheus_url: str, expression: str) -> list:
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())["data"]["result"]


def value_reaches(prometheus_url: str, expression: str, expected: float, what: str) -> list:
    def reached():
        result = query(prometheus_url, expression)
        return result if result and float(result[0]["value"][1]) == expected else None

    return wait_for(reached, 60, what, interval=0.5)


def post(url: str, path: str, raw_token: str, body) -> dict:
    request = urllib.request.Request(f"{url}/api/v1/analytics/{path}", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {raw_token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def token_of(slug: str) -> str:
    return ApiToken.issue(Organization.get_or_create_by_slug(slug), name="scrape test")[1]


def target(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


def test_prometheus_reads_back_the_executions_posted_through_the_api(prometheus, live_server, settings):
    settings.ALLOWED_HOSTS = ["*"]
    raw = token_of("org_456")
    batch = [{"skill_id": "scrape_me", "success": success, "latency_ms": 120.0, "user_id": "u1"}
             for success in (True, True, False)]
    assert post(live_server.url, "skills/executions", raw, batch) == {"accepted": 3, "duplicates": 0}
    server = prometheus([target(live_server.url)])

    result = value_reaches(server, 'toolweaver_skill_executions_total{skill_id="scrape_me"}', 3,
                           "Prometheus's scrape of the posted executions")
    assert result[0]["metric"]["org_id"] == "org_456"
    assert "user_id" not in result[0]["metric"]
    assert float(query(server, 'toolweaver_skill_failures_total{skill_id="scrape_me"}')[0]["value"][1]) == 1
    p95 = query(server, 'histogram_quantile(0.95, toolweaver_skill_latency_milliseconds_bucket{skill_id="scrape_me"})')
    assert 100 < float(p95[0]["value"][1]) <= 250  # all three in the (100, 250] bucket
    requests = query(server, 'django_http_requests_total_by_view_transport_method_total{view="skill-executions"}')
    assert float(requests[0]["value"][1]) >= 1  # this process's requests so far, this one among them
    queries = query(server, 'django_db_execute_total{alias="default"}')
    assert queries and float(queries[0]["value"][1]) > 0


def test_a_token_protected_scrape_works_with_the_token_and_fails_without(prometheus, live_server, settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.PROMETHEUS_METRICS_TOKEN = "metrics-token-for-the-test-0123"
    with_token = prometheus([target(live_server.url)], bearer="metrics-token-for-the-test-0123")
    without = prometheus([target(live_server.url)])
    value_reaches(with_token, 'up{job="toolweaver"}', 1, "the authorized scrape")
    value_reaches(without, 'up{job="toolweaver"}', 0, "the refused scrape")
    assert query(without, "toolweaver_alert_incidents_open") == []


STANDALONE = """\
import time
from analytics import create_analytics_client

client = create_analytics_client(backend="prometheus")
for success in (True, False, True, True):
    client.record_skill_execution(skill_id="standalone", success=success, latency_ms=42.0, org_id="orchestrator")
client.rate_skill(skill_id="standalone", rating=4, org_id="orchestrator")
print("recorded", flush=True)
time.sleep(300)  # serving /metrics until the test stops this process
"""


def test_prometheus_scrapes_the_standalone_client_endpoint(prometheus, tmp_path):
    port = free_port()
    (tmp_path / "plain_settings.py").write_text(textwrap.dedent(f"""\
        from toolweaver_site.settings import *  # noqa: F403
        PROMETHEUS_PORT = {port}
    """))
    (tmp_path / "standalone.py").write_text(STANDALONE)
    log = open(tmp_path / "standalone.log", "w")  # noqa: SIM115 - handed to the process
    process = subprocess.Popen([sys.executable, str(tmp_path / "standalone.py")], cwd=tmp_path, stdout=log,
                               stderr=subprocess.STDOUT, env=fresh_env(tmp_path / "data", PYTHONPATH=str(tmp_path),
                                                                       DJANGO_SETTINGS_MODULE="plain_settings"))
    log.close()
    try:
        wait_for(lambda: "recorded" in (tmp_path / "standalone.log").read_text(), 60, "the standalone client")
        server = prometheus([f"127.0.0.1:{port}"])
        labels = '{skill_id="standalone",org_id="orchestrator"}'
        value_reaches(server, f"toolweaver_skill_executions_total{labels}", 4, "the standalone scrape")
        assert float(query(server, f"toolweaver_skill_failures_total{labels}")[0]["value"][1]) == 1
        assert float(query(server, f"toolweaver_skill_rating{labels}")[0]["value"][1]) == 4
    finally:
        stop_pid(process.pid)


def test_promtool_accepts_the_exposition(live_server, settings, tmp_path):
    promtool = find_binary("promtool")
    if not promtool:
        missing_server("promtool is not installed (apt-get install prometheus)")
    settings.ALLOWED_HOSTS = ["*"]
    raw = token_of("acme")
    post(live_server.url, "skills/executions", raw, [{"skill_id": "lint", "success": True, "latency_ms": 9.0}])
    post(live_server.url, "skills/ratings", raw, [{"skill_id": "lint", "rating": 5}])
    with urllib.request.urlopen(f"{live_server.url}/metrics", timeout=10) as response:
        text = response.read()
    assert b"toolweaver_skill_executions_total" in text
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    problems = checked.stdout.decode().splitlines() + checked.stderr.decode().splitlines()
    # Seed 001 names the latency histogram in milliseconds; promtool's one lint is that unit, nothing else.
    assert problems == ['toolweaver_skill_latency_milliseconds use base unit "seconds" instead of "milliseconds"']
    assert checked.returncode == 3  # lint findings only (a parse error would be 1)


def scrape(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name.startswith("toolweaver_")}


def test_every_gunicorn_worker_answers_with_the_same_values(web_server, tmp_path):
    multiproc = tmp_path / "prometheus-multiproc"
    multiproc.mkdir()
    server = web_server(workers=3, PROMETHEUS_MULTIPROC_DIR=str(multiproc))
    raw = token_of("acme")
    for index in range(6):  # spread over the workers by the kernel's accept
        batch = [{"skill_id": "spread", "success": True, "latency_ms": 10.0 * (i + 1)} for i in range(index + 1)]
        assert post(server.url, "skills/executions", raw, batch)["accepted"] == index + 1
    accepted = (("kind", "skill-executions"), ("outcome", "accepted"))
    executions = ("toolweaver_skill_executions_total", (("org_id", "acme"), ("skill_id", "spread")))
    scrapes = [scrape(server.url) for _ in range(12)]
    for samples in scrapes:
        assert samples[executions] == 21
        assert samples[("toolweaver_ingest_items_total", accepted)] == 21  # summed over the workers
    assert all(samples == scrapes[0] for samples in scrapes)

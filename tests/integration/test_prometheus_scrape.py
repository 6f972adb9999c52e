"""A real Prometheus scrapes the platform's /metrics and sees the skill families of seed 001."""

import json
import subprocess
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.servers import find_binary, free_port, missing_server, stop_pid, wait_for


@pytest.fixture
def prometheus_for(live_server):
    binary = find_binary("prometheus")
    if not binary:
        missing_server("prometheus is not installed (apt-get install prometheus)")
    base = Path(tempfile.mkdtemp(prefix="tw-prometheus-"))
    target = urllib.parse.urlsplit(live_server.url).netloc
    (base / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: toolweaver\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    port = free_port()
    log = open(base / "prometheus.log", "w")  # noqa: SIM115 - handed to the server
    process = subprocess.Popen(
        [binary, f"--config.file={base / 'prometheus.yml'}", f"--storage.tsdb.path={base / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT,
    )
    yield f"http://127.0.0.1:{port}"
    stop_pid(process.pid)
    log.close()


def query(prometheus: str, expression: str) -> list:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())["data"]["result"]


@pytest.mark.django_db(transaction=True)
def test_prometheus_scrapes_the_skill_families(prometheus_for, settings):
    from analytics import create_analytics_client

    settings.ALLOWED_HOSTS = ["*"]
    client = create_analytics_client("prometheus")
    for success in (True, True, False):
        client.record_skill_execution("scrape_me", success=success, latency_ms=120.0, user_id="u1",
                                      org_id="org_456")

    def executions():
        return query(prometheus_for, 'toolweaver_skill_executions_total{skill_id="scrape_me"}')

    result = wait_for(executions, 60, "Prometheus's first scrape", interval=0.5)
    assert result[0]["metric"]["org_id"] == "org_456"
    assert "user_id" not in result[0]["metric"]
    assert float(result[0]["value"][1]) >= 3
    failures = query(prometheus_for, 'toolweaver_skill_failures_total{skill_id="scrape_me"}')
    assert float(failures[0]["value"][1]) >= 1
    buckets = query(prometheus_for, 'toolweaver_skill_latency_milliseconds_bucket{skill_id="scrape_me"}')
    assert buckets, "the latency histogram's buckets are exposed"


@pytest.mark.django_db(transaction=True)
def test_prometheus_sees_django_prometheus_request_and_database_metrics(prometheus_for, live_server, settings):
    settings.ALLOWED_HOSTS = ["*"]
    for _ in range(3):
        with urllib.request.urlopen(f"{live_server.url}/readyz", timeout=10) as response:  # asks the database
            assert response.status == 200

    def readyz_requests():
        return query(prometheus_for, 'django_http_requests_total_by_view_transport_method_total{view="readyz"}')

    result = wait_for(readyz_requests, 60, "Prometheus's scrape of the request metrics", interval=0.5)
    assert result[0]["metric"]["method"] == "GET"
    assert float(result[0]["value"][1]) >= 3
    # Prometheus's own scrapes are requests too, named by the URL pattern of /metrics.
    scrapes = query(prometheus_for, 'django_http_requests_total_by_view_transport_method_total'
                                    '{view="prometheus-django-metrics"}')
    assert scrapes and float(scrapes[0]["value"][1]) >= 1
    queries = query(prometheus_for, 'django_db_execute_total{alias="default"}')
    assert queries and float(queries[0]["value"][1]) > 0

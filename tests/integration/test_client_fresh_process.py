"""The seeds' client examples in a fresh Python process, against a fresh data directory.

Each example is the seed's text with only its import changed
(``orchestrator.execution.analytics`` → ``analytics``). A runner executes it from a
folder outside the checkout, with no PYTHONPATH pointing at it: the venv's python finds
the project because ``make venv`` installs it (editable). The runner reports what the
example recorded; then seed 001's SQL statements run on the SQLite file, with the
``sqlite3`` module and, when installed, the ``sqlite3`` command line.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.otlp_receiver import start_otlp_receiver
from tests.servers import free_port

pytestmark = pytest.mark.sqlite_only  # the child processes use SQLite whatever the run's database

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

SEED_000_SQLITE_BACKEND = '''\
from analytics import create_analytics_client

client = create_analytics_client(backend='sqlite')

# Record skill execution
client.record_skill_usage(
    skill_id="parse_json",
    user_id="user_123",
    org_id="org_456",
    success=True,
    latency_ms=145.5
)

# Rate skill
client.rate_skill(skill_id="parse_json", rating=5, org_id="org_456")

# Get metrics
usage = client.get_skill_usage(skill_id="parse_json")
'''

SEED_001_AUTOMATIC_SETUP = '''\
# When you first run Phase 5 analytics:
from analytics import SkillAnalytics

analytics = SkillAnalytics()
# Automatically creates: ~/.toolweaver/analytics.db
# Automatically creates all tables
'''

# Runs an example and reports, as JSON on its last line, the variables it left behind.
RUNNER = '''\
import json, runpy, sys
names = runpy.run_path(sys.argv[1], run_name="__main__")
print(json.dumps({name: value if isinstance(value, (dict, list, str, int, float, type(None))) else repr(value)
                  for name, value in names.items() if not name.startswith("__")}, default=str))
'''

SEED_001_SQL = [
    "SELECT skill_id, COUNT(*) as uses FROM skill_usage GROUP BY skill_id;",
    "SELECT * FROM skill_usage ORDER BY timestamp DESC LIMIT 10;",
    "SELECT COUNT(*) FROM skill_usage;",
    "SELECT * FROM skill_metrics;",
    "PRAGMA integrity_check;",
]


def fresh_env(data_dir: Path, **extra) -> dict[str, str]:
    # No PYTHONPATH: the project must be importable because it is installed in the venv, as for any script.
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "ANALYTICS_DB_URL", "DJANGO_SETTINGS_MODULE", "TOOLWEAVER_TEST_DB_NAME",
                          "PYTHONPATH"} and not key.startswith(("OTLP_", "PROMETHEUS_"))}
    env.update(TOOLWEAVER_DATA_DIR=str(data_dir), ANALYTICS_DB_PATH=str(data_dir / "analytics.db"))
    env.update(extra)
    return env


def run_example(tmp_path: Path, data_dir: Path, source: str, **env) -> dict:
    example = tmp_path / "example.py"
    example.write_text(source)
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    done = subprocess.run([sys.executable, str(runner), str(example)], cwd=tmp_path, env=fresh_env(data_dir, **env),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_seed_001_automatic_setup_creates_the_database_and_its_tables(tmp_path):
    data_dir = tmp_path / "toolweaver"
    reported = run_example(tmp_path, data_dir, SEED_001_AUTOMATIC_SETUP)
    assert reported["analytics"] == "<StoreBackend sqlite>"
    database = data_dir / "analytics.db"
    assert database.exists()
    assert oct(database.stat().st_mode & 0o777) == "0o600"
    with sqlite3.connect(database) as connection:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type IN "
                                                         "('table', 'view')")}
        assert {"skill_usage", "skill_metrics"} <= tables
        assert connection.execute("SELECT COUNT(*) FROM skill_usage").fetchone() == (0,)


def test_seed_000_sqlite_example_records_and_seed_001_sql_reads_it(tmp_path):
    data_dir = tmp_path / "toolweaver"
    reported = run_example(tmp_path, data_dir, SEED_000_SQLITE_BACKEND)
    usage = reported["usage"]
    assert usage["skill_id"] == "parse_json"
    assert (usage["execution_count"], usage["success_count"], usage["success_rate"]) == (1, 1, 1.0)
    assert usage["avg_latency_ms"] == 145.5
    assert (usage["rating_avg"], usage["rating_count"]) == (5.0, 1)
    assert 0 <= usage["health_score"] <= 100

    # A second fresh process sees what the first recorded (and migrates nothing twice).
    again = run_example(tmp_path, data_dir, SEED_000_SQLITE_BACKEND)
    assert again["usage"]["execution_count"] == 2

    database = data_dir / "analytics.db"
    with sqlite3.connect(database) as connection:
        results = [connection.execute(statement).fetchall() for statement in SEED_001_SQL]
    uses, latest, count, metrics, integrity = results
    assert uses == [("parse_json", 2)]
    assert len(latest) == 2
    assert count == [(2,)]
    assert metrics[0][:4] == ("parse_json", 5.0, 2, 0)
    assert integrity == [("ok",)]

    cli = shutil.which("sqlite3")
    if cli is None:
        pytest.skip("the sqlite3 command line is not installed; the sqlite3 module ran seed 001's SQL")
    tables = subprocess.run([cli, str(database), ".tables"], capture_output=True, text=True, check=True).stdout
    assert "skill_usage" in tables and "skill_metrics" in tables
    output = subprocess.run([cli, str(database), *SEED_001_SQL[:2]], capture_output=True, text=True, check=True)
    assert output.stdout.splitlines()[0] == "parse_json|2"
    assert "user_123" in output.stdout
    csv = subprocess.run([cli, str(database), "-header", "-csv", "SELECT * FROM skill_usage;"],
                         capture_output=True, text=True, check=True).stdout
    assert {"skill_id", "user_id", "timestamp", "success", "latency_ms"} <= set(csv.splitlines()[0].split(","))
    assert len(csv.splitlines()) == 3


def test_prometheus_in_a_plain_process_serves_its_own_metrics(tmp_path):
    data_dir = tmp_path / "toolweaver"
    port = free_port()
    # PROMETHEUS_PORT reaches the client through Django settings; a settings module of the test sets it.
    (tmp_path / "plain_settings.py").write_text(textwrap.dedent(f"""\
        from toolweaver_site.settings import *  # noqa: F403
        PROMETHEUS_PORT = {port}
        PROMETHEUS_HOST = "127.0.0.1"
    """))
    source = textwrap.dedent(f"""\
        import urllib.request
        from analytics import create_analytics_client

        client = create_analytics_client(backend="prometheus")
        client.record_skill_execution(skill_id="parse_json", success=True, latency_ms=145.5,
                                      user_id="user_123", org_id="org_456")
        check = client.health_check()
        scraped = urllib.request.urlopen("http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    """)
    reported = run_example(tmp_path, data_dir, source, DJANGO_SETTINGS_MODULE="plain_settings",
                           PYTHONPATH=str(tmp_path))
    assert reported["check"]["healthy"] is True
    assert f"127.0.0.1:{port}" in reported["check"]["detail"]
    assert 'toolweaver_skill_executions_total{org_id="org_456",skill_id="parse_json"} 1.0' in reported["scraped"]
    assert "user_123" not in reported["scraped"]


def test_the_client_imports_with_the_venvs_python_from_any_folder(tmp_path):
    """README: after `make run` / `make test`, `.venv/bin/python` imports the project from anywhere."""
    assert VENV_PYTHON.exists(), "make venv creates .venv"
    names = "create_analytics_client, OTLPMetrics, PrometheusMetrics, SkillAnalytics"
    done = subprocess.run([str(VENV_PYTHON), "-c", f"from analytics import {names}"], cwd=tmp_path,
                          env=fresh_env(tmp_path / "toolweaver"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    # What the installed packages carry besides Python: every app's templates and migrations.
    source = textwrap.dedent("""\
        import json, os
        import django
        os.environ["DJANGO_SETTINGS_MODULE"] = "toolweaver_site.settings"
        django.setup()
        from django.db.migrations.loader import MigrationLoader
        from django.template.loader import get_template
        import analytics, alerts, monitoring, toolweaver_site
        get_template("admin/analytics/skill/change_list_with_boards.html")
        loader = MigrationLoader(None, ignore_no_migrations=True)
        print(json.dumps({"files": [m.__file__ for m in (analytics, alerts, monitoring, toolweaver_site)],
                          "migrated": sorted({app for app, _ in loader.disk_migrations})}))
    """)
    done = subprocess.run([str(VENV_PYTHON), "-c", source], cwd=tmp_path, env=fresh_env(tmp_path / "toolweaver"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert [Path(file).parent.name for file in found["files"]] == ["analytics", "alerts", "monitoring",
                                                                   "toolweaver_site"]
    assert all(Path(file).is_relative_to(ROOT) for file in found["files"])  # editable: the checkout's own files
    assert {"analytics", "monitoring", "alerts"} <= set(found["migrated"])


# Seed 001, "Test It" (the OTLP backend), with only the import changed.
SEED_001_OTLP_TEST_IT = '''\
from analytics import OTLPMetrics

metrics = OTLPMetrics()
metrics.record_skill_execution("test_skill", success=True, latency_ms=150)
# Metrics automatically pushed every 60 seconds
'''


def test_seed_001_otlp_example_pushes_what_it_recorded(tmp_path):
    receiver = start_otlp_receiver()
    try:
        # Configured as seed 001's .env says; the example pushes when its process exits, well before 60 s.
        reported = run_example(tmp_path, tmp_path / "toolweaver", SEED_001_OTLP_TEST_IT,
                               ANALYTICS_BACKEND="otlp", OTLP_ENDPOINT=receiver.endpoint + "/otlp",
                               OTLP_INSTANCE_ID="1234567", OTLP_TOKEN="glc_your_token_here", OTLP_PUSH_INTERVAL="60")
    finally:
        receiver.stop()
    assert reported["metrics"] == "<OtlpBackend otlp>"
    assert receiver.requests and receiver.requests[-1]["path"] == "/otlp/v1/metrics"
    assert receiver.requests[-1]["headers"]["authorization"].startswith("Basic ")
    labels = {"skill_id": "test_skill", "org_id": "default"}  # ANALYTICS_DEFAULT_ORG when no org is named
    assert receiver.latest("toolweaver_skill_executions_total", **labels).value == 1
    assert receiver.latest("toolweaver_skill_success_total", **labels).value == 1
    latency = receiver.latest("toolweaver_skill_latency_milliseconds", **labels)
    assert (latency.count, latency.total) == (1, 150.0)


# Seed 001's Prometheus backend: the same calls as its methods list, two instances (its "singleton pattern").
SEED_001_PROMETHEUS = '''\
import os
import urllib.request
from analytics import PrometheusMetrics

metrics = PrometheusMetrics()
again = PrometheusMetrics()  # Tests safely instantiate multiple PrometheusMetrics instances
metrics.record_skill_execution("parse_json", success=True, latency_ms=145.5, user_id="user_123", org_id="org_456")
again.record_skill_execution("parse_json", success=False, latency_ms=900.0, org_id="org_456")
again.record_skill_rating("parse_json", 5, user_id="user_123")
metrics.update_health_score("parse_json", 87.5)
check = metrics.health_check()
port = os.environ["PROMETHEUS_PORT"]
scraped = urllib.request.urlopen(f"http://localhost:{port}/metrics", timeout=10).read().decode()
'''


def test_seed_001_prometheus_metrics_expose_what_they_recorded(tmp_path):
    port = free_port()
    reported = run_example(tmp_path, tmp_path / "toolweaver", SEED_001_PROMETHEUS, ANALYTICS_BACKEND="prometheus",
                           PROMETHEUS_ENABLED="true", PROMETHEUS_PORT=str(port), PROMETHEUS_HOST="127.0.0.1")
    assert reported["metrics"] == "<PrometheusBackend prometheus>"
    assert reported["check"]["healthy"] is True
    scraped = reported["scraped"]
    assert 'toolweaver_skill_executions_total{org_id="org_456",skill_id="parse_json"} 2.0' in scraped
    assert 'toolweaver_skill_success_total{org_id="org_456",skill_id="parse_json"} 1.0' in scraped
    assert 'toolweaver_skill_failures_total{org_id="org_456",skill_id="parse_json"} 1.0' in scraped
    assert 'toolweaver_skill_rating{org_id="default",skill_id="parse_json"} 5.0' in scraped
    assert 'toolweaver_skill_health_score{org_id="default",skill_id="parse_json"} 87.5' in scraped
    assert "user_123" not in scraped

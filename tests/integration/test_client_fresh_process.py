"""The seeds' client examples in a fresh Python process, against a fresh data directory.

Each example is the seed's text with only its import changed
(``orchestrator.execution.analytics`` → ``analytics``). A runner executes it and
reports what it recorded; then seed 001's SQL statements run on the SQLite file,
with the ``sqlite3`` module and, when installed, the ``sqlite3`` command line.
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

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]

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
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "ANALYTICS_DB_URL", "DJANGO_SETTINGS_MODULE", "TOOLWEAVER_TEST_DB_NAME"}}
    env.update(TOOLWEAVER_DATA_DIR=str(data_dir), ANALYTICS_DB_PATH=str(data_dir / "analytics.db"),
               PYTHONPATH=str(ROOT))
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
                           PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}")
    assert reported["check"]["healthy"] is True
    assert f"127.0.0.1:{port}" in reported["check"]["detail"]
    assert 'toolweaver_skill_executions_total{org_id="org_456",skill_id="parse_json"} 1.0' in reported["scraped"]
    assert "user_123" not in reported["scraped"]

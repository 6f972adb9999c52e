"""Settings come from the environment; junk stops start-up with one clear line."""

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from toolweaver_site.env import ConfigError, database_from_url, env_bool, env_int

ROOT = Path(__file__).resolve().parent.parent


def run_manage(tmp_path, *args, **env):
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "TOOLWEAVER_TEST_DB_NAME"}}
    environ.update(TOOLWEAVER_DATA_DIR=str(tmp_path), ANALYTICS_DB_PATH=str(tmp_path / "db" / "analytics.db"))
    environ.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=120)


def test_env_bool_accepts_the_usual_words_and_rejects_junk():
    assert env_bool("X", False, environ={"X": "Yes"}) is True
    assert env_bool("X", True, environ={"X": "off"}) is False
    assert env_bool("X", True, environ={}) is True
    with pytest.raises(ConfigError, match="X must be a boolean"):
        env_bool("X", False, environ={"X": "maybe"})


def test_env_int_rejects_junk_and_out_of_range():
    assert env_int("N", 5, environ={"N": "12"}) == 12
    with pytest.raises(ConfigError, match="N must be an integer"):
        env_int("N", 5, environ={"N": "12h"})
    with pytest.raises(ConfigError, match="N must be at least 1"):
        env_int("N", 5, minimum=1, environ={"N": "0"})


def test_database_urls():
    assert database_from_url("DATABASE_URL", "sqlite:////tmp/x.db")["NAME"] == "/tmp/x.db"
    pg = database_from_url("DATABASE_URL", "postgres://app:s3cret@db.example:6543/analytics?sslmode=require")
    assert (pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"], pg["NAME"]) == (
        "app", "s3cret", "db.example", "6543", "analytics")
    assert pg["OPTIONS"] == {"sslmode": "require"}
    socket = database_from_url("DATABASE_URL", "postgresql://postgres@/analytics?host=/run/pg")
    assert socket["HOST"] == "/run/pg" and socket["OPTIONS"] == {}


def test_a_bad_database_url_names_the_variable_and_hides_the_password():
    with pytest.raises(ConfigError) as caught:
        database_from_url("DATABASE_URL", "mysql://root:hunter2@localhost/db")
    assert "DATABASE_URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"DATABASE_URL": "mysql://root:hunter2@localhost/db"}, "DATABASE_URL"),
        ({"ANALYTICS_DB_URL": "sqlite://"}, "ANALYTICS_DB_URL"),
        ({"ANALYTICS_DB_RETENTION_DAYS": "ninety"}, "ANALYTICS_DB_RETENTION_DAYS"),
        ({"ANALYTICS_LOG_LEVEL": "LOUD"}, "ANALYTICS_LOG_LEVEL"),
    ],
)
def test_start_up_stops_with_one_line_naming_the_variable(tmp_path, env, variable):
    result = run_manage(tmp_path, "check", **env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Configuration error: {variable} ")
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr


def test_check_deploy_is_clean_in_production_mode(tmp_path):
    result = run_manage(
        tmp_path, "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_DEBUG="false", DJANGO_SECRET_KEY="k" * 20 + "Zq8!xP2#mL9@vR4$wT6^" * 3,
        DJANGO_ALLOWED_HOSTS="analytics.example.com", DJANGO_SECURE_SSL="true",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_sqlite_file_is_private_and_in_wal_mode(tmp_path):
    result = run_manage(tmp_path, "migrate", "-v", "0")
    assert result.returncode == 0, result.stderr
    db_file = tmp_path / "db" / "analytics.db"
    assert stat.S_IMODE(db_file.stat().st_mode) == 0o600
    with sqlite3.connect(db_file) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("SELECT COUNT(*) FROM analytics_organization").fetchone()[0] == 0


def test_log_file_receives_the_logs(tmp_path):
    log_file = tmp_path / "analytics.log"
    result = run_manage(tmp_path, "migrate", "-v", "0", ANALYTICS_LOG_FILE=str(log_file))
    assert result.returncode == 0, result.stderr
    assert "periodic tasks" in log_file.read_text()


@pytest.mark.parametrize(("url", "engine"), [
    ("", "django_prometheus.db.backends.sqlite3"),
    ("postgres://app:s3cret@db.example:6543/analytics", "django_prometheus.db.backends.postgresql"),
])
def test_the_database_goes_through_django_prometheus_wrapper_of_the_same_backend(tmp_path, url, engine):
    """The database metrics on /metrics (django_db_*) come from django-prometheus's wrapper of Django's backend."""
    result = run_manage(tmp_path, "shell", "-c",
                        "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])",
                        DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == engine

"""Real servers for the integration tests: each started here and stopped by its pid."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.integration.browser import browser  # noqa: F401 - a fixture of every integration test
from tests.servers import (
    database_env,
    find_binary,
    missing_server,
    start_redis,
    start_web_server,
    stop_pid,
    wait_for,
    web_servers,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def redis_server():
    if not find_binary("redis-server"):
        missing_server("redis-server is not installed (apt-get install redis-server)")
    server = start_redis()
    yield server
    server.stop()


def child_env(**extra) -> dict[str, str]:
    """The test run's environment, pointed at the test database, for a child process."""
    env = dict(os.environ)
    env.pop("TOOLWEAVER_TEST_DB_NAME", None)
    env.update(database_env(connection.settings_dict))
    env.update(extra)
    return env


@pytest.fixture
def celery_worker(redis_server, transactional_db, tmp_path):
    """A real Celery worker on the Redis broker, sharing the test database."""
    env = child_env(CELERY_BROKER_URL=redis_server.url(0), CELERY_RESULT_BACKEND=redis_server.url(1))
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - handed to the worker
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "toolweaver_site", "worker", "--pool=solo", "--loglevel=INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"test-{os.getpid()}@localhost"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )

    def ready():
        if process.poll() is not None:
            raise AssertionError((tmp_path / "worker.log").read_text())
        return "ready." in (tmp_path / "worker.log").read_text()

    wait_for(ready, 60, "Celery worker")
    yield process
    stop_pid(process.pid)
    log.close()


@pytest.fixture
def web_server(transactional_db, tmp_path):
    """Start the platform's gunicorn on the test database: ``web_server(workers=1, **env)``; stopped by its pid
    after."""

    def start(index, workers=1, **extra):
        data_dir = tmp_path / f"server-{index}"
        data_dir.mkdir()
        env = child_env(TOOLWEAVER_DATA_DIR=str(data_dir), DJANGO_DEBUG="false", DJANGO_SECURE_SSL="false", **extra)
        return start_web_server(env, data_dir, cwd=ROOT, workers=workers)

    yield from web_servers(start)

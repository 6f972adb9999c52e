"""Database faults under load (issue 18), on a PostgreSQL and a gunicorn of the test's own:

- PostgreSQL stopped while a program sends through the ``http`` client: the API answers 503 with Retry-After
  (no traceback, no 500), the client keeps what it was given in its buffer and retries; after PostgreSQL is back,
  every event the client accepted is stored exactly once.
- A gunicorn worker killed with SIGKILL in the middle of a batch: the batch is stored whole or not at all, and
  the retry stores it once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests
from django.utils import timezone

from analytics.client.http import HttpBackend
from analytics.models import MetricEvent, SkillExecution
from tests.servers import start_postgres, start_web_server, wait_for

pytestmark = [pytest.mark.long, pytest.mark.postgres_only, pytest.mark.servers]

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1/analytics/"


class Platform:
    def __init__(self, postgres, server, token: str):
        self.postgres, self.server, self.token = postgres, server, token
        self.api = server.url + API

    def rows(self, table: str, event_id_prefix: str) -> tuple[int, int]:
        """(rows, distinct event ids) of ``table`` whose event id starts with the prefix."""
        with psycopg.connect(self.postgres.url("toolweaver")) as connection:
            return connection.execute(f"SELECT count(*), count(DISTINCT event_id) FROM {table} "
                                      "WHERE event_id LIKE %s", [event_id_prefix + "%"]).fetchone()

    def post(self, path: str, body) -> requests.Response:
        return requests.post(self.api + path, json=body, headers={"Authorization": f"Bearer {self.token}"},
                             timeout=60)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """One PostgreSQL (migrated) and gunicorn for the module: the tests run one after the other on it."""
    tmp_path = tmp_path_factory.mktemp("faults")
    postgres = start_postgres()
    server = None
    try:
        with psycopg.connect(postgres.url("postgres"), autocommit=True) as connection:
            connection.execute("CREATE DATABASE toolweaver")
        env = {key: value for key, value in os.environ.items() if key not in ("TOOLWEAVER_TEST_DB_NAME",)}
        env.update(DATABASE_URL=postgres.url("toolweaver"), TOOLWEAVER_DATA_DIR=str(tmp_path),
                   DJANGO_DEBUG="false", DJANGO_SECURE_SSL="false", API_RETRY_AFTER_SECONDS="1")
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True, timeout=300)
        token = subprocess.run([*manage, "create_api_token", "--org", "faults"], env=env, cwd=ROOT, check=True,
                               capture_output=True, text=True, timeout=60).stdout.strip()
        server = start_web_server(env, tmp_path / "web", cwd=ROOT, workers=1, threads=4)
        yield Platform(postgres, server, token)
    finally:
        if server is not None:
            server.stop()
        postgres.stop()


def test_postgresql_stopped_under_load_is_503_and_the_client_stores_everything_once_when_it_is_back(platform):
    client = HttpBackend(url=platform.api, token=platform.token, buffer_size=50_000)
    accepted = 0

    def send(count: int) -> None:
        nonlocal accepted
        for number in range(count):
            client.record_skill_execution("faulty_skill", success=number % 7 != 0, latency_ms=float(number))
            accepted += 1

    send(3000)
    assert client.push(timeout=60)
    assert platform.rows(SkillExecution._meta.db_table, "") == (3000, 3000)

    platform.postgres.stop_keeping_data()
    send(3000)  # the program goes on; the client holds these
    probe = platform.post("skills/executions", [{"skill_id": "probe", "success": True, "latency_ms": 1}])
    assert probe.status_code == 503, probe.text
    assert probe.headers["Retry-After"] == "1"
    assert probe.json() == {"detail": "The database is unavailable; retry later."}
    wait_for(lambda: "HTTP 503" in client.health_check()["detail"], 30, "the client to see the 503")
    assert client.pending() > 0

    platform.postgres.start_again()
    send(1000)
    assert client.push(timeout=90), client.health_check()
    assert platform.rows(SkillExecution._meta.db_table, "") == (accepted, accepted) == (7000, 7000)
    log = platform.server.log_tail(200_000)
    assert "Traceback" not in log and "Internal Server Error" not in log
    client.close()


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_a_worker_killed_mid_batch_stores_it_whole_or_not_at_all_and_the_retry_stores_it_once(platform):
    table = MetricEvent._meta.db_table
    for attempt, delay in enumerate((0.15, 0.08, 0.04)):
        prefix = f"kill-{attempt}-"
        now = timezone.now().isoformat()
        batch = [{"metric_name": "kill.test", "value": float(number), "metric_type": "gauge", "timestamp": now,
                  "tags": {"host": f"h{number % 50}"}, "event_id": f"{prefix}{number}"} for number in range(10_000)]
        outcome: list[object] = []

        def send(batch=batch, outcome=outcome):
            try:
                outcome.append(platform.post("metrics/batch", batch).status_code)
            except requests.ConnectionError:
                outcome.append("cut")

        worker = worker_pid(platform.server.pid)
        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(delay)
        os.kill(worker, signal.SIGKILL)
        sender.join(60)
        if outcome == ["cut"]:
            break  # killed while the batch was in the worker: what this test is about
    assert outcome == ["cut"], f"the batch was answered before the kill every time: {outcome}"
    stored, _ = platform.rows(table, prefix)
    assert stored in (0, 10_000)

    wait_for(lambda: worker_pid(platform.server.pid) != worker, 30, "gunicorn to start a new worker")
    retried = platform.post("metrics/batch", batch)
    assert retried.status_code == 201, retried.text
    assert retried.json() == {"accepted": 10_000 - stored, "duplicates": stored}
    assert platform.rows(table, prefix) == (10_000, 10_000)

"""Redis stopped and started again (docs/reliability-faults.md, "Redis stopped").

A real Redis (with a password), a real Celery worker and a real beat on the test database: the scheduled job
runs; Redis is stopped by its pid and beat's dispatch of the job fails visibly (an ERROR line naming the job
and the broker's address, never its password) while ``/readyz`` says the broker is unreachable; Redis is
started again on the same port and the job runs again in the same worker. With the embedded default (no
CELERY_BROKER_URL) nothing reaches for Redis at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.test import override_settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tests.integration.conftest import child_env
from tests.servers import RedisServer, find_binary, free_port, missing_server, stop_pid, wait_for

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "redis-secret-4711"
JOB = "send notifications"  # a declared job (alerts/schedule.py), run here every second


def start_redis_on(port: int) -> RedisServer:
    """redis-server on ``port`` with a password; stopped by its pid (``.stop()``)."""
    binary = find_binary("redis-server")
    if not binary:
        missing_server("redis-server is not installed (apt-get install redis-server)")
    base = Path(tempfile.mkdtemp(prefix="tw-redis-fault-"))
    pid_file = base / "redis.pid"
    subprocess.run([binary, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes", "--pidfile",
                    str(pid_file), "--dir", str(base), "--save", "", "--appendonly", "no", "--requirepass", PASSWORD,
                    "--logfile", str(base / "redis.log")], check=True)
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 15, "Redis")
    return RedisServer(base=base, port=port, pid=int(pid_file.read_text().strip()))


def broker_url(port: int) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{port}/0"


class Log:
    """A child's log file, read from a mark on: what it wrote since."""

    def __init__(self, path: Path):
        self.path, self.mark = path, 0

    def text(self) -> str:
        return self.path.read_text(errors="replace")

    def since_mark(self) -> str:
        return self.text()[self.mark:]

    def set_mark(self) -> None:
        self.mark = len(self.text())


CELERY = {"worker": (["worker", "--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat",
                       "-n", f"fault-{os.getpid()}@localhost"], "ready."),
          "beat": (["beat", "--max-interval=1"], "beat: Starting...")}


def start_celery(env: dict, tmp_path: Path) -> dict[str, tuple[subprocess.Popen, Log]]:
    """A worker and beat, started side by side; returned once both say they are up."""
    started = {}
    for kind, (arguments, _) in CELERY.items():
        log = Log(tmp_path / f"{kind}.log")
        with open(log.path, "w") as output:
            started[kind] = (subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "toolweaver_site", *arguments, "--loglevel=INFO"],
                cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT), log)

    def ready():
        for process, log in started.values():
            if process.poll() is not None:
                raise AssertionError(log.text())
        return all(CELERY[kind][1] in log.text() for kind, (_, log) in started.items())

    wait_for(ready, 60, "Celery worker and beat")
    return started


def only_job_every_second(name: str) -> None:
    """The schedule as an operator could set it in the admin: this job every second, the others disabled."""
    PeriodicTask.objects.update(enabled=False)
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(name=name).update(enabled=True, interval=every_second, crontab=None,
                                                  last_run_at=None)


def ran(log: Log) -> bool:
    """The worker logged the job done since the mark."""
    return any("Task alerts.send_notifications[" in line and "] succeeded in " in line
               for line in log.since_mark().splitlines())


def readyz(client, port: int) -> dict:
    with override_settings(CELERY_BROKER_URL=broker_url(port)):
        started = time.monotonic()
        response = client.get("/readyz")
        assert time.monotonic() - started < 5  # a short connect timeout: the probe does not hang
    assert response.status_code == 200  # the API serves without the broker: the web server stays in rotation
    return response.json()


@pytest.mark.long
@pytest.mark.servers
@pytest.mark.django_db(transaction=True)
def test_a_stopped_redis_fails_the_jobs_visibly_and_they_resume_when_it_is_back(client, tmp_path):
    port = free_port()
    redis = start_redis_on(port)
    processes: list[subprocess.Popen] = []
    try:
        only_job_every_second(JOB)
        env = child_env(CELERY_BROKER_URL=broker_url(port), CELERY_RESULT_BACKEND="")
        started = start_celery(env, tmp_path)
        (worker, worker_log), (beat, beat_log) = started["worker"], started["beat"]
        processes += [worker, beat]
        wait_for(lambda: ran(worker_log), 30, f"the job {JOB!r} in the worker")
        assert readyz(client, port) == {"status": "ok", "broker": "ok"}

        redis.stop()
        beat_log.set_mark()
        failure = f"Couldn't apply scheduled task {JOB}: "
        wait_for(lambda: failure in beat_log.since_mark(), 20, "beat's failure to send the job")
        # Celery's own line (its traceback follows): the level, the job, the broker's address and what failed.
        line = next(line for line in beat_log.since_mark().splitlines() if failure in line)
        assert "ERROR/" in line and f"127.0.0.1:{port}" in line and "Connection refused" in line, line
        assert readyz(client, port) == {"status": "degraded", "broker": "unreachable"}

        worker_log.set_mark()
        redis = start_redis_on(port)  # the same address: the worker and beat reconnect by themselves
        wait_for(lambda: ran(worker_log), 45, f"the job {JOB!r} again after Redis came back")
        assert readyz(client, port) == {"status": "ok", "broker": "ok"}
        assert worker.poll() is None and beat.poll() is None  # neither gave up
        for log in (worker_log, beat_log):
            assert PASSWORD not in log.text()
    finally:
        for process in processes:
            stop_pid(process.pid)
        redis.stop()


def test_the_embedded_default_never_reaches_for_redis(tmp_path):
    """No CELERY_BROKER_URL (``make run``): a job is sent to kombu's filesystem queue in the data directory,
    the redis client library is never even imported, and ``/readyz`` has no broker to check."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "TOOLWEAVER_TEST_DB_NAME")}
    env.update(TOOLWEAVER_DATA_DIR=str(tmp_path / "data"), ANALYTICS_DB_PATH=str(tmp_path / "analytics.db"),
               DATABASE_URL="")
    program = """
import json, sys, django
django.setup()
import os
from django.conf import settings
from toolweaver_site.celery import app
from toolweaver_site.views import broker_state
app.send_task("alerts.send_notifications")
queue = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
print(json.dumps({"broker": settings.CELERY_BROKER_URL, "redis_imported": "redis" in sys.modules,
                  "queued": len(os.listdir(queue)), "readyz_broker": broker_state()}))
"""
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"broker": "filesystem://", "redis_imported": False, "queued": 1, "readyz_broker": None}

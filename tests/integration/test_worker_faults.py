"""A Celery worker killed by SIGKILL in the middle of a job loses nothing and does nothing twice that its
receivers cannot tell apart (docs/reliability-faults.md, "A worker killed mid-task").

Real parts: a Redis broker of this test's own, real ``celery worker`` processes on the test database, a real
webhook receiver on loopback. Tasks are acknowledged late, so the killed worker's task stays in Redis's
unacknowledged set; the next worker, started with a short visibility timeout, takes that same task up again
by itself — the test sends nothing a second time.

- Notification delivery: the receiver holds the request for 5 s; the worker is killed while it waits. The
  outcome of that request is unknown (the receiver may have acted), so delivery is **at least once** with the
  idempotency key ``notification_id``: the receiver gets the notification twice with the same key, and a
  receiver that deduplicates on it acts exactly once. The row is not lost: it stays pending under the dead
  worker's lease, and is sent once the lease has run out (the test moves the lease's end instead of waiting
  its 70 s).
- Alert evaluation: the worker is killed while its pass waits for a lock on its first write; the pass's
  transaction dies with it. The task run again opens each incident once, and later passes open no duplicate
  (one unresolved incident per rule group is also a database constraint).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.db import connection, connections
from django.utils import timezone

from alerts.models import AlertIncident, AlertRuleGroupState, Notification, NotificationChannel
from alerts.notifications import outbox
from alerts.services.evaluation import evaluate_rules
from tests.alerts.factories import make_rule, org, record
from tests.integration.conftest import child_env
from tests.receivers import Reply, start_http_receiver
from tests.servers import find_binary, missing_server, start_redis, stop_pid, wait_for

ROOT = Path(__file__).resolve().parents[2]
REDELIVER_AFTER_SECONDS = 1  # the next worker's visibility timeout: the dead worker's task is this old already


@pytest.fixture(scope="module")
def redis_of_these_tests():
    """A Redis of these tests' own: no other test's worker sees the tasks left unacknowledged here."""
    if not find_binary("redis-server"):
        missing_server("redis-server is not installed (apt-get install redis-server)")
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def broker(redis_of_these_tests, transactional_db):
    """The broker on db 0, results on db 1; emptied for each test."""
    redis.Redis.from_url(redis_of_these_tests.url(0)).flushall()
    return redis_of_these_tests


class Workers:
    """Start Celery workers on the broker; each is stopped (or was killed) by its pid."""

    def __init__(self, broker, tmp_path: Path):
        self.broker, self.tmp_path, self.processes = broker, tmp_path, []
        self.app = Celery(broker=broker.url(0), backend=broker.url(1))

    def start(self, **env) -> tuple[subprocess.Popen, Path]:
        log_path = self.tmp_path / f"worker-{len(self.processes)}.log"
        environment = child_env(CELERY_BROKER_URL=self.broker.url(0), CELERY_RESULT_BACKEND=self.broker.url(1),
                                **env)
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "toolweaver_site", "worker", "--pool=solo", "--loglevel=INFO",
                 "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "-n", f"killed-{os.getpid()}-{len(self.processes)}@localhost"],
                cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)

        def ready():
            if process.poll() is not None:
                raise AssertionError(log_path.read_text())
            return "ready." in log_path.read_text()

        wait_for(ready, 60, "Celery worker")
        return process, log_path

    def start_redelivering(self) -> tuple[subprocess.Popen, Path]:
        """The next worker: it takes up tasks left unacknowledged for REDELIVER_AFTER_SECONDS."""
        return self.start(CELERY_VISIBILITY_TIMEOUT_SECONDS=str(REDELIVER_AFTER_SECONDS))

    def unacknowledged(self) -> int:
        return redis.Redis.from_url(self.broker.url(0)).hlen("unacked")

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                stop_pid(process.pid, signal.SIGQUIT)  # a cold shutdown: nothing of the test is left to finish


@pytest.fixture
def workers(broker, tmp_path):
    started = Workers(broker, tmp_path)
    yield started
    started.stop_all()


def kill(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(30) == -signal.SIGKILL


def let_the_task_age_past_the_visibility_timeout(since: float) -> None:
    time.sleep(max(0.0, since + REDELIVER_AFTER_SECONDS + 0.2 - time.monotonic()))


@pytest.mark.long
@pytest.mark.servers
def test_a_worker_killed_mid_delivery_delivers_at_least_once_with_one_idempotency_key(workers):
    # The receiver holds the first request 5 s (the worker is killed well within them), then answers at once.
    receiver = start_http_receiver(statuses=[Reply(200, delay=5.0)])
    try:
        acme = org()
        rule = make_rule(acme, name="cpu high", severity="critical")
        record(acme, "cpu.usage", 95, timezone.now())
        assert evaluate_rules().opened == 1
        channel = NotificationChannel.objects.create(org=acme, name="hook", kind="webhook",
                                                     config={"url": receiver.url}, timeout_seconds=10,
                                                     group_wait_seconds=0)
        channel.rules.set([rule])
        assert outbox.plan(timezone.now()) == 1

        first, _ = workers.start()
        workers.app.send_task("alerts.send_notifications")
        wait_for(lambda: receiver.requests, 30, "the worker's request at the receiver")
        sent_at = time.monotonic()
        kill(first)  # the receiver still holds the request: its outcome is unknown to the platform

        row = Notification.objects.get()
        assert (row.status, row.attempts) == ("pending", 1)  # claimed, never marked sent: not lost
        assert workers.unacknowledged() == 1  # acknowledged late: the task is still Redis's to hand out
        # The dead worker's lease would end on its own in timeout + 60 s; end it now instead of waiting.
        Notification.objects.filter(pk=row.pk).update(claimed_until=timezone.now())

        let_the_task_age_past_the_visibility_timeout(sent_at)
        workers.start_redelivering()  # sent nothing: it takes up the killed worker's task by itself
        wait_for(lambda: Notification.objects.get(pk=row.pk).status == "sent", 30, "the notification sent")

        row.refresh_from_db()
        assert row.attempts == 2
        wait_for(lambda: workers.unacknowledged() == 0, 10, "the task taken up again acknowledged")
        assert len(receiver.requests) == 2  # at least once: the same notification twice ...
        assert receiver.deliveries_by("notification_id") == {row.pk: 2}  # ... under one idempotency key
        assert workers.app.send_task("alerts.send_notifications").get(timeout=30)["sent"] == 0
        assert len(receiver.requests) == 2  # sent is sent: no later pass sends it again
    finally:
        receiver.stop()


@contextmanager
def first_write_blocked():
    """Hold a lock from another connection so that an evaluation pass waits at its first write to the rule
    states: PostgreSQL, a table lock that blocks writes but not reads; SQLite, the database's write lock."""
    holder = connections.create_connection("default")
    holder.ensure_connection()
    raw = holder.connection  # in autocommit mode, as Django keeps it: the transaction is opened by hand
    if holder.vendor == "postgresql":
        statements = ["BEGIN", f"LOCK TABLE {AlertRuleGroupState._meta.db_table} IN EXCLUSIVE MODE"]
    else:
        statements = ["BEGIN IMMEDIATE"]
    try:
        for statement in statements:
            raw.execute(statement)
        yield
    finally:
        raw.execute("ROLLBACK")
        holder.close()


def waiting_for_the_lock(log_path: Path) -> bool:
    """The worker's pass has started and waits for the lock (PostgreSQL says so; SQLite's waiter cannot be
    seen, so the pass is given half a second after its task was received)."""
    if "Task alerts.check_alerts[" not in log_path.read_text():
        return False
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND datname = current_database()")
            return cursor.fetchone()[0] > 0
    time.sleep(0.5)
    return True


@pytest.mark.long
@pytest.mark.servers
def test_a_worker_killed_mid_evaluation_leaves_no_half_pass_and_no_duplicate_incident(workers):
    acme = org()
    rules = [make_rule(acme, name="cpu high", metric_name="cpu.usage"),
             make_rule(acme, name="memory high", metric_name="memory.usage")]
    for rule in rules:
        record(acme, rule.metric_name, 95, timezone.now())

    first, first_log = workers.start()
    with first_write_blocked():
        workers.app.send_task("alerts.check_alerts")
        wait_for(lambda: waiting_for_the_lock(first_log), 30, "the evaluation pass waiting for its first write")
        sent_at = time.monotonic()
        kill(first)
    assert not AlertIncident.objects.exists() and not AlertRuleGroupState.objects.exists()  # no half pass
    assert workers.unacknowledged() == 1

    let_the_task_age_past_the_visibility_timeout(sent_at)
    workers.start_redelivering()
    wait_for(lambda: AlertIncident.objects.count() == 2, 30, "the incidents of the pass taken up again")
    assert workers.app.send_task("alerts.check_alerts").get(timeout=30)["opened"] == 0
    assert sorted(AlertIncident.objects.values_list("rule__name", "status")) == [
        ("cpu high", "open"), ("memory high", "open")]
    assert workers.unacknowledged() == 0

"""Real checks against real servers: the test database, Redis, a Celery worker, a local HTTP server, a closed port."""

import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitoring.models import HealthCheck, Service
from monitoring.services import runner
from tests.servers import free_port

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SLOW_SECONDS = 0.6


class LocalServer:
    """An HTTP server on 127.0.0.1 answering /ok (200), /error (500), /slow (200 late) and /hang (never).

    ``/meet/<path>`` first waits until ``meet(parties)`` requests are all in (a barrier), then answers as
    ``/<path>``: requests that only succeed if they are in flight at the same time. ``answered`` holds the
    paths answered (or given up on) so far.
    """

    def __init__(self):
        self.release = threading.Event()
        self.barrier = threading.Barrier(1)
        self.answered: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                try:
                    self.answer()
                finally:
                    server.answered.append(self.path)

            def answer(self):
                path = self.path
                if path.startswith("/meet/"):
                    server.barrier.wait()
                    path = path.removeprefix("/meet")
                if path == "/hang":
                    server.release.wait(30)
                    return
                if path == "/slow":
                    time.sleep(SLOW_SECONDS)
                status = 500 if path == "/error" else 200
                body = b"all systems go" if status == 200 else b"boom"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def meet(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=20)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def http_server():
    server = LocalServer()
    yield server
    server.stop()


def service(name="svc", **fields) -> Service:
    defaults = {"interval_seconds": 60, "timeout_seconds": 3, "check_kind": Service.CheckKind.HTTP}
    return Service.objects.create(name=name, **{**defaults, **fields})


def check(svc, now=T0):
    return runner.run_checks([svc], now=now)[0]


# --- HTTP ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_http_200_is_healthy_and_keeps_its_response_time(http_server):
    result = check(service(target=http_server.url("/ok"), body_keyword="systems go"))
    assert (result.status, result.consecutive_failures, result.error) == ("healthy", 0, "")
    assert 0 < result.response_time_ms <= 3000  # measured; a healthy answer came within the timeout


@pytest.mark.django_db
def test_http_500_fails_degraded_until_the_threshold_then_unhealthy(http_server):
    svc = service(target=http_server.url("/error"), failures_before_unhealthy=2)
    first = check(svc, T0)
    second = check(svc, T0 + timedelta(minutes=1))
    assert (first.status, first.consecutive_failures, first.error) == ("degraded", 1, "HTTP 500, expected 200")
    assert (second.status, second.consecutive_failures) == ("unhealthy", 2)
    svc.target = http_server.url("/ok")
    svc.save()
    assert check(svc, T0 + timedelta(minutes=2)).status == "healthy"


@pytest.mark.django_db
def test_http_expected_status_and_body_keyword(http_server):
    assert check(service("expects-500", target=http_server.url("/error"), expected_status=500)).status == "healthy"
    missing = check(service("keyword", target=http_server.url("/ok"), body_keyword="maintenance",
                            failures_before_unhealthy=1))
    assert (missing.status, missing.error) == ("unhealthy", "the body does not contain 'maintenance'")


@pytest.mark.django_db
def test_a_slow_answer_is_degraded_and_a_slower_one_than_the_timeout_fails(http_server):
    slow = check(service("slow", target=http_server.url("/slow"), degraded_response_time_ms=300))
    assert (slow.status, slow.consecutive_failures) == ("degraded", 0)
    assert slow.response_time_ms >= SLOW_SECONDS * 1000
    # /slow sleeps SLOW_SECONDS: at least that long anywhere, and far below these bounds on a loaded machine.
    fast_enough = check(service("lenient", target=http_server.url("/slow"), degraded_response_time_ms=30_000,
                                timeout_seconds=60))
    assert fast_enough.status == "healthy"
    too_slow = check(service("impatient", target=http_server.url("/slow"), timeout_seconds=0.2))
    assert too_slow.consecutive_failures == 1 and "timed out" in too_slow.error


@pytest.mark.django_db
def test_a_server_that_never_answers_times_out_without_delaying_the_other_checks(http_server):
    # The three requests meet at a barrier in the server: each is answered only once all three are in flight,
    # so the healthy answers below prove the checks ran at the same time (one after another, the first would
    # wait at the barrier until it broke). The others' timeouts are far longer than any load could delay them.
    http_server.meet(3)
    hanging = service("hanging", target=http_server.url("/meet/hang"), timeout_seconds=1)
    healthy = service("healthy", target=http_server.url("/meet/ok"), timeout_seconds=60)
    slow = service("slow", target=http_server.url("/meet/slow"), timeout_seconds=60)
    results = {r.service.name: r for r in runner.run_checks([hanging, healthy, slow], now=T0)}
    # run_checks came back while the server still held the hanging request: it did not wait for it.
    assert "/meet/hang" not in http_server.answered
    assert {"/meet/ok", "/meet/slow"} <= set(http_server.answered)
    # Its own socket timeout (1 s too) or the runner's deadline, whichever is noticed first.
    assert results["hanging"].consecutive_failures == 1 and "timed out" in results["hanging"].error
    assert (results["healthy"].status, results["healthy"].error) == ("healthy", "")
    assert (results["slow"].status, results["slow"].error) == ("healthy", "")


@pytest.mark.django_db
def test_http_to_a_closed_port_fails():
    result = check(service(target=f"http://127.0.0.1:{free_port()}/", failures_before_unhealthy=1))
    assert result.status == "unhealthy"
    assert result.error.startswith("no answer:") and "refused" in result.error.lower()


# --- TCP -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_tcp_open_and_closed_ports(http_server):
    assert check(service("open", check_kind="tcp", target=f"127.0.0.1:{http_server.port}")).status == "healthy"
    closed = check(service("closed", check_kind="tcp", target=f"127.0.0.1:{free_port()}", failures_before_unhealthy=1))
    assert closed.status == "unhealthy"
    assert closed.error.startswith("cannot connect:")


# --- Database, Redis, Celery ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_django_database_check_queries_the_test_database():
    result = check(service("db", check_kind="database", service_type="database"))
    assert (result.status, result.error) == ("healthy", "")


@pytest.mark.django_db
def test_redis_ping_against_a_real_redis_and_a_closed_port(redis_server):
    up = check(service("redis", check_kind="cache", target=redis_server.url(3)))
    assert (up.status, up.error) == ("healthy", "")
    down = check(service("no-redis", check_kind="cache", target=f"redis://127.0.0.1:{free_port()}/0",
                         failures_before_unhealthy=1))
    assert down.status == "unhealthy"
    assert down.error.startswith("ConnectionError")


@pytest.mark.django_db
def test_the_django_cache_check_writes_and_reads_back():
    assert check(service("cache", check_kind="cache")).status == "healthy"


@pytest.mark.django_db
def test_celery_broker_check_against_redis_and_a_closed_port(redis_server):
    assert check(service("broker", check_kind="celery_broker", target=redis_server.url(4))).status == "healthy"
    down = check(service("no-broker", check_kind="celery_broker", target=f"redis://127.0.0.1:{free_port()}/0",
                         failures_before_unhealthy=1, timeout_seconds=2))
    assert down.status == "unhealthy"
    assert "connection refused" in down.error.lower()


@pytest.mark.django_db
def test_celery_broker_check_uses_the_platforms_own_broker_by_default():
    # The test run's broker is kombu's filesystem transport (the embedded default).
    assert check(service("own-broker", check_kind="celery_broker")).status == "healthy"


def test_celery_worker_ping_gets_an_answer_from_a_real_worker(celery_worker, redis_server):
    result = check(service("workers", check_kind="celery_worker", target=redis_server.url(0), timeout_seconds=5))
    assert (result.status, result.error) == ("healthy", "")
    # On another Redis database no worker listens: nobody answers the ping.
    nobody = check(service("no-workers", check_kind="celery_worker", target=redis_server.url(6), timeout_seconds=1,
                           failures_before_unhealthy=1))
    assert (nobody.status, nobody.error) == ("unhealthy", "no Celery worker answered the ping")


# --- Two runners at once ---------------------------------------------------------------------------------------------


def test_two_runners_at_once_never_run_the_same_due_check_twice(transactional_db, http_server):
    for index in range(6):
        service(f"svc-{index}", target=http_server.url("/ok"))
    barrier = threading.Barrier(2)
    summaries = []

    def runner_thread():
        from django.db import connection

        try:
            barrier.wait()
            summaries.append(runner.run_due_checks(now=T0))
        finally:
            connection.close()

    threads = [threading.Thread(target=runner_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(summary["checked"] for summary in summaries) == 6
    assert HealthCheck.objects.count() == 6
    assert set(HealthCheck.objects.values_list("service__name", flat=True)) == {f"svc-{i}" for i in range(6)}

"""A task goes through a real Redis broker to a real worker and back."""

from celery import Celery


def test_a_task_runs_end_to_end_on_redis(celery_worker, redis_server):
    app = Celery(broker=redis_server.url(0), backend=redis_server.url(1))
    result = app.send_task("analytics.ping", args=["hello from the test"])
    assert result.get(timeout=30) == "hello from the test"


def test_a_scheduled_job_runs_in_the_worker_against_the_test_database(celery_worker, redis_server):
    app = Celery(broker=redis_server.url(0), backend=redis_server.url(1))
    removed = app.send_task("analytics.cleanup_old_data").get(timeout=60)
    assert isinstance(removed, dict)

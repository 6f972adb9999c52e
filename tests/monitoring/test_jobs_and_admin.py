"""The command, the task, the schedule, the demo data and the admin pages."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from analytics.platform.collectors import DemoContext, declared_periodic_jobs
from monitoring import demo, tasks
from monitoring.models import HealthCheck, Service, ServiceDailySLA
from tests.monitoring.factories import make_service

pytestmark = pytest.mark.django_db
FUNCS = "tests.monitoring.checkfuncs."


def test_command_runs_named_services_now_and_due_ones_by_default():
    make_service("good")
    make_service("bad", target=FUNCS + "raises", failures_before_unhealthy=1)
    out = StringIO()
    call_command("run_health_checks", "--service", "bad", stdout=out)
    assert out.getvalue().startswith("bad: unhealthy in ")
    assert "RuntimeError: the backend is on fire" in out.getvalue()
    out = StringIO()
    call_command("run_health_checks", stdout=out)
    assert out.getvalue().strip() == "1 checked, 0 failed, 0 now unknown"  # "bad" is not due again yet
    with pytest.raises(CommandError, match="No service named missing"):
        call_command("run_health_checks", "--service", "missing", stdout=StringIO())


def test_loop_runs_rounds_of_due_checks(monkeypatch):
    from monitoring.services import runner

    make_service("good", interval_seconds=5)
    naps = []
    runner.run_forever(tick_seconds=0.5, iterations=2, sleep=naps.append)
    assert naps == [0.5]
    assert HealthCheck.objects.count() == 1  # the second round found nothing due


def test_the_task_is_named_and_runs_due_checks():
    make_service("good")
    assert tasks.run_health_checks.name == "monitoring.run_health_checks"
    assert tasks.run_health_checks() == {"checked": 1, "failed": 0, "marked_unknown": 0}


def test_the_schedule_declares_the_health_check_job():
    jobs = {job.task: job for job in declared_periodic_jobs()}
    assert jobs["monitoring.run_health_checks"].every.total_seconds() == 30
    assert "monitoring.roll_up_daily_sla" in jobs


def test_demo_seed_is_idempotent():
    # How long it takes is measured by bench/demo.py (docs/benchmarks.md, "Demo data"), not asserted here.
    import random

    context = DemoContext(days=30, now=timezone.now(), rng=random.Random(1), log=lambda message: None)
    demo.seed(context)
    names = set(Service.objects.values_list("name", flat=True))
    assert names == {"platform-database", "platform-broker", "example-website", "flaky-search"}
    total = HealthCheck.objects.count()
    assert total > 4 * 8000  # 30 days every 5 minutes, less the gap
    flaky = Service.objects.get(name="flaky-search")
    assert flaky.checks.filter(status="unhealthy").exists() and flaky.checks.filter(status="healthy").exists()
    assert Service.objects.get(name="platform-broker").check_kind == "celery_broker"
    assert ServiceDailySLA.objects.filter(service=flaky).count() >= 29
    demo.seed(context)
    assert HealthCheck.objects.count() == total
    assert Service.objects.count() == 4


def test_admin_pages_and_the_run_check_now_action(personas, client):
    from django.contrib.auth import get_user_model

    service = make_service("good")
    make_service("bad", target=FUNCS + "raises")
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    response = client.post("/admin/monitoring/service/", {"action": "run_check_now", "_selected_action": [service.pk]},
                           follow=True)
    assert response.status_code == 200
    assert HealthCheck.objects.filter(service=service).count() == 1
    assert [str(m) for m in response.context["messages"]] == ["good: healthy"]
    page = client.get("/admin/monitoring/service/").content.decode()
    assert "uptime 24h" in page.lower() and "#2e7d32" in page  # healthy in green
    detail = client.get(f"/admin/monitoring/service/{service.pk}/change/").content.decode()
    assert "check history" in detail.lower() and "healthy" in detail
    for model in ("healthcheck", "servicetransition", "servicedailysla"):
        assert client.get(f"/admin/monitoring/{model}/").status_code == 200

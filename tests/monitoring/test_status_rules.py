"""Statuses, consecutive failures, transitions, staleness, claims and timeouts (custom check functions)."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from monitoring.models import CheckOutcome, HealthCheck, Service, ServiceTransition
from monitoring.services import runner
from monitoring.signals import service_status_changed
from tests.monitoring import checkfuncs
from tests.monitoring.factories import T0, make_service

pytestmark = pytest.mark.django_db
FUNCS = "tests.monitoring.checkfuncs."


def run(service, target, now):
    service.target = FUNCS + target
    service.save(update_fields=["target"])
    return runner.run_checks([service], now=now)[0]


def test_failures_below_the_threshold_are_degraded_and_reaching_it_is_unhealthy():
    service = make_service(failures_before_unhealthy=3)
    results = [run(service, "raises", T0 + timedelta(minutes=i)) for i in range(4)]
    assert [(r.status, r.consecutive_failures) for r in results] == [
        ("degraded", 1), ("degraded", 2), ("unhealthy", 3), ("unhealthy", 4)]
    assert results[0].error == "RuntimeError: the backend is on fire"
    recovered = run(service, "ok", T0 + timedelta(minutes=5))
    assert (recovered.status, recovered.consecutive_failures, recovered.error) == ("healthy", 0, "")
    service.refresh_from_db()
    assert (service.status, service.consecutive_failures) == ("healthy", 0)


def test_a_function_returning_false_fails():
    result = run(make_service(failures_before_unhealthy=1), "returns_false", T0)
    assert (result.status, result.error) == ("unhealthy", "the check function returned False")


def test_a_slow_success_is_degraded_but_not_a_failure():
    # "slow" sleeps 0.3 s: at least 300 ms on any machine. The "healthy" bound is far above it (and the
    # timeout above that), so that a loaded machine cannot turn it degraded.
    service = make_service(degraded_response_time_ms=100, timeout_seconds=60)
    result = run(service, "slow", T0)
    assert result.status == "degraded"
    assert result.consecutive_failures == 0
    assert result.response_time_ms >= 300
    service.degraded_response_time_ms = 30_000
    service.save()
    assert run(service, "slow", T0 + timedelta(minutes=1)).status == "healthy"


def test_a_hanging_check_times_out_without_delaying_the_others():
    # The three checks meet at a barrier before doing anything: they pass it only if all three run at once.
    # The others' timeouts are far longer than the barrier's, so no load can time them out.
    checkfuncs.meeting.reset(parties=3)
    hanging = make_service("hanging", target=FUNCS + "meet_then_hang", timeout_seconds=0.5)
    quick = make_service("quick", target=FUNCS + "meet_then_ok", timeout_seconds=60)
    failing = make_service("failing", target=FUNCS + "meet_then_raise", timeout_seconds=60)
    try:
        results = {r.service.name: r for r in runner.run_checks([hanging, quick, failing], now=T0)}
        # run_checks came back while the hanging check was still hanging: it was abandoned, not waited for.
        still_hanging = not checkfuncs.meeting.hang_returned.is_set()
    finally:
        checkfuncs.meeting.release.set()
    assert still_hanging
    assert results["hanging"].error == "timed out after 0.5 s"
    assert results["hanging"].consecutive_failures == 1
    assert results["hanging"].response_time_ms == 500  # the timeout, not however long it really took
    assert (results["quick"].status, results["quick"].error) == ("healthy", "")  # it passed the barrier
    assert results["failing"].error == "RuntimeError: the backend is on fire"  # so did this one
    assert checkfuncs.meeting.hang_returned.wait(10)  # let go, the abandoned thread finishes


def test_a_service_without_results_is_unknown_never_healthy():
    service = make_service()
    assert service.current_status(T0) == "unknown"
    assert service.health_value(T0) is None
    run(service, "ok", T0)
    assert service.current_status(T0 + timedelta(minutes=3)) == "healthy"
    assert service.health_value(T0 + timedelta(minutes=3)) == 1.0
    assert service.current_status(T0 + timedelta(minutes=3, seconds=1)) == "unknown"


def test_health_value_for_alerting():
    service = make_service(failures_before_unhealthy=2)
    run(service, "raises", T0)
    assert service.health_value(T0) == 0.5
    run(service, "raises", T0 + timedelta(minutes=1))
    assert service.health_value(T0 + timedelta(minutes=1)) == 0.0


def test_status_changes_are_recorded_as_claimable_transitions_and_signalled_after_commit(
    django_capture_on_commit_callbacks,
):
    service = make_service(failures_before_unhealthy=2)
    received = []

    def listener(sender, service, transition, **kwargs):
        received.append((service.name, transition.from_status, transition.to_status))

    service_status_changed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run(service, "ok", T0)
            run(service, "ok", T0 + timedelta(minutes=1))  # no change, no transition
            run(service, "raises", T0 + timedelta(minutes=2))
            run(service, "raises", T0 + timedelta(minutes=3))
    finally:
        service_status_changed.disconnect(listener)
    transitions = list(ServiceTransition.objects.order_by("at").values_list("from_status", "to_status", "at"))
    assert transitions == [
        ("unknown", "healthy", T0),
        ("healthy", "degraded", T0 + timedelta(minutes=2)),
        ("degraded", "unhealthy", T0 + timedelta(minutes=3)),
    ]
    assert received == [("svc", "unknown", "healthy"), ("svc", "healthy", "degraded"), ("svc", "degraded", "unhealthy")]
    last = ServiceTransition.objects.get(to_status="unhealthy")
    assert "2 consecutive failure(s)" in last.reason
    assert last.claim(T0) is True
    assert ServiceTransition.objects.get(pk=last.pk).claim(T0) is False


def test_a_service_whose_results_stop_turns_unknown_with_a_transition():
    service = make_service()
    run(service, "ok", T0)
    assert runner.mark_stale_services(T0 + timedelta(minutes=3)) == 0
    assert runner.mark_stale_services(T0 + timedelta(minutes=10)) == 1
    transition = ServiceTransition.objects.get(to_status="unknown")
    assert (transition.from_status, transition.at) == ("healthy", T0 + timedelta(minutes=3))
    run(service, "ok", T0 + timedelta(minutes=20))
    assert ServiceTransition.objects.filter(from_status="unknown", to_status="healthy").count() == 2


def test_a_result_after_a_long_silence_records_the_unknown_spell_first():
    service = make_service()
    run(service, "ok", T0)
    run(service, "ok", T0 + timedelta(hours=1))
    assert list(ServiceTransition.objects.order_by("at", "pk").values_list("from_status", "to_status")) == [
        ("unknown", "healthy"), ("healthy", "unknown"), ("unknown", "healthy")]


def test_due_checks_are_claimed_once_even_by_two_runners():
    due = make_service("due")
    make_service("later")
    Service.objects.filter(name="later").update(next_check_at=T0 + timedelta(minutes=5))
    make_service("disabled", enabled=False)
    assert [s.name for s in runner.claim_due_services(T0)] == ["due"]
    assert runner.claim_due_services(T0) == []  # the second runner finds nothing due
    # Two runners that read the same row before either updates it: only one wins.
    Service.objects.filter(pk=due.pk).update(next_check_at=None)
    first, second = Service.objects.get(pk=due.pk), Service.objects.get(pk=due.pk)
    assert first.claim(T0) is True
    assert second.claim(T0) is False
    assert Service.objects.get(pk=due.pk).next_check_at == T0 + timedelta(minutes=1)


def test_run_due_checks_runs_what_is_due_and_only_that():
    make_service("a")
    make_service("b", target=FUNCS + "raises")
    assert runner.run_due_checks(now=T0) == {"checked": 2, "failed": 1, "marked_unknown": 0}
    assert runner.run_due_checks(now=T0 + timedelta(seconds=30)) == {"checked": 0, "failed": 0, "marked_unknown": 0}
    assert runner.run_due_checks(now=T0 + timedelta(seconds=60))["checked"] == 2
    assert HealthCheck.objects.count() == 4


def test_evaluate_rules_without_running_anything():
    service = Service(degraded_response_time_ms=200, failures_before_unhealthy=2)
    assert service.evaluate(CheckOutcome(True, 199.0), 5)[:2] == ("healthy", 0)
    assert service.evaluate(CheckOutcome(True, 201.0), 0)[:2] == ("degraded", 0)
    assert service.evaluate(CheckOutcome(False, 3.0, "refused"), 0)[:2] == ("degraded", 1)
    assert service.evaluate(CheckOutcome(False, 3.0, "refused"), 1)[:2] == ("unhealthy", 2)


@pytest.mark.parametrize(("kind", "target"), [
    ("http", "ftp://example.com"), ("http", "not a url"), ("tcp", "localhost"), ("tcp", "localhost:99999"),
    ("custom", "no.such.module.function"), ("database", "nope"), ("cache", "nope"),
])
def test_the_admin_form_rejects_targets_that_cannot_work(kind, target):
    service = Service(name="x", check_kind=kind, target=target)
    with pytest.raises(ValidationError) as error:
        service.full_clean()
    assert "target" in error.value.message_dict


@pytest.mark.parametrize(("kind", "target"), [
    ("http", "https://example.com/health"), ("tcp", "127.0.0.1:5432"), ("custom", FUNCS + "ok"),
    ("database", ""), ("cache", ""), ("cache", "redis://localhost:6379/0"), ("celery_broker", ""),
])
def test_the_admin_form_accepts_workable_targets(kind, target):
    Service(name="x", check_kind=kind, target=target).full_clean()

"""Running checks: claim the due ones, run them concurrently, each under its own timeout, record outcomes.

Claiming is a conditional UPDATE of ``next_check_at`` (like healthchecks' sendalerts), so
two runners at once never run the same due check twice. Checks run in worker threads; the
outcomes are written from the calling thread.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import datetime

from django.db import close_old_connections, connection, connections
from django.db.models import Q
from django.utils import timezone

from monitoring.models import CheckOutcome, HealthCheck, Service, Status
from monitoring.services.checks import CheckFailed, check_for

logger = logging.getLogger(__name__)

MAX_WORKERS = 32


def perform_check(service: Service) -> CheckOutcome:
    """Run the service's check once, timing it. Never raises: an exception is a failed check."""
    started = time.monotonic()
    try:
        check_for(service).run()
    except CheckFailed as error:
        return CheckOutcome(False, _elapsed_ms(started), str(error))
    except Exception as error:
        return CheckOutcome(False, _elapsed_ms(started), f"{type(error).__name__}: {error}")
    finally:
        connections.close_all()  # this thread's connections only
    return CheckOutcome(True, _elapsed_ms(started))


def _elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)


def run_checks(services, now: datetime | None = None) -> list[HealthCheck]:
    """Run the checks concurrently and record each result at ``now``.

    A check that does not finish within its service's timeout is recorded as a failure at
    once; its thread is abandoned rather than waited for, so it delays nothing else.
    """
    services = list(services)
    now = now or timezone.now()
    outcomes: dict[int, CheckOutcome] = {}
    # Every check of a batch gets its own thread, so each starts at once and its deadline is exact.
    for first in range(0, len(services), MAX_WORKERS):
        outcomes.update(_run_batch(services[first:first + MAX_WORKERS]))
    results = [service.record(outcomes[service.pk], checked_at=now) for service in services]
    for service, result in zip(services, results, strict=True):
        if result.status != Status.HEALTHY:
            logger.info("health check %s: %s (%s)", service.name, result.status, result.error or "slow")
    return results


def _run_batch(services: list[Service]) -> dict[int, CheckOutcome]:
    if not services:
        return {}
    outcomes: dict[int, CheckOutcome] = {}
    executor = ThreadPoolExecutor(max_workers=len(services), thread_name_prefix="health-check")
    started = time.monotonic()
    futures = {executor.submit(perform_check, service): service for service in services}
    try:
        pending = set(futures)
        while pending:
            elapsed = time.monotonic() - started
            for future in [f for f in pending if futures[f].timeout_seconds <= elapsed]:
                pending.discard(future)
                service = futures[future]
                outcomes[service.pk] = CheckOutcome(
                    False, service.timeout_seconds * 1000, f"timed out after {service.timeout_seconds:g} s"
                )
            if not pending:
                break
            next_deadline = min(futures[f].timeout_seconds for f in pending) - elapsed
            done, pending = wait(pending, timeout=max(next_deadline, 0), return_when=FIRST_COMPLETED)
            for future in done:
                outcomes[futures[future].pk] = future.result()
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    return outcomes


def claim_due_services(now: datetime) -> list[Service]:
    due = Service.objects.filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now), enabled=True)
    return [service for service in due if service.claim(now)]


def mark_stale_services(now: datetime) -> int:
    """Move services without a recent result to ``unknown`` (recording the transition)."""
    candidates = Service.objects.exclude(status=Status.UNKNOWN)
    return sum(service.mark_unknown_if_stale(now) for service in candidates)


def run_due_checks(now: datetime | None = None) -> dict[str, int]:
    """What the scheduler runs: every due check once, then the staleness sweep."""
    now = now or timezone.now()
    started = time.monotonic()
    results = run_checks(claim_due_services(now), now=now)
    stale = mark_stale_services(now)
    summary = {"checked": len(results), "failed": sum(1 for r in results if r.consecutive_failures),
               "marked_unknown": stale}
    logger.info("run_health_checks: %(checked)d checked, %(failed)d failed, %(marked_unknown)d now unknown in "
                "%(seconds).2fs", {**summary, "seconds": time.monotonic() - started})
    return summary


def run_named_checks(names, now: datetime | None = None) -> list[HealthCheck]:
    """Run these services' checks now, due or not (``--service``, the admin's "run check now")."""
    now = now or timezone.now()
    services = list(Service.objects.filter(name__in=names))
    missing = set(names) - {service.name for service in services}
    if missing:
        raise Service.DoesNotExist(f"No service named {', '.join(sorted(missing))}.")
    return run_services_now(services, now)


def run_services_now(services, now: datetime | None = None) -> list[HealthCheck]:
    now = now or timezone.now()
    services = list(services)
    Service.objects.filter(pk__in=[s.pk for s in services]).update(next_check_at=None)
    for service in services:
        service.next_check_at = None
        service.claim(now)
    return run_checks(services, now=now)


def run_forever(tick_seconds: float = 5.0, iterations: int | None = None, sleep=time.sleep) -> None:
    """Run due checks every ``tick_seconds`` (``run_health_checks --loop``)."""
    count = 0
    while iterations is None or count < iterations:
        if not connection.in_atomic_block:
            close_old_connections()  # a long-lived loop must not keep a connection the server dropped
        run_due_checks()
        count += 1
        if iterations is None or count < iterations:
            sleep(tick_seconds)

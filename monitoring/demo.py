"""Monitoring's part of seed_demo: four services with 30 days of check history.

The platform's own database and broker, an external URL, and a service that flaps. The
history is simulated through the same status rules as real checks (``Service.evaluate``).
"""

from __future__ import annotations

import random
from datetime import timedelta

from monitoring.models import CheckOutcome, HealthCheck, Service
from monitoring.services.reports import roll_up_daily_sla

DEMO_INTERVAL = 300

DEMO_SERVICES = [
    {"name": "platform-database", "service_type": Service.Type.DATABASE, "check_kind": Service.CheckKind.DATABASE,
     "description": "The platform's own database", "degraded_response_time_ms": 250},
    {"name": "platform-broker", "service_type": Service.Type.CACHE, "check_kind": Service.CheckKind.CELERY_BROKER,
     "description": "The platform's Celery broker", "degraded_response_time_ms": 500},
    {"name": "example-website", "service_type": Service.Type.EXTERNAL, "check_kind": Service.CheckKind.HTTP,
     "target": "https://example.com/", "body_keyword": "Example Domain", "description": "An external URL",
     "degraded_response_time_ms": 1500},
    {"name": "flaky-search", "service_type": Service.Type.API, "check_kind": Service.CheckKind.CUSTOM,
     "target": "monitoring.demo.flaky_check", "description": "A service that flaps (custom check function)",
     "failures_before_unhealthy": 2},
]


def flaky_check(service) -> None:
    """The demo's custom check function: fails about one time in five."""
    if random.random() < 0.2:
        raise ConnectionError("search backend dropped the connection")


def _outcome(name: str, moment, rng: random.Random, outage) -> CheckOutcome | None:
    if name == "platform-database":
        return CheckOutcome(True, round(rng.uniform(1, 6), 3))
    if name == "platform-broker":
        return CheckOutcome(True, round(rng.uniform(2, 12), 3))
    if name == "example-website":
        if outage[0] <= moment < outage[1]:
            return CheckOutcome(False, 10_000.0, "timed out after 10 s")
        slow = 9 <= moment.hour < 10 and rng.random() < 0.5
        return CheckOutcome(True, round(rng.uniform(1600, 2500) if slow else rng.uniform(90, 400), 3))
    if rng.random() < 0.18:
        return CheckOutcome(False, round(rng.uniform(1, 30), 3), "ConnectionError: search backend dropped the link")
    return CheckOutcome(True, round(rng.uniform(20, 120), 3))


def seed(context) -> None:
    now = context.now
    start = now - timedelta(days=context.days)
    # A stretch with no results at all (the monitor itself was down): it counts as unknown, not as uptime.
    monitor_gap = (now - timedelta(days=12, hours=3), now - timedelta(days=12, hours=1))
    outage = (now - timedelta(days=5, hours=2), now - timedelta(days=5, hours=1, minutes=20))
    services = []
    for spec in DEMO_SERVICES:
        service, created = Service.objects.get_or_create(
            name=spec["name"], defaults={**spec, "interval_seconds": DEMO_INTERVAL, "timeout_seconds": 10}
        )
        services.append(service)
        if service.checks.exists():
            continue
        rows, failures, last = [], 0, None
        moment = start
        while moment < now:
            if not monitor_gap[0] <= moment < monitor_gap[1]:
                outcome = _outcome(service.name, moment, context.rng, outage)
                status, failures, _ = service.evaluate(outcome, failures)
                last = HealthCheck(service=service, status=status, response_time_ms=outcome.response_time_ms,
                                   error=outcome.error, consecutive_failures=failures, checked_at=moment)
                rows.append(last)
            moment += timedelta(seconds=DEMO_INTERVAL)
        HealthCheck.objects.bulk_create(rows, batch_size=2000)
        if last is not None:
            Service.objects.filter(pk=service.pk).update(
                status=last.status, consecutive_failures=last.consecutive_failures, last_checked_at=last.checked_at,
                last_response_time_ms=last.response_time_ms, last_error=last.error,
                next_check_at=last.checked_at + timedelta(seconds=DEMO_INTERVAL),
            )
        context.log(f"monitoring: {service.name} with {len(rows)} checks")
    roll_up_daily_sla(now, services)

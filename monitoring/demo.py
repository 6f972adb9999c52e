"""Monitoring's part of seed_demo: four services with 30 days of check history.

The platform's own database and broker, an HTTP check of the platform's own ``/healthz`` (on the
port ``make run`` serves: the demo never reaches outside this machine), and a service that flaps.
The history is simulated through the same status rules as real checks (``Service.evaluate``).
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.conf import settings

from monitoring.models import CheckOutcome, HealthCheck, Service
from monitoring.services.reports import roll_up_daily_sla

DEMO_INTERVAL = 300

# What older demos checked (a public website); a demo database still holding it is moved to the local URL.
LEGACY_WEBSITE_TARGET = "https://example.com/"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def local_healthz_url() -> str:
    """The platform's own /healthz where ``make run`` serves it (TOOLWEAVER_HOST, TOOLWEAVER_PORT)."""
    host = settings.TOOLWEAVER_HOST
    if host in {"", "0.0.0.0", "::", "[::]"} or host in LOOPBACK_HOSTS:
        host = "127.0.0.1"  # a wildcard bind is reached on loopback
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.TOOLWEAVER_PORT}/healthz"


def demo_services() -> list[dict]:
    return [
        {"name": "platform-database", "service_type": Service.Type.DATABASE,
         "check_kind": Service.CheckKind.DATABASE, "description": "The platform's own database",
         "degraded_response_time_ms": 250},
        {"name": "platform-broker", "service_type": Service.Type.CACHE,
         "check_kind": Service.CheckKind.CELERY_BROKER, "description": "The platform's Celery broker",
         "degraded_response_time_ms": 500},
        # An HTTP check as one would watch a website, on the platform's own web server: nothing leaves the machine.
        {"name": "example-website", "service_type": Service.Type.API, "check_kind": Service.CheckKind.HTTP,
         "target": local_healthz_url(), "body_keyword": '"ok"',
         "description": "The platform's own web server (GET /healthz), checked as a website would be",
         "degraded_response_time_ms": 250},
        {"name": "flaky-search", "service_type": Service.Type.API, "check_kind": Service.CheckKind.CUSTOM,
         "target": "monitoring.demo.flaky_check", "description": "A service that flaps (custom check function)",
         "failures_before_unhealthy": 2},
    ]


def _is_local_healthz(target: str) -> bool:
    return target.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:")) and target.endswith(
        "/healthz")


def flaky_check(service) -> None:
    """The demo's custom check function: fails about one time in five."""
    if random.random() < 0.2:
        raise ConnectionError("search backend dropped the connection")


def _outcome(name: str, moment, rng: random.Random, outage) -> CheckOutcome:
    if name == "platform-database":
        return CheckOutcome(True, round(rng.uniform(1, 6), 3))
    if name == "platform-broker":
        return CheckOutcome(True, round(rng.uniform(2, 12), 3))
    if name == "example-website":
        if outage[0] <= moment < outage[1]:  # the web server was stopped for 40 minutes
            return CheckOutcome(False, round(rng.uniform(0.2, 1.5), 3), "no answer: [Errno 111] Connection refused")
        slow = 9 <= moment.hour < 10 and rng.random() < 0.5  # a busy hour: degraded
        return CheckOutcome(True, round(rng.uniform(300, 900) if slow else rng.uniform(2, 25), 3))
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
    for spec in demo_services():
        service, created = Service.objects.get_or_create(
            name=spec["name"], defaults={**spec, "interval_seconds": DEMO_INTERVAL, "timeout_seconds": 10}
        )
        if not created and spec["check_kind"] == Service.CheckKind.HTTP and service.target != spec["target"] and (
            service.target == LEGACY_WEBSITE_TARGET or _is_local_healthz(service.target)
        ):
            # An earlier demo's public website, or this server on another port: check this server now.
            for field in ("target", "body_keyword", "description", "service_type", "degraded_response_time_ms"):
                setattr(service, field, spec[field])
            service.save(update_fields=["target", "body_keyword", "description", "service_type",
                                        "degraded_response_time_ms"])
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

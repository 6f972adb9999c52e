"""The current health of services, as the API and the admin show it."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from analytics.platform.windows import isoformat
from monitoring.models import Service, Status, worst_status


def service_state(service: Service, now: datetime) -> dict:
    return {
        "service_name": service.name,
        "service_type": service.service_type,
        "status": service.current_status(now),
        "response_time_ms": service.last_response_time_ms,
        "consecutive_failures": service.consecutive_failures,
        "last_checked": isoformat(service.last_checked_at),
    }


def health_summary(now: datetime | None = None) -> dict:
    """Every enabled service's current status; ``overall_status`` is the worst (``unknown`` when none)."""
    now = now or timezone.now()
    services = [service_state(service, now) for service in Service.objects.filter(enabled=True)]
    statuses = [state["status"] for state in services]
    return {
        "overall_status": worst_status(statuses),
        "total_services": len(services),
        **{status: statuses.count(status) for status in Status.values},
        "services": services,
    }


def service_health(service: Service, now: datetime | None = None, recent: int = 20) -> dict:
    now = now or timezone.now()
    checks = service.checks.order_by("-checked_at")[:recent]
    return {
        **service_state(service, now),
        "health": service.health_value(now),
        "check_kind": service.check_kind,
        "enabled": service.enabled,
        "interval_seconds": service.interval_seconds,
        "timeout_seconds": service.timeout_seconds,
        "degraded_response_time_ms": service.degraded_response_time_ms,
        "failures_before_unhealthy": service.failures_before_unhealthy,
        "sla_target": service.sla_target,
        "last_error": service.last_error,
        "recent_checks": [
            {
                "status": check.status,
                "response_time_ms": check.response_time_ms,
                "error": check.error,
                "consecutive_failures": check.consecutive_failures,
                "checked_at": isoformat(check.checked_at),
            }
            for check in checks
        ],
    }

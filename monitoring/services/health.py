"""The current health of services, as the API and the admin show it."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from pydantic import Field

from analytics.platform.contracts import ResponseContract
from monitoring.models import Service, Status, worst_status


class ServiceState(ResponseContract):
    service_name: str
    service_type: Service.Type
    status: Status
    response_time_ms: float | None
    consecutive_failures: int
    last_checked: datetime | None


class HealthSummary(ResponseContract):
    overall_status: Status = Field(
        description="The worst service status: unhealthy, then unknown, then degraded, then healthy.")
    total_services: int
    healthy: int
    degraded: int
    unhealthy: int
    unknown: int
    services: list[ServiceState]


class CheckResult(ResponseContract):
    status: Status
    response_time_ms: float | None
    error: str
    consecutive_failures: int
    checked_at: datetime


class ServiceHealth(ServiceState):
    health: float | None = Field(description="1 healthy, 0.5 degraded, 0 unhealthy; null unknown.")
    check_kind: Service.CheckKind
    enabled: bool
    interval_seconds: int
    timeout_seconds: float
    degraded_response_time_ms: float | None
    failures_before_unhealthy: int
    sla_target: float
    last_error: str
    recent_checks: list[CheckResult] = Field(description="Newest first.")


def _state_fields(service: Service, now: datetime) -> dict:
    return {
        "service_name": service.name,
        "service_type": service.service_type,
        "status": service.current_status(now),
        "response_time_ms": service.last_response_time_ms,
        "consecutive_failures": service.consecutive_failures,
        "last_checked": service.last_checked_at,
    }


def health_summary(now: datetime | None = None) -> HealthSummary:
    """Every enabled service's current status; ``overall_status`` is the worst (``unknown`` when none)."""
    now = now or timezone.now()
    services = [ServiceState(**_state_fields(service, now)) for service in Service.objects.filter(enabled=True)]
    statuses: list[str] = [state.status for state in services]
    return HealthSummary(
        overall_status=worst_status(statuses),
        total_services=len(services),
        **{status: statuses.count(status) for status in Status.values},
        services=services,
    )


def service_health(service: Service, now: datetime | None = None, recent: int = 20) -> ServiceHealth:
    now = now or timezone.now()
    checks = service.checks.order_by("-checked_at")[:recent]
    return ServiceHealth(
        **_state_fields(service, now),
        health=service.health_value(now),
        check_kind=service.check_kind,
        enabled=service.enabled,
        interval_seconds=service.interval_seconds,
        timeout_seconds=service.timeout_seconds,
        degraded_response_time_ms=service.degraded_response_time_ms,
        failures_before_unhealthy=service.failures_before_unhealthy,
        sla_target=service.sla_target,
        last_error=service.last_error,
        recent_checks=[CheckResult.model_validate(check) for check in checks],
    )

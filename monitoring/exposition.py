"""Monitoring's part of /metrics and of the server's OTLP push: each service's health, uptime and SLA."""

from __future__ import annotations

from datetime import datetime, timedelta

from analytics.metric_families import Exposed, MetricFamily, Sample
from monitoring.models import Service, Status
from monitoring.services.reports import uptime_percentages

SERVICE = ("service",)
SERVICE_UP = MetricFamily("toolweaver_service_up", "1 while the service is healthy or degraded, 0 when unhealthy "
                          "(no sample while its status is unknown).", "gauge", SERVICE)
SERVICE_STATUS = MetricFamily("toolweaver_service_status", "1 for the service's current status.", "gauge",
                              ("service", "status"))
SERVICE_FAILURES = MetricFamily("toolweaver_service_consecutive_failures", "Failed checks in a row.", "gauge",
                                SERVICE)
SERVICE_RESPONSE_TIME = MetricFamily("toolweaver_service_response_time_seconds",
                                     "Response time of the service's last check.", "gauge", SERVICE, unit="s")
SERVICE_UPTIME = MetricFamily("toolweaver_service_uptime_ratio", "Uptime over the window (0-1; degraded counts as "
                              "up).", "gauge", ("service", "window"), unit="1")
SERVICE_SLA_TARGET = MetricFamily("toolweaver_service_sla_target_ratio", "The service's SLA target (0-1).", "gauge",
                                  SERVICE, unit="1")
SERVICE_SLA_MET = MetricFamily("toolweaver_service_sla_met", "1 when the last 30 days' uptime meets the SLA target.",
                               "gauge", SERVICE)

UPTIME_WINDOWS = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def exposed_families(now: datetime) -> list[Exposed]:
    exposed = {family.name: Exposed(family) for family in (
        SERVICE_UP, SERVICE_STATUS, SERVICE_FAILURES, SERVICE_RESPONSE_TIME, SERVICE_UPTIME, SERVICE_SLA_TARGET,
        SERVICE_SLA_MET)}

    def add(family: MetricFamily, labels: tuple[str, ...], value: float) -> None:
        exposed[family.name].samples.append(Sample(labels, value))

    services = list(Service.objects.filter(enabled=True).order_by("name"))
    uptimes = uptime_percentages(services, list(UPTIME_WINDOWS.values()), now)
    for service in services:
        name = (service.name,)
        if service.status != Status.UNKNOWN:
            add(SERVICE_UP, name, float(service.status != Status.UNHEALTHY))
        for status in Status:
            add(SERVICE_STATUS, (service.name, status.value), float(service.status == status))
        add(SERVICE_FAILURES, name, service.consecutive_failures)
        if service.last_response_time_ms is not None:
            add(SERVICE_RESPONSE_TIME, name, service.last_response_time_ms / 1000)
        for window, uptime in zip(UPTIME_WINDOWS, uptimes[service.pk], strict=True):
            if uptime is not None:
                add(SERVICE_UPTIME, (service.name, window), uptime / 100)
        add(SERVICE_SLA_TARGET, name, service.sla_target / 100)
        month = uptimes[service.pk][-1]
        if month is not None:
            add(SERVICE_SLA_MET, name, float(month >= service.sla_target))
    return list(exposed.values())

"""Health and SLA of the platform-wide services: any valid token may read them."""

from datetime import timedelta
from typing import Annotated, ClassVar

from django.shortcuts import get_object_or_404

from analytics.platform.contracts import Bounded, Query, WindowQuery, endpoint
from analytics.platform.conventions import ApiView
from monitoring.models import Service
from monitoring.services.health import HealthSummary, ServiceHealth, health_summary, service_health
from monitoring.services.reports import SlaReportBody, service_sla

MAX_RECENT_CHECKS = 100


class RecentChecksQuery(Query):
    limit: Annotated[int, Bounded(1, MAX_RECENT_CHECKS, "Recent checks to show.", from_text=True)] = 20


class SlaQuery(WindowQuery):
    default_window: ClassVar[timedelta] = timedelta(days=30)


class HealthSummaryView(ApiView):
    @endpoint(operation_id="monitoring_health_summary", response=HealthSummary,
              summary="Health summary of every enabled service")
    def get(self, request):
        return health_summary()


class ServiceHealthView(ApiView):
    @endpoint(operation_id="monitoring_service_health", query=RecentChecksQuery, response=ServiceHealth,
              errors=[404], summary="A service's current status and recent checks")
    def get(self, request, service, query):
        return service_health(get_object_or_404(Service, name=service), recent=query.limit)


class ServiceSlaView(ApiView):
    @endpoint(operation_id="monitoring_service_sla", query=SlaQuery, response=SlaReportBody, errors=[404],
              summary="A service's SLA over a window (default 30 days)")
    def get(self, request, service, query):
        found = get_object_or_404(Service, name=service)
        window = query.window()
        return service_sla(found, window.start, window.end).body()

"""Health and SLA of the platform-wide services: any valid token may read them."""

from datetime import timedelta

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from analytics.platform.conventions import ApiView, window_from_params
from analytics.platform.errors import field_error
from monitoring.api.serializers import HealthSummarySerializer, ServiceHealthSerializer, SlaReportSerializer
from monitoring.models import Service
from monitoring.services.health import health_summary, service_health
from monitoring.services.reports import service_sla

MAX_RECENT_CHECKS = 100
WINDOW_PARAMETERS = [
    OpenApiParameter(name, type, description=description)
    for name, type, description in (
        ("days", OpenApiTypes.NUMBER, "Rolling window ending now (default 30 days)."),
        ("hours", OpenApiTypes.NUMBER, "Rolling window ending now."),
        ("start", OpenApiTypes.DATETIME, "Window start (with end; naive times are UTC)."),
        ("end", OpenApiTypes.DATETIME, "Window end (default now)."),
    )
]


class HealthSummaryView(ApiView):
    @extend_schema(operation_id="monitoring_health_summary", responses=HealthSummarySerializer,
                   summary="Health summary of every enabled service")
    def get(self, request):
        return Response(health_summary())


class ServiceHealthView(ApiView):
    @extend_schema(
        operation_id="monitoring_service_health",
        responses=ServiceHealthSerializer,
        summary="A service's current status and recent checks",
        parameters=[OpenApiParameter("limit", OpenApiTypes.INT, description="Recent checks (1-100, default 20).")],
    )
    def get(self, request, service):
        found = get_object_or_404(Service, name=service)
        limit = request.query_params.get("limit", "20")
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_RECENT_CHECKS:
            raise field_error("limit", f"Must be an integer from 1 to {MAX_RECENT_CHECKS}.")
        return Response(service_health(found, recent=int(limit)))


class ServiceSlaView(ApiView):
    @extend_schema(operation_id="monitoring_service_sla", responses=SlaReportSerializer,
                   summary="A service's SLA over a window", parameters=WINDOW_PARAMETERS)
    def get(self, request, service):
        found = get_object_or_404(Service, name=service)
        window = window_from_params(request.query_params, default=timedelta(days=30))
        return Response(service_sla(found, window.start, window.end).as_dict())

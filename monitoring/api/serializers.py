"""Response shapes of the monitoring endpoints (API.md, Monitoring). Times are UTC with a ``Z``."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from monitoring.models import Service, Status

STATUS_CHOICES = Status.values


# The same choices as every ``status`` field: point at their enum rather than naming a second one.
@extend_schema_field({"allOf": [{"$ref": "#/components/schemas/StatusEnum"}]})
class OverallStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=STATUS_CHOICES, **kwargs)


class ServiceStateSerializer(serializers.Serializer):
    service_name = serializers.CharField()
    service_type = serializers.ChoiceField(choices=Service.Type.values)
    status = serializers.ChoiceField(choices=STATUS_CHOICES)
    response_time_ms = serializers.FloatField(allow_null=True)
    consecutive_failures = serializers.IntegerField()
    last_checked = serializers.DateTimeField(allow_null=True)


class HealthSummarySerializer(serializers.Serializer):
    overall_status = OverallStatusField(
        help_text="The worst service status: unhealthy, then unknown, then degraded, then healthy."
    )
    total_services = serializers.IntegerField()
    healthy = serializers.IntegerField()
    degraded = serializers.IntegerField()
    unhealthy = serializers.IntegerField()
    unknown = serializers.IntegerField()
    services = ServiceStateSerializer(many=True)


class CheckResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=STATUS_CHOICES)
    response_time_ms = serializers.FloatField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    consecutive_failures = serializers.IntegerField()
    checked_at = serializers.DateTimeField()


class ServiceHealthSerializer(ServiceStateSerializer):
    health = serializers.FloatField(allow_null=True, help_text="1 healthy, 0.5 degraded, 0 unhealthy; null unknown.")
    check_kind = serializers.ChoiceField(choices=Service.CheckKind.values)
    enabled = serializers.BooleanField()
    interval_seconds = serializers.IntegerField()
    timeout_seconds = serializers.FloatField()
    degraded_response_time_ms = serializers.FloatField(allow_null=True)
    failures_before_unhealthy = serializers.IntegerField()
    sla_target = serializers.FloatField()
    last_error = serializers.CharField(allow_blank=True)
    recent_checks = CheckResultSerializer(many=True, help_text="Newest first.")


class SlaFiguresSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    uptime_percentage = serializers.FloatField(allow_null=True, help_text="Null when no time has a known status.")
    sla_target = serializers.FloatField()
    compliant = serializers.BooleanField(allow_null=True)
    error_budget_remaining_minutes = serializers.FloatField()
    avg_response_time_ms = serializers.FloatField(allow_null=True)
    p95_response_time_ms = serializers.FloatField(allow_null=True)
    downtime_incidents = serializers.IntegerField()
    downtime_minutes = serializers.FloatField()
    monitored_minutes = serializers.FloatField(help_text="Time with a known status.")
    unknown_minutes = serializers.FloatField()
    source = serializers.ChoiceField(choices=["raw", "rollup"])


class SlaReportSerializer(SlaFiguresSerializer):
    service_name = serializers.CharField()
    daily = SlaFiguresSerializer(many=True)
    monthly = SlaFiguresSerializer(many=True)

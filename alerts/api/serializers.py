"""Shapes of the alert endpoints (API.md, Alerts). Times are UTC with a ``Z``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from alerts.models import (
    AGGREGATIONS,
    MAX_DURATION_SECONDS,
    MAX_WINDOW_SECONDS,
    MIN_WINDOW_SECONDS,
    AlertIncident,
    AlertRule,
    IncidentEvent,
    IncidentStatus,
    NoData,
    Operator,
    Severity,
    rule_problems,
)


class StrictFloatField(serializers.FloatField):
    """A finite number; ``true`` is not 1."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
class StringMapField(serializers.JSONField):
    """An object of string → string; its limits are checked with the rest of the rule."""


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class TagKeysField(serializers.JSONField):
    pass


class AlertRuleSerializer(serializers.ModelSerializer):
    org = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True,
                                       help_text="The owning org; null for a platform rule (staff only).")
    condition_operator = serializers.ChoiceField(Operator.values)
    threshold = StrictFloatField()
    severity = serializers.ChoiceField(Severity.choices, default=Severity.WARNING)
    aggregation = serializers.ChoiceField(AGGREGATIONS, default="avg")
    window_seconds = serializers.IntegerField(min_value=MIN_WINDOW_SECONDS, max_value=MAX_WINDOW_SECONDS, default=300)
    duration_seconds = serializers.IntegerField(min_value=0, max_value=MAX_DURATION_SECONDS, default=0)
    keep_firing_seconds = serializers.IntegerField(min_value=0, max_value=MAX_DURATION_SECONDS, default=0)
    no_data = serializers.ChoiceField(NoData.values, default=NoData.OK)
    tags = StringMapField(required=False, help_text="Tag filters, ANDed.")
    group_by = TagKeysField(required=False, help_text="Tag keys: one incident per group.")
    labels = StringMapField(required=False)
    enabled = serializers.BooleanField(default=True)
    description = serializers.CharField(allow_blank=True, default="", max_length=10_000)
    state = serializers.SerializerMethodField(help_text="inactive, pending, firing (its most urgent group), or error.")

    class Meta:
        model = AlertRule
        fields = [
            "id", "org", "name", "description", "metric_name", "aggregation", "window_seconds", "tags", "group_by",
            "condition_operator", "threshold", "duration_seconds", "keep_firing_seconds", "severity", "no_data",
            "labels", "enabled", "state", "trigger_count", "last_triggered_at", "last_evaluated_at", "last_error",
            "created_at", "updated_at",
        ]
        read_only_fields = ["trigger_count", "last_triggered_at", "last_evaluated_at", "last_error", "created_at",
                            "updated_at"]
        # The per-org unique name is checked in validate(): the constraint is over an expression.
        validators = []

    @extend_schema_field(serializers.ChoiceField(["inactive", "pending", "firing", "error"]))
    def get_state(self, rule: AlertRule) -> str:
        return rule.state()

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Must not be blank.")
        return value

    def validate(self, attrs):
        def current(field, default):
            if field in attrs:
                return attrs[field]
            return getattr(self.instance, field) if self.instance is not None else default

        metric_name = current("metric_name", None)
        problems = rule_problems(metric_name=metric_name, tags=current("tags", {}), group_by=current("group_by", []),
                                 labels=current("labels", {}), threshold=attrs.get("threshold"))
        org = self.context.get("org", self.instance.org if self.instance is not None else None)
        name = attrs.get("name")
        if name is not None:
            same_name = AlertRule.objects.filter(org=org, name=name)
            if self.instance is not None:
                same_name = same_name.exclude(pk=self.instance.pk)
            if same_name.exists():
                problems.setdefault("name", []).append("This org already has a rule with this name.")
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


# Inline (an enum nested in allOf is not made a component): monitoring's service status is the
# schema's "StatusEnum", which its own fields name directly; a second "status" enum would rename it.
@extend_schema_field({"allOf": [{"type": "string", "enum": IncidentStatus.values}]})
class IncidentStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=IncidentStatus.choices, **kwargs)


class IncidentSerializer(serializers.ModelSerializer):
    status = IncidentStatusField(read_only=True, help_text="open, acknowledged, silenced or resolved.")
    rule_id = serializers.IntegerField(allow_null=True, read_only=True)
    group = serializers.DictField(child=serializers.CharField(allow_null=True), read_only=True,
                                  help_text="The group's tag values ({} for a rule without group_by).")

    class Meta:
        model = AlertIncident
        fields = ["id", "rule_id", "rule_name", "group", "status", "severity", "value", "threshold", "condition",
                  "triggered_at", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by",
                  "silenced_until", "notes"]
        read_only_fields = fields


class IncidentEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = IncidentEvent
        fields = ["kind", "from_status", "to_status", "value", "threshold", "actor", "note", "at"]
        read_only_fields = fields


class IncidentDetailSerializer(IncidentSerializer):
    timeline = serializers.SerializerMethodField()

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "timeline"]
        read_only_fields = fields

    @extend_schema_field(IncidentEventSerializer(many=True))
    def get_timeline(self, incident: AlertIncident):
        return IncidentEventSerializer(incident.events.order_by("at", "id"), many=True).data


class NoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)


class SilenceSerializer(NoteSerializer):
    until = serializers.DateTimeField(help_text="When the silence ends (ISO-8601; naive is UTC). In the future.")


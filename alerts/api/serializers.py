"""Shapes of the alert endpoints (API.md, Alerts). Times are UTC with a ``Z``.

A rule's body is a model form, so it is a DRF ``ModelSerializer``; its fields are strict (a JSON type
other than the schema's is a 400, never coerced) and every limit that ``rule_problems`` checks is also
stated in the schema, from the same constants of ``alerts.models``. The incident actions' bodies are
pydantic contracts (``IncidentNote``, ``IncidentSilence``), validated and documented by ``@endpoint``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated

from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import force_instance, is_patched_serializer
from drf_spectacular.utils import extend_schema_field
from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from rest_framework import serializers

from alerts.models import (
    AGGREGATIONS,
    BUILT_IN_SOURCES,
    MAX_DURATION_SECONDS,
    MAX_GROUP_BY,
    MAX_LABELS,
    MAX_TAGS,
    MAX_WINDOW_SECONDS,
    MIN_WINDOW_SECONDS,
    TAG_KEY_MAX,
    TAG_VALUE_MAX,
    AlertIncident,
    AlertRule,
    IncidentEvent,
    IncidentStatus,
    NoData,
    Operator,
    Severity,
    rule_problems,
)
from alerts.services.rules import rule_warnings
from analytics.platform.contracts import NAME, PATTERN_MESSAGES, PRINTABLE, RequestContract
from analytics.platform.errors import Conflict
from analytics.platform.tenancy import Organization
from analytics.platform.windows import WindowError, parse_time

TEXT_MAX = 10_000  # a rule's description, an action's note
# Free text (descriptions, notes) may hold any character but NUL, which PostgreSQL's text cannot store.
NO_NUL = r"^[^\x00]*$"
NO_NUL_MESSAGE = "Must not contain NUL characters."
# Whole-string matches: Python's ``$`` also matches before a final newline, JSON Schema's does not.
_NO_NUL = re.compile(NO_NUL)
_PRINTABLE = re.compile(PRINTABLE)
# For DRF's RegexValidator (a search): ``\Z``, which drf-spectacular writes as ``$``.
_NAME_VALIDATOR = RegexValidator(NAME.removesuffix("$") + r"\Z", PATTERN_MESSAGES[NAME])
_NAME_MAX = AlertRule._meta.get_field("name").max_length
_METRIC_NAME_MAX = AlertRule._meta.get_field("metric_name").max_length
# The one built-in source that needs its tag, as a filter or a grouping (rule_problems).
_NEEDS_ITS_TAG = "skill.health_score"
assert _NEEDS_ITS_TAG in BUILT_IN_SOURCES


# --- Strict fields: the JSON type the schema states, or a 400 -----------------------------


class StrictCharField(serializers.CharField):
    """A JSON string (DRF would turn ``5`` into ``"5"``); kept as sent, not trimmed."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer (``300.0`` is one; ``"300"`` and ``true`` are not)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A finite JSON number; ``true`` is not 1 and ``"5"`` is not 5."""

    default_error_messages = {"finite": "Must be a finite number."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        try:
            number = float(data)
        except OverflowError:  # an integer literal too large for a float
            self.fail("finite")
        if not math.isfinite(number):
            self.fail("finite")
        return number


class StrictBooleanField(serializers.BooleanField):
    """``true`` or ``false`` (DRF would take ``"yes"``, ``1``, ``"on"``)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictChoiceField(serializers.ChoiceField):
    """One of the choices, as a JSON string."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


# --- Tags, labels and group_by: the schema says what rule_problems checks ---------------------

_TAG_KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": TAG_KEY_MAX, "pattern": PRINTABLE}
_TAG_VALUE_SCHEMA = {"type": "string", "maxLength": TAG_VALUE_MAX, "pattern": PRINTABLE}


def string_map_schema(limit: int) -> dict:
    return {"type": "object", "maxProperties": limit, "propertyNames": _TAG_KEY_SCHEMA,
            "additionalProperties": _TAG_VALUE_SCHEMA}


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _check_printable(text) -> None:
    """A tag key or value: printable (the schema's pattern), and no lone surrogate (JSON's ``"\\ud800"`` parses
    to one; it is no character, and no database can store it)."""
    if not isinstance(text, str):
        return  # rule_problems names the field
    if _SURROGATE.search(text):
        raise serializers.ValidationError("Surrogate characters are not allowed.")
    if not _PRINTABLE.fullmatch(text):
        raise serializers.ValidationError(f"{text!r}: {PATTERN_MESSAGES[PRINTABLE]}")


class StringMapField(serializers.JSONField):
    """An object of string → string. Its limits are checked with the rest of the rule (``rule_problems``);
    keys and values must also be printable, like the metric tags a rule's tags are matched against."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if isinstance(data, dict):
            for key, value in data.items():
                _check_printable(key)
                _check_printable(value)
        return data


@extend_schema_field(string_map_schema(MAX_TAGS))
class TagsField(StringMapField):
    pass


@extend_schema_field(string_map_schema(MAX_LABELS))
class LabelsField(StringMapField):
    pass


@extend_schema_field({"type": "array", "maxItems": MAX_GROUP_BY, "uniqueItems": True, "items": _TAG_KEY_SCHEMA})
class TagKeysField(serializers.JSONField):
    """A list of distinct tag keys; the count and lengths are checked by ``rule_problems``."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if isinstance(data, list):
            for key in data:
                _check_printable(key)
        return data


# --- Rules ----------------------------------------------------------------------------------


class AlertRuleSerializer(serializers.ModelSerializer):
    org: serializers.SlugRelatedField[Organization] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True,
        help_text="The owning org; null for a platform rule (staff only).")
    name = StrictCharField(max_length=_NAME_MAX, validators=[_NAME_VALIDATOR],
                           help_text="Unique in the org. Printable, without leading or trailing spaces.")
    # The metric ingest's rule for names (analytics.services.metrics_ingest.MetricItem): every metric the
    # API records can be watched.
    metric_name = StrictCharField(
        max_length=_METRIC_NAME_MAX, validators=[_NAME_VALIDATOR],
        help_text=AlertRule._meta.get_field("metric_name").help_text)
    condition_operator = StrictChoiceField(Operator.values)
    threshold = StrictFloatField(help_text="A finite number.")
    severity = StrictChoiceField(Severity.choices, default=Severity.WARNING)
    aggregation = StrictChoiceField(AGGREGATIONS, default="avg",
                                    help_text=AlertRule._meta.get_field("aggregation").help_text)
    window_seconds = StrictIntegerField(min_value=MIN_WINDOW_SECONDS, max_value=MAX_WINDOW_SECONDS, default=300)
    duration_seconds = StrictIntegerField(min_value=0, max_value=MAX_DURATION_SECONDS, default=0,
                                          help_text=AlertRule._meta.get_field("duration_seconds").help_text)
    keep_firing_seconds = StrictIntegerField(min_value=0, max_value=MAX_DURATION_SECONDS, default=0,
                                             help_text=AlertRule._meta.get_field("keep_firing_seconds").help_text)
    reopen_after_seconds = StrictIntegerField(min_value=0, max_value=MAX_DURATION_SECONDS, default=0,
                                              help_text=AlertRule._meta.get_field("reopen_after_seconds").help_text)
    no_data = StrictChoiceField(NoData.values, default=NoData.OK)
    tags = TagsField(required=False, help_text=f"Tag filters, ANDed: up to {MAX_TAGS}, key → value. A built-in "
                                               "source takes only its own tag.")
    group_by = TagKeysField(required=False, help_text=f"Up to {MAX_GROUP_BY} distinct tag keys: one incident "
                                                      "per group. A built-in source groups only by its own tag.")
    labels = LabelsField(required=False, help_text=f"Up to {MAX_LABELS} free labels for routing and notifications.")
    enabled = StrictBooleanField(default=True)
    description = StrictCharField(allow_blank=True, default="", max_length=TEXT_MAX)
    state = serializers.SerializerMethodField(help_text="inactive, pending, firing (its most urgent group), or error.")

    class Meta:
        model = AlertRule
        fields = [
            "id", "org", "name", "description", "metric_name", "aggregation", "window_seconds", "tags", "group_by",
            "condition_operator", "threshold", "duration_seconds", "keep_firing_seconds", "reopen_after_seconds",
            "severity", "no_data",
            "labels", "enabled", "state", "trigger_count", "last_triggered_at", "last_evaluated_at", "last_error",
            "created_at", "updated_at",
        ]
        read_only_fields = ["trigger_count", "last_triggered_at", "last_evaluated_at", "last_error", "created_at",
                            "updated_at"]
        # The per-org unique name is checked in validate(): the constraint is over an expression.
        validators: list = []

    @extend_schema_field(serializers.ChoiceField(["inactive", "pending", "firing", "error"]))
    def get_state(self, rule: AlertRule) -> str:
        return rule.state()

    def validate(self, attrs):
        def current(field, default):
            if field in attrs:
                return attrs[field]
            return getattr(self.instance, field) if self.instance is not None else default

        metric_name = current("metric_name", None)
        problems = rule_problems(metric_name=metric_name, tags=current("tags", {}), group_by=current("group_by", []),
                                 labels=current("labels", {}), threshold=attrs.get("threshold"))
        # The field's own pattern (the metric ingest's, stated in the schema) is the API's rule for metric
        # names; rule_problems' str.isprintable() is Python's notion, which JSON Schema cannot state.
        problems.pop("metric_name", None)
        if problems:
            raise serializers.ValidationError(problems)
        # Well-formed, but the name is taken: a conflict with what is stored (409), not bad input (400).
        org = self.context.get("org", self.instance.org if self.instance is not None else None)
        name = attrs.get("name")
        if name is not None:
            same_name = AlertRule.objects.filter(org=org, name=name)
            if self.instance is not None:
                same_name = same_name.exclude(pk=self.instance.pk)
            if same_name.exists():
                raise DuplicateRuleName()
        return attrs


class DuplicateRuleName(Conflict):
    default_detail = "This org already has a rule with this name."
    default_code = "duplicate_name"


class SavedAlertRuleSerializer(AlertRuleSerializer):
    """The answer to a create or a change: the rule, and what is odd about it though accepted."""

    warnings = serializers.SerializerMethodField(
        help_text="Accepted, but worth a look: e.g. no samples of the metric have been recorded yet, so with "
                  "no_data: ok the rule cannot fire. Empty when nothing is odd.")

    class Meta(AlertRuleSerializer.Meta):
        fields = [*AlertRuleSerializer.Meta.fields, "warnings"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_warnings(self, rule: AlertRule) -> list[str]:
        return rule_warnings(rule)


def built_in_source_rules(*, patched: bool) -> list[dict]:
    """rule_problems' rules for the built-in sources, as JSON Schema: only the source's tag in ``tags`` and
    ``group_by``; ``skill.health_score`` needs that tag in one of them. A PATCH is checked against the
    stored rule too, which no schema can see: there only what the body itself breaks is stated."""
    rules = []
    for metric_name, tag in BUILT_IN_SOURCES.items():
        then: dict = {"properties": {"tags": {"propertyNames": {"const": tag}}, "group_by": {"items": {"const": tag}}}}
        if metric_name == _NEEDS_ITS_TAG and not patched:
            then["anyOf"] = [
                {"required": ["tags"], "properties": {"tags": {"required": [tag]}}},
                {"required": ["group_by"], "properties": {"group_by": {"contains": {"const": tag}}}},
            ]
        rules.append({"if": {"required": ["metric_name"], "properties": {"metric_name": {"const": metric_name}}},
                      "then": then})
    return rules


class AlertRuleSchema(OpenApiSerializerExtension):
    """The rule body's schema: drf-spectacular's, with what it leaves out.

    - the built-in sources' rules (``built_in_source_rules``);
    - no NUL in any string (DRF's CharField refuses it): added here, after drf-spectacular, whose
      ``oneOf [pattern, maxLength 0]`` for a blank-allowed string with a pattern would make ``""`` match
      both branches, hence neither;
    - no defaults on PATCH: an absent field is left as it is, not reset.
    """

    target_class = AlertRuleSerializer

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction != "request":
            return schema
        properties = schema.get("properties", {})
        for name, field in force_instance(self.target).fields.items():
            prop = properties.get(name)
            if isinstance(field, serializers.CharField) and prop is not None and prop.get("type") == "string":
                prop.setdefault("pattern", NO_NUL)
        patched = is_patched_serializer(self.target, direction)
        if patched:
            for prop in properties.values():
                prop.pop("default", None)
        schema["allOf"] = built_in_source_rules(patched=patched)
        return schema


# --- Incidents -------------------------------------------------------------------------------


# Inline (an enum nested in allOf is not made a component): monitoring's service status is the
# schema's "StatusEnum", which its own fields name directly; a second "status" enum would rename it.
@extend_schema_field({"allOf": [{"type": "string", "enum": IncidentStatus.values}]})
class IncidentStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=IncidentStatus.choices, **kwargs)


class IncidentSerializer(serializers.ModelSerializer):
    status = IncidentStatusField(read_only=True, help_text="open, acknowledged, silenced or resolved.")
    rule_id = serializers.IntegerField(allow_null=True, read_only=True, help_text="Null once the rule is deleted.")
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


# --- Incident actions' bodies ------------------------------------------------------------------


def _no_nul(value: str) -> str:
    if not _NO_NUL.fullmatch(value):
        raise PydanticCustomError("no_nul", NO_NUL_MESSAGE)
    return value


def _until(value) -> datetime:
    if not isinstance(value, str):
        raise PydanticCustomError("datetime_type", "Must be an ISO-8601 date-time string.")
    try:
        return parse_time("until", value)
    except WindowError as error:
        raise PydanticCustomError("datetime_parsing", "Must be an ISO-8601 date-time.") from error
    except OverflowError:  # an offset that moves it outside the years 1-9999 in UTC
        raise PydanticCustomError("datetime_range", "Is outside the range of dates.") from None


Note = Annotated[str, AfterValidator(_no_nul), Field(
    max_length=TEXT_MAX, description="Shown on the incident's timeline and added to its notes.",
    json_schema_extra={"pattern": NO_NUL})]
Until = Annotated[datetime, BeforeValidator(_until), Field(
    description="When the silence ends (ISO-8601; naive = UTC). Must be in the future (else a 400 naming until).")]


class IncidentNote(RequestContract):
    """The body of acknowledge and resolve (optional: no body is no note)."""

    note: Note = ""


class IncidentSilence(RequestContract):
    """The body of silence."""

    until: Until
    note: Note = ""
